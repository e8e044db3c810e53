"""The training image must already satisfy training_code/requirements.txt: synth fails naming both versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainstack.image_compatibility import (
    DOCKERFILE_PATH,
    ImageMismatch,
    check_image,
    pins,
    requirements,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"
# The pins the project's own environment (where the embedded AWS runs jobs) is installed from.
DEV_REQUIREMENTS_PATH = REPO_ROOT / "requirements-dev.txt"
OLD_DLC = "2.5.1-transformers4.49.0-gpu-py311-cu124-ubuntu22.04"
NEW_DLC = "2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04"
HF = "huggingface-pytorch-training"


def test_cdk_app_fails_synth_when_the_image_ships_an_older_transformers(tmp_path: Path) -> None:
    data = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    data["image"].update(mode="dlc", dlc_tag=OLD_DLC)
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"env": str(path)}), "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert f"trainstack: {path}: invalid environment configuration" in result.stderr
    # Both versions: what the image has and what the code needs.
    expected = f"image {HF}:{OLD_DLC} ships torch 2.5.1, but training_code/requirements.txt needs torch>=2.6"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_transformers_mismatch_names_both_versions(tmp_path: Path) -> None:
    needs = tmp_path / "requirements.txt"
    needs.write_text("transformers>=5.3,<6\n")
    with pytest.raises(ImageMismatch, match=r"ships transformers 4\.49\.0, but .* needs transformers<6,>=5\.3"):
        check_image(mode="dlc", repository=HF, tag=OLD_DLC, embedded=False, internet=True, requirements_path=needs)


def test_asset_mode_counts_the_dockerfiles_pins_over_the_base(tmp_path: Path) -> None:
    # The shipped Dockerfile lifts the base DLC's transformers 5.3 and adds trl/peft/datasets.
    check_image(mode="asset", repository=HF, tag=NEW_DLC, embedded=False, internet=False)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE_PATH.read_text().replace('"trl==1.16.0"', '"trl==0.9.6"'))
    with pytest.raises(ImageMismatch, match=r"Dockerfile \(FROM .*\) ships trl 0\.9\.6, but .* needs trl<2,>=1\.16"):
        check_image(
            mode="asset", repository=HF, tag=NEW_DLC, embedded=False, internet=False, dockerfile_path=dockerfile
        )


def test_a_dlc_without_the_hf_extras_needs_internet_or_the_asset_image() -> None:
    with pytest.raises(ImageMismatch, match=r"does not ship accelerate.*private VPC cannot install it"):
        check_image(mode="dlc", repository=HF, tag=NEW_DLC, embedded=False, internet=False)
    check_image(mode="dlc", repository=HF, tag=NEW_DLC, embedded=False, internet=True)
    # The embedded AWS runs jobs in the project's environment: what it has installed counts.
    check_image(mode="dlc", repository=HF, tag=NEW_DLC, embedded=True, internet=False)


def test_an_unknown_tag_is_refused_with_the_supported_ones() -> None:
    with pytest.raises(ImageMismatch, match=f"not in the supported DLC table.*{HF}:{NEW_DLC}"):
        check_image(mode="dlc", repository=HF, tag="9.9-made-up", embedded=False, internet=True)


def test_dockerfile_and_dev_requirements_pin_the_same_versions() -> None:
    # The image and the environment the tests run in must be the same stack, or green tests mean nothing.
    image, tested = pins(DOCKERFILE_PATH), pins(DEV_REQUIREMENTS_PATH)
    needed = {requirement.name for requirement in requirements()} - {"torch"}
    assert needed <= set(image)
    assert {name: image[name] for name in needed} == {name: tested[name] for name in needed}
