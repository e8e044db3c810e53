"""What a training container isolates, without Docker: a Python environment per host and no package index.

On SageMaker every instance of a job runs in a fresh container of the image: `pip install -r
requirements.txt` (the toolkit does it for a `.py` entry point) changes that container only, and in a
private subnet pip has no index to reach. A warm pool keeps the containers: the next job of the pool
finds what the previous one installed, plus a persistent folder, SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY
(/opt/ml/sagemaker/warmpoolcache), which is deleted when the pool ends.

Here a "container" is a folder per pool (or per job without one) holding, per host:
- `venv/`: a virtual environment layered over the project's (`site.addsitedir` of this interpreter's
  site-packages from a .pth file, so the image's packages are visible and a job's installs land in, and
  shadow from, its own site-packages; `venv` with `--system-site-packages` would layer over the base
  interpreter instead, missing the project's venv). No pip inside: the project's pip serves it. Creating
  one takes milliseconds (symlinks, no ensurepip).
- `warmpoolcache/`: exported as SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY to jobs that ask for a warm pool.

Network: the job's pip gets PIP_INDEX_URL and PIP_EXTRA_INDEX_URL on a closed local port, no config file,
no inherited PIP_* settings and every HTTP(S) proxy variable on that dead address (NO_PROXY keeps the
embedded AWS on 127.0.0.1 reachable), as in a private subnet. This blocks pip and anything that honours
proxy variables (requests, urllib, huggingface_hub); it is not a firewall: a raw socket to the internet
still connects. See the embedded AWS README.
"""

from __future__ import annotations

import os
import shutil
import site
import sysconfig
import threading
import uuid
import venv
from collections.abc import Mapping
from pathlib import Path

from trainstack.toolkit_host import free_port

WARMPOOL_CACHE_ENV = "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"
# Inherited pip settings (a find-links folder, an index, a config file) would hand the job an index.
SCRUBBED_PREFIXES = ("PIP_",)
_PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _dead_address() -> str:
    # A port nothing listens on: connections are refused at once, as a subnet without a route refuses them.
    return f"http://127.0.0.1:{free_port()}"


class JobContainer:
    """The per-host environments of one pool (or one job); `root` is removed when the pool ends."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def host_dir(self, host: str) -> Path:
        return self.root / host

    def python(self, host: str) -> Path:
        return self.host_dir(host) / "venv" / "bin" / "python"

    def prepare(self, host: str) -> None:
        """Create the host's environment unless the pool's previous job left it (a reused warm pool)."""
        env_dir = self.host_dir(host) / "venv"
        if not self.python(host).exists():
            venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(env_dir)
            purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
            layers = [path for path in site.getsitepackages() if Path(path).is_dir()]
            # `import` lines in a .pth run at start-up: addsitedir also reads the project's own .pth files
            # (editable installs), which a plain path line would not.
            (purelib / "_trainstack_image_layer.pth").write_text(
                "".join(f"import site; site.addsitedir({path!r})\n" for path in layers), encoding="utf-8"
            )
        (self.host_dir(host) / "warmpoolcache").mkdir(parents=True, exist_ok=True)

    def environment(self, host: str, env: Mapping[str, str], *, warm_pool: bool) -> dict[str, str]:
        """`env` (from toolkit_host.host_environment) inside this host's container and private network."""
        env_dir = self.host_dir(host) / "venv"
        dead = _dead_address()
        inside = {key: value for key, value in env.items() if not key.startswith(SCRUBBED_PREFIXES)}
        no_proxy = ",".join(
            dict.fromkeys(["127.0.0.1", "localhost", *filter(None, env.get("NO_PROXY", "").split(","))])
        )
        inside.update(
            {
                "VIRTUAL_ENV": str(env_dir),
                "PATH": os.pathsep.join([str(env_dir / "bin"), env.get("PATH", os.defpath)]),
                "PYTHONNOUSERSITE": "1",
                "PIP_INDEX_URL": f"{dead}/simple/",
                "PIP_EXTRA_INDEX_URL": f"{dead}/extra/",
                "PIP_CONFIG_FILE": os.devnull,
                "PIP_RETRIES": "0",
                "PIP_TIMEOUT": "5",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                **dict.fromkeys(_PROXY_NAMES, dead),
                "NO_PROXY": no_proxy,
                "no_proxy": no_proxy,
            }
        )
        if warm_pool:
            inside[WARMPOOL_CACHE_ENV] = str(self.host_dir(host) / "warmpoolcache")
        return inside

    def remove(self) -> None:
        """Gone at once (renamed aside), deleted in the background: the executor calls this holding its lock,
        and a warm-pool cache of model weights can take a while to delete."""
        trash = self.root.with_name(f".removed-{self.root.name}-{uuid.uuid4().hex[:8]}")
        try:
            self.root.rename(trash)
        except FileNotFoundError:
            return
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=True).start()
