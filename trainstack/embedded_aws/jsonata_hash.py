"""Gap: moto 5.2.5 declares Step Functions' JSONata `$hash` as a stub that returns a sentence, not a digest.

moto prepends `$hash := function($value, $algo) { "Function $hash is currently not supported" }` to any
expression that mentions `$hash`, so the job-name suffix became "Function $ha" (and SageMaker refused the
name). AWS computes the digest (`$hash(value, algorithm)`, MD5 / SHA-1 / SHA-256 / SHA-384 / SHA-512). We stop
moto declaring the stub; the evaluator (`jsonata_evaluator.py`) binds the real `$hash` from
`trainstack/step_functions_jsonata.py`.
"""

from __future__ import annotations

from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as moto_intrinsics

HASH_REFERENCE = "$hash"


def apply() -> None:
    moto_intrinsics._DECLARATION_BY_VARIABLE_REFERENCE.pop(HASH_REFERENCE, None)
