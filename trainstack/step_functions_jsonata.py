"""JSONata as Step Functions evaluates it: the standard library plus the functions Step Functions adds.

Step Functions adds `$partition`, `$range`, `$hash`, `$random(seed)`, `$uuid` and `$parse` to JSONata (AWS Step
Functions Developer Guide, "Transforming data with JSONata": "JSONata functions provided by Step Functions").
jsonata-python has none of them; the state machine uses `$hash` (a job-name suffix unique to the execution) and
the pool cleanup `$parse` (a run's input from its status-change event), so those are provided here, `$hash` with
the algorithms AWS lists. Both the embedded AWS and `run_preview` compile expressions through
`compile_expression`, so a preview and an execution evaluate the same language.
"""

from __future__ import annotations

import hashlib
import json

import jsonata

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


def compile_expression(expression: str) -> jsonata.Jsonata:
    compiled = jsonata.Jsonata(expression)
    compiled.register_lambda("hash", step_functions_hash)
    compiled.register_lambda("parse", step_functions_parse)
    return compiled
