"""Grants of the platform roles that no test exercises in the embedded AWS, each with the reason it stays.

`tests/test_iam_enforcement.py::test_every_platform_grant_is_exercised_or_explained` fails on a grant that is
neither used by some test (as recorded by the embedded AWS's IAM evaluation) nor listed here; the table the
suite writes (`.bench/least-privilege.md`) shows both. Keys: (role, action) as the table names them.
"""

from __future__ import annotations

UNEXERCISED_GRANTS: dict[tuple[str, str], str] = {}
