"""GPU training throughput of the real entry point: training_code/run_train.py under torchrun, FSDP, bf16.

One command, offline (no model hub, no S3): it builds a Llama-shaped model with random weights (default
~1.1B parameters: 16 layers, 2048 wide, 5632 MLP, 32000 vocabulary) and its tokenizer
(trainstack.tiny_model's byte-level BPE), writes synthetic raw-text JSON Lines whose every record is longer
than a sequence (so each row is exactly --seq-len tokens and tokens per step are exact), then runs
`python -m torch.distributed.run --nproc_per_node=<GPUs> training_code/run_train.py` with FSDP (full_shard
auto_wrap of LlamaDecoderLayer) and bf16 mixed precision, once packed and once unpacked in the same
process, with the hyperparameters a job would get: `attn_implementation=auto` (FlashAttention where the
image has it, else flex_attention, for packing; SDPA without), no activation checkpointing unless asked
(a 1B model fits without it), Liger kernels where installed, `--compile` for torch.compile, transformers'
fused AdamW, and a metric line (a host sync) only every gcd(warmup, steps) steps. It reports tokens/s and MFU
over the steps after --warmup for each.

    python bench/gpu_training.py [--steps 40] [--warmup 10] [--batch-size 8] [--seq-len 2048] [--compile]

Needs: torch, transformers, accelerate, trl, peft, datasets (the image's stack: requirements-dev.txt pins
them), and this repository. Without CUDA it prints what the entry point would choose on a GPU and what it
could not measure, and exits 0.

MFU = achieved model FLOPs / the GPUs' dense bf16 peak, model FLOPs per token = 6 * N (matmul weights,
forward + backward) + 12 * layers * width * sequence (attention scores), as in the PaLM paper's appendix B;
activation checkpointing's recomputed forward is not counted (that is hardware FLOPs, not model FLOPs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, in FLOP/s, by name fragment.
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; the PCIe card is 756e12 (pass --peak-tflops 756)
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 70e12,
    "L4": 121e12,
}
_STEP_LINE = re.compile(r"^step=(\d+); train_loss=([0-9.eE+-]+);")


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    for fragment, peak in PEAK_BF16_FLOPS.items():
        if fragment in device_name:
            return peak
    return None


def build_model(out_dir: Path, args: argparse.Namespace) -> int:
    """A random-weight Llama of the requested shape plus an offline tokenizer; returns matmul parameters."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from trainstack.tiny_model import build_tiny_model

    build_tiny_model(out_dir / "tokenizer-source")
    tokenizer = AutoTokenizer.from_pretrained(out_dir / "tokenizer-source")
    config = LlamaConfig(
        vocab_size=32000,  # larger than the tokenizer: the LM head's cost is a real model's
        hidden_size=args.width,
        intermediate_size=args.mlp,
        num_hidden_layers=args.layers,
        num_attention_heads=args.width // 128,
        num_key_value_heads=args.width // 128,
        max_position_embeddings=args.seq_len,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out_dir / "model")
    tokenizer.save_pretrained(out_dir / "model")
    embedding = config.vocab_size * config.hidden_size  # a lookup, no matmul; the untied LM head counts
    return sum(p.numel() for p in model.parameters()) - embedding


def write_data(folder: Path, records: int, seq_len: int) -> None:
    corpus = (REPO_ROOT / "trainstack" / "data" / "corpus.txt").read_text().split()
    rng = random.Random(0)
    folder.mkdir(parents=True)
    with (folder / "train.jsonl").open("w") as out:
        for _ in range(records):
            # ~1.5 tokens per word with the small BPE: 1.2 * seq_len words always overflow one sequence.
            out.write(json.dumps({"text": " ".join(rng.choices(corpus, k=int(seq_len * 1.2)))}) + "\n")


def levers(packing: bool, cuda: bool) -> dict[str, object]:
    """What this machine's stack offers the run, and what the entry point would pick (its own rules)."""
    import importlib.util

    import torch
    from transformers import LlamaForCausalLM, TrainingArguments

    sys.path.insert(0, str(REPO_ROOT / "training_code"))
    from model_loading import choose_attention

    return {
        "attention": choose_attention("auto", packing, cuda, LlamaForCausalLM),
        "flash_attn_installed": importlib.util.find_spec("flash_attn") is not None,
        "liger_kernel_installed": importlib.util.find_spec("liger_kernel") is not None,
        "torch_compile_available": hasattr(torch, "compile"),
        "optimizer": TrainingArguments.__dataclass_fields__["optim"].default,  # adamw_torch_fused on torch>=2.8
    }


def run_entry_point(work: Path, args: argparse.Namespace, gpus: int, packing: bool, liger: bool) -> dict[str, object]:
    """One run of training_code/run_train.py under torchrun; tokens/s from its metric lines' arrival times."""
    total_steps = args.warmup + args.steps
    hyperparameters = {
        "max_steps": total_steps,
        "per_device_train_batch_size": args.batch_size,
        "block_size": args.seq_len,
        "learning_rate": 1e-4,
        # A line (a host sync for the loss) only at the warmup boundary and the end, not every step.
        "logging_steps": math.gcd(args.warmup, args.steps),
        "save_steps": 1_000_000,
        "validation_split": 0,
        "precision": "bf16",
        "fsdp": "full_shard auto_wrap",
        "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
        "gradient_checkpointing": args.activation_checkpointing,
        "attn_implementation": "auto",
        "packing": packing,
        "torch_compile": args.compile,
        "use_liger_kernel": liger,
    }
    argv = [item for key, value in hyperparameters.items() for item in (f"--{key}", str(value))]
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(work / "train"),
        "SM_CHANNEL_MODEL": str(work / "model"),
        "SM_MODEL_DIR": str(work / f"output-model-{packing}"),
        "SM_OUTPUT_DIR": str(work / "output"),
        "SM_INPUT_DIR": str(work / "input"),
        "SM_CHECKPOINT_DIR": str(work / f"checkpoints-{packing}"),
        "SM_NUM_GPUS": str(gpus),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={gpus}",
        str(REPO_ROOT / "training_code" / "run_train.py"),
        *argv,
    ]
    arrivals: dict[int, float] = {}
    losses: dict[int, float] = {}
    tail: deque[str] = deque(maxlen=40)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    log = args.log.open("a") if args.log else None
    for line in process.stdout:
        tail.append(line)
        if log:
            log.write(line)
        match = _STEP_LINE.match(line)
        if match:
            arrivals[int(match.group(1))] = time.perf_counter()
            losses[int(match.group(1))] = float(match.group(2))
    code = process.wait()
    if log:
        log.close()
    if code != 0 or total_steps not in arrivals or args.warmup not in arrivals:
        print("".join(tail), file=sys.stderr)
        raise RuntimeError(f"run_train.py (packing={packing}) exited with {code}")
    elapsed = arrivals[total_steps] - arrivals[args.warmup]
    return {
        "packing": packing,
        "attention": levers(packing, cuda=True)["attention"],
        "step_ms": round(1000 * elapsed / args.steps, 1),
        "tokens_per_second": args.steps * args.batch_size * gpus * args.seq_len / elapsed,
        "first_loss": losses[min(losses)],
        "final_loss": losses[total_steps],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8, help="per GPU")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=40, help="timed steps, after --warmup untimed ones")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--mlp", type=int, default=5632)
    parser.add_argument(
        "--activation-checkpointing", action="store_true", help="off by default: a 1B model fits without it"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (torch_compile=true)")
    parser.add_argument("--no-liger", action="store_true", help="leave Liger kernels off even where installed")
    parser.add_argument("--modes", default="packed,unpacked", help="packed, unpacked or both, run one after the other")
    parser.add_argument("--log", type=Path, default=None, help="also write run_train.py's output here")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's bf16 peak")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]

    import torch

    if not torch.cuda.is_available():
        # The checks that need no GPU: what the entry point would choose and what the stack offers.
        print(
            json.dumps(
                {
                    "device": "no CUDA GPU",
                    "torch": torch.__version__,
                    "levers_on_a_gpu": {mode: levers(mode == "packed", cuda=True) for mode in modes},
                    "not_measured": ["tokens_per_second", "mfu", "step_ms", "loss"],
                }
            )
        )
        return 0

    gpus = torch.cuda.device_count()
    liger = not args.no_liger and bool(levers(True, cuda=True)["liger_kernel_installed"])
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        matmul_params = build_model(work, args)
        write_data(
            work / "train", records=(args.warmup + args.steps) * args.batch_size * gpus + 64, seq_len=args.seq_len
        )
        prepare_s = time.perf_counter() - started
        flops_per_token = 6 * matmul_params + 12 * args.layers * args.width * args.seq_len
        name = torch.cuda.get_device_name(0)
        peak = peak_flops(name, args.peak_tflops)
        runs = []
        for mode in modes:
            result = run_entry_point(work, args, gpus, packing=mode == "packed", liger=liger)
            tokens_per_second = float(result["tokens_per_second"])  # type: ignore[arg-type]
            result["tokens_per_second"] = round(tokens_per_second)
            result["model_tflops_per_second_per_gpu"] = round(flops_per_token * tokens_per_second / gpus / 1e12, 1)
            result["mfu"] = round(flops_per_token * tokens_per_second / gpus / peak, 3) if peak else None
            runs.append(result)
        print(
            json.dumps(
                {
                    "device": f"{gpus} x {name}",
                    "torch": torch.__version__,
                    "entry_point": "training_code/run_train.py (torchrun, FSDP full_shard, bf16)",
                    "matmul_params_millions": round(matmul_params / 1e6, 1),
                    "batch_size_per_gpu": args.batch_size,
                    "seq_len": args.seq_len,
                    "activation_checkpointing": args.activation_checkpointing,
                    "torch_compile": args.compile,
                    "liger_kernel": liger,
                    "prepare_s": round(prepare_s, 1),
                    "peak_bf16_tflops": peak / 1e12 if peak else None,
                    "runs": runs,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
