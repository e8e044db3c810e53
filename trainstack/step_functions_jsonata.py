"""JSONata as Step Functions evaluates it: the standard library plus the functions Step Functions adds.

Step Functions adds `$partition`, `$range`, `$hash`, `$random(seed)`, `$uuid` and `$parse` to JSONata (AWS Step
Functions Developer Guide, "Transforming data with JSONata": "JSONata functions provided by Step Functions").
jsonata-python has none of them; the state machine uses `$hash` (a job-name suffix unique to the execution) and
the pool cleanup `$parse` (a run's input from its status-change event), so those are provided here, `$hash` with
the algorithms AWS lists. Both the embedded AWS and `run_preview` compile expressions through
`compile_expression`, so a preview and an execution evaluate the same language.

jsonata-python parses in pure Python (0.3 s for the 33K-character Validate expression), so a parse is done once
per expression text and kept; values such as `$states` are bound with `jsonata_literal` instead of being written
into the expression as JSON text and parsed with it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
from typing import Any

import jsonata
from jsonata.utils import Utils

# Step Functions' names for the algorithms `$hash` accepts, and Python's.
HASH_ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def step_functions_hash(value: object, algorithm: object) -> str:
    """`$hash(value, algorithm)`: the hex digest of a string, as States.Hash computes it."""
    if not isinstance(value, str):
        raise ValueError(f"$hash: expected a string to hash, got {type(value).__name__}")
    if algorithm not in HASH_ALGORITHMS:
        raise ValueError(f"$hash: algorithm must be one of {', '.join(HASH_ALGORITHMS)}, got {algorithm!r}")
    return hashlib.new(HASH_ALGORITHMS[str(algorithm)], utf8(value)).hexdigest()


def utf8(value: str) -> bytes:
    """The UTF-8 bytes of a JSONata string, which may hold a character beyond U+FFFF as two surrogates.

    JSONata strings are UTF-16, as in JavaScript: jsonata-python reads the literal "\\ud83d\\ude00" (the embedded
    AWS binds variables as ASCII-only JSON) as two surrogates where Python wants one character (U+1F600), and
    `str.encode` refuses surrogates. Pairs become their character; a lone surrogate (no execution name holds
    one: Step Functions refuses them) becomes '?', as Java's String.getBytes(UTF_8) writes it.
    """
    paired = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return paired.encode("utf-8", "replace")


def step_functions_parse(value: object) -> object:
    """`$parse(json)`: the value a JSON string holds (the pool cleanup reads a run's input from its event)."""
    if not isinstance(value, str):
        raise ValueError(f"$parse: expected a JSON string, got {type(value).__name__}")
    return json.loads(value)


@functools.lru_cache(maxsize=1024)
def _parsed(expression: str) -> jsonata.Jsonata:
    parsed = jsonata.Jsonata(expression)
    parsed.register_lambda("hash", step_functions_hash)
    parsed.register_lambda("parse", step_functions_parse)
    return parsed


def compile_expression(expression: str) -> jsonata.Jsonata:
    """An expression ready to evaluate once, as a fresh `jsonata.Jsonata(expression)` is; its parse is shared.

    Evaluating never changes the parsed tree, but the `Jsonata` object holds per-evaluation state (the input and
    environment in effect, the timestamp `$now()` reads, top-level `:=` bindings when no bindings are passed), so
    each caller gets its own shallow copy with an empty frame of its own. jsonata-python evaluates through the
    thread's "current" instance, which its constructor sets: set it to this copy, as constructing it would have.
    """
    parsed = _parsed(expression)
    instance = copy.copy(parsed)
    instance.environment = instance.create_frame(parsed.environment)
    jsonata.Jsonata.CURRENT.jsonata = instance
    return instance


class NotAJsonataLiteral(ValueError):
    """JSON text whose value `jsonata_literal` does not reproduce (NaN, a repeated key): parse it as JSONata."""


# Characters beyond U+FFFF, which a JSONata string holds as two UTF-16 surrogates.
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _surrogates(match: re.Match[str]) -> str:
    offset = ord(match.group()) - 0x10000
    return chr(0xD800 + (offset >> 10)) + chr(0xDC00 + (offset & 0x3FF))


def _jsonata_string(text: str) -> str:
    # `json.dumps` writes such a character as a surrogate pair of \u escapes, which jsonata-python's tokenizer reads
    # as two characters (UTF-16, as JavaScript and the JVM hold it); `json.loads` joins them back into one.
    return text if text.isascii() else _ASTRAL.sub(_surrogates, text)


def _jsonata_number(text: str) -> int | float:
    # The tokenizer reads every number as a float and keeps the integral ones as int; a leading minus is the unary
    # operator, which negates the same way, so `-x` reads as -(x) does.
    number = float(text)
    if not math.isfinite(number):
        raise NotAJsonataLiteral(f"number out of range: {text[:40]}")
    return Utils.convert_number(number)


def _not_a_literal(constant: str) -> Any:
    raise NotAJsonataLiteral(f"{constant} is not a JSON literal")


def _jsonata_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = {_jsonata_string(key): item for key, item in pairs}
    if len(value) != len(pairs):
        raise NotAJsonataLiteral("an object repeats a key")  # JSONata's object constructor refuses that (D1009)
    return value


def _jsonata_values(value: Any) -> Any:
    # Arrays become the JList an array constructor builds, null the literal's NULL_VALUE (a bound Python None
    # would read as "undefined"), strings UTF-16 as above. Iterative: inputs nest 1,000 levels deep.
    root: list[Any] = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:
        container, key = pending.pop()
        item = container[key]
        if isinstance(item, dict):
            for name in item:
                pending.append((item, name))
        elif isinstance(item, list):
            converted = Utils.JList(item)
            container[key] = converted
            pending.extend((converted, index) for index in range(len(converted)))
        elif item is None:
            container[key] = Utils.NULL_VALUE
        elif isinstance(item, str):
            container[key] = _jsonata_string(item)
    return root[0]


def jsonata_literal(json_text: str) -> Any:
    """The value jsonata-python evaluates the JSON text `json_text` to when it is written into an expression.

    Binding this value (`Jsonata.evaluate(input, {"name": value})`) is equivalent to starting the expression's
    block with `$name := <json_text>;`, without tokenizing and parsing the JSON in pure Python. Raises
    NotAJsonataLiteral for the JSON whose JSONata reading this does not reproduce.
    """
    parsed = json.loads(
        json_text,
        parse_float=_jsonata_number,
        parse_int=_jsonata_number,
        parse_constant=_not_a_literal,
        object_pairs_hook=_jsonata_object,
    )
    return _jsonata_values(parsed)
