"""A user's own training script, run by the platform as the SageMaker SDK's Estimator would run it.

Its one dependency, `tabulate` (requirements.txt), is not in the platform's image or the project's
environment: the packer ships it as a wheel and the job installs it without reaching any package index.
It reads every channel it was given, counts lines per file, and writes a small "model" and a report.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import tabulate


def main() -> None:
    parser = argparse.ArgumentParser()
    # Hyperparameters arrive as --name value (the SageMaker toolkit's script mode).
    parser.add_argument("--greeting", default="hello from byo-code")
    args, _ = parser.parse_known_args()

    rows = []
    for name in json.loads(os.environ.get("SM_CHANNELS", "[]")):
        root = Path(os.environ[f"SM_CHANNEL_{name.upper()}"])
        files = sorted(p for p in root.rglob("*") if p.is_file())
        rows.append([name, len(files), sum(len(p.read_bytes().splitlines()) for p in files)])
    table = tabulate.tabulate(rows, headers=["channel", "files", "lines"])
    print(table)

    model_dir = Path(os.environ["SM_MODEL_DIR"])
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.json").write_text(
        json.dumps(
            {
                "greeting": args.greeting,
                "channels": {name: {"files": files, "lines": lines} for name, files, lines in rows},
                "tabulate": tabulate.__version__,
                "hosts": json.loads(os.environ.get("SM_HOSTS", "[]")),
            },
            indent=2,
        )
    )
    (model_dir / "report.txt").write_text(table + "\n")


if __name__ == "__main__":
    main()
