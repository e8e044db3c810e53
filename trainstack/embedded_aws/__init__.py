"""The embedded AWS: moto on 127.0.0.1, adapters for its gaps, and a local SageMaker training executor.

Exports are loaded lazily: `python -m trainstack.embedded_aws status` should not pay for importing moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import EmbeddedAws, apply_adapters, endpoint_env, subprocess_env

__all__ = ["EmbeddedAws", "apply_adapters", "endpoint_env", "subprocess_env"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
