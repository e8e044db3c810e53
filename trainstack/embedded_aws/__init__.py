"""The embedded AWS: moto on 127.0.0.1, adapters for its gaps, and a local SageMaker training executor."""

from .server import EmbeddedAws, apply_adapters, endpoint_env, subprocess_env

__all__ = ["EmbeddedAws", "apply_adapters", "endpoint_env", "subprocess_env"]
