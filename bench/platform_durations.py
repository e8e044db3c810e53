"""Refresh tests/platform_durations.json, the seconds by which tests/conftest.py balances the deployed
platform's tests over the pytest workers, from the last `make test`'s .bench/test-durations.json.

    python bench/platform_durations.py   # after `make test`; commit the table if the split should follow
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DURATIONS = REPO_ROOT / ".bench" / "test-durations.json"
TABLE = REPO_ROOT / "tests" / "platform_durations.json"
# The suffix tests/conftest.py gives a deployed-platform test's node id under `--dist loadgroup`.
GROUP_SUFFIX = re.compile(r"@deployed-platform(-\d+)?$")


def platform_seconds(durations: dict[str, float]) -> dict[str, float]:
    return {
        GROUP_SUFFIX.sub("", nodeid): round(seconds, 1)
        for nodeid, seconds in sorted(durations.items())
        if GROUP_SUFFIX.search(nodeid)
    }


def main() -> int:
    if not DURATIONS.exists():
        print(f"no {DURATIONS.relative_to(REPO_ROOT)}: run make test first", file=sys.stderr)
        return 1
    table = platform_seconds(json.loads(DURATIONS.read_text(encoding="utf-8")))
    if not table:
        print("no deployed-platform test in the durations (was pytest run with --dist loadgroup?)", file=sys.stderr)
        return 1
    TABLE.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"{TABLE.relative_to(REPO_ROOT)}: {len(table)} tests, {sum(table.values()):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
