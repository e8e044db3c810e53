"""Gap: moto's Step Functions builds a JSONPath parser for every path it evaluates.

moto evaluates each JSONPath (`InputPath`, `Parameters`' `.$` fields, a Choice's `Variable`, `ResultPath`...) with
`jsonpath_ng.parse(path)`, and jsonpath_ng builds a new PLY lexer and parser (its tables read back in pure Python)
on every call: about 2 ms a path, so a Pass-and-Choice loop spends most of its time there (6,249 iterations: a
minute). A parsed path is a tree that finding and updating read and never change, so each path is parsed once.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonpath_ng
import jsonpath_ng.ext
from moto.stepfunctions.parser.asl.component.common.path import result_path as moto_result_path
from moto.stepfunctions.parser.asl.utils import json_path as moto_json_path

# Distinct paths are those written in the definitions a process runs: a few hundred at most.
_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse(path: str) -> Any:
    """`jsonpath_ng.parse`, which moto's ResultPath uses."""
    return jsonpath_ng.parse(path)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_extended(path: str) -> Any:
    """`jsonpath_ng.ext.parse` (filters, arithmetic), which moto's path extraction uses."""
    return jsonpath_ng.ext.parse(path)


def apply() -> None:
    # Both modules imported `parse` by name.
    moto_result_path.parse = parse
    moto_json_path.parse = parse_extended
