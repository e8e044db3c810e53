"""trainstack's platform as a library: build an environment from a typed config or any YAML file.

    from trainstack.platform import PlatformStage, TrainingPlatform, load_environment

    config = load_environment("environments/ml-dev.yaml")   # any path; `name:` must equal the file's stem
    PlatformStage(app, config)                              # the environment as a Stage of its own
    TrainingPlatform(my_stage, "Training", config)          # or as one construct in the app's own layout

Everything named here is the public API, versioned semver (CHANGELOG.md) and snapshotted by
tests/test_public_api.py; the modules under it (stacks, `constructs/`) may change between minor versions.
"""

from __future__ import annotations

from trainstack.config import ConfigError, EnvironmentConfig, load_environment, parse_environment
from trainstack.platform.platform_stage import PlatformStage
from trainstack.platform.training_platform import PlatformStacks, TrainingPlatform, add_platform

__all__ = [
    "ConfigError",
    "EnvironmentConfig",
    "PlatformStacks",
    "PlatformStage",
    "TrainingPlatform",
    "add_platform",
    "load_environment",
    "parse_environment",
]
