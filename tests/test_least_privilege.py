"""The least-privilege table across pytest workers: each worker deploys the platform into its own account, and
the session's uses are the sum of theirs (tests/conftest.py). Also the split of the platform's test modules."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest
from conftest import PLATFORM_DURATIONS, PLATFORM_GROUP, platform_groups

from trainstack.embedded_aws.least_privilege import Grant, merged

KEY_A = "arn:aws:kms:us-east-1:123456789012:key/aaaa"
KEY_B = "arn:aws:kms:us-east-1:123456789012:key/bbbb"


def table(role: str, key: str, uses: tuple[int, int, int]) -> dict[str, list[Grant]]:
    return {
        "state machine": [
            Grant(role, "PipelinePolicy", "UseTopicKey", "kms:Decrypt", key, uses[0]),
            Grant(role, "PipelinePolicy", "UseTopicKey", "kms:GenerateDataKey", key, uses[1]),
            Grant(role, "PipelinePolicy", "Notify", "sns:Publish", "arn:aws:sns:us-east-1:123456789012:t", uses[2]),
        ]
    }


def test_another_deploys_uses_count_where_cloudformation_named_the_resource_and_role_differently() -> None:
    mine = table("PipelineRole-A", KEY_A, (0, 2, 0))
    theirs = table("PipelineRole-B", KEY_B, (1, 0, 0))
    rows = merged(mine, [theirs])["state machine"]
    assert [(row.role, row.resource, row.uses) for row in rows] == [
        ("PipelineRole-A", KEY_A, 1),
        ("PipelineRole-A", KEY_A, 2),
        ("PipelineRole-A", "arn:aws:sns:us-east-1:123456789012:t", 0),
    ]
    assert [row.exercised for row in rows] == [True, True, False]


def test_deploys_whose_policies_differ_in_shape_are_an_error() -> None:
    mine = table("PipelineRole-A", KEY_A, (0, 0, 0))
    theirs = table("PipelineRole-B", KEY_B, (1, 1, 1))
    theirs["state machine"][2] = replace(theirs["state machine"][2], sid="NotifyOps")
    with pytest.raises(ValueError, match="the state machine's grants differ between the deploys"):
        merged(mine, [theirs])
    with pytest.raises(ValueError, match="the other deploy has the roles"):
        merged(mine, [{**theirs, "notebook role": []}])


@dataclass
class Item:
    nodeid: str
    fixturenames: tuple[str, ...] = ("deployed_local_platform",)


def test_platform_modules_split_whole_largest_first_onto_the_lighter_group() -> None:
    table = json.loads(PLATFORM_DURATIONS.read_text())
    capacity = [nodeid for nodeid in table if nodeid.startswith("tests/test_pipeline_capacity.py::")]
    smoke = [nodeid for nodeid in table if nodeid.startswith("tests/test_smoke.py::")]
    items = [
        *(Item(nodeid) for nodeid in capacity + smoke),
        Item("tests/test_new_module.py::test_d"),  # not measured: counts as the table's mean
        Item("tests/test_new_module.py::test_e"),
        Item("tests/test_config.py::test_f", fixturenames=("synthesized",)),  # not a platform test
    ]
    groups = platform_groups(items, 2)  # type: ignore[arg-type]
    assert groups == {
        "tests/test_pipeline_capacity.py": f"{PLATFORM_GROUP}-1",  # the largest, onto the first
        "tests/test_smoke.py": f"{PLATFORM_GROUP}-2",  # the next, onto the then lighter
        "tests/test_new_module.py": f"{PLATFORM_GROUP}-2",  # and the smallest, onto the still lighter
    }
    assert groups == platform_groups(list(reversed(items)), 2)  # type: ignore[arg-type]
    assert set(platform_groups(items, 1).values()) == {PLATFORM_GROUP}  # type: ignore[arg-type]


def test_tests_of_one_shared_run_go_to_one_worker() -> None:
    """A run several tests read is built once: its tests are one xdist group, a resume of it joins the group."""
    from types import SimpleNamespace

    from conftest import shared_run, shared_run_groups

    @shared_run
    def two_hosts() -> None: ...

    @shared_run
    def two_hosts_resumed() -> None: ...

    def channels() -> None: ...  # module-scoped too, but cheap: not a reason to keep tests together

    def item(name: str, *fixtures: object) -> object:
        definitions = {f.__name__: [SimpleNamespace(func=f)] for f in fixtures}  # type: ignore[attr-defined]
        return SimpleNamespace(
            nodeid=f"tests/test_t.py::{name}", _fixtureinfo=SimpleNamespace(name2fixturedefs=definitions)
        )

    items = [
        item("test_a", channels, two_hosts),
        item("test_b", channels, two_hosts, two_hosts_resumed),
        item("test_c", channels, two_hosts_resumed),
        item("test_d", channels),
    ]
    groups = shared_run_groups(items)  # type: ignore[arg-type]
    assert set(groups) == {"tests/test_t.py::test_a", "tests/test_t.py::test_b", "tests/test_t.py::test_c"}
    assert len(set(groups.values())) == 1
    assert shared_run_groups(items[:1] + items[2:])["tests/test_t.py::test_c"] != groups["tests/test_t.py::test_a"]
