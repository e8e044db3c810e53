"""GPU training throughput of the real entry point: training_code/run_train.py under torchrun, FSDP, bf16.

One command, offline (no model hub, no S3): it builds a Llama-shaped model with random weights (default
~1.1B parameters: 16 layers, 2048 wide, 5632 MLP, 32000 vocabulary) and its tokenizer
(trainstack.tiny_model's byte-level BPE), writes synthetic raw-text JSON Lines whose every record is longer
than a sequence (so each packed sequence is exactly --seq-len tokens and tokens per step are exact), then
runs `python -m torch.distributed.run --nproc_per_node=<GPUs> training_code/run_train.py` with FSDP
(full_shard auto_wrap of LlamaDecoderLayer, FSDP activation checkpointing), bf16 mixed precision and SDPA
attention, exactly the hyperparameters a job would get. It times the metric lines as they arrive and
reports tokens/s and MFU over the steps after --warmup.

    python bench/gpu_training.py [--steps 40] [--warmup 10] [--batch-size 8] [--seq-len 2048] [--layers 16]

Needs: torch, transformers, accelerate, trl, peft, datasets (the image's stack: requirements-dev.txt pins
them), and this repository. Where there is no CUDA it says so and exits 0. About 2-4 minutes on one
H100/H200 (model build and save, tokenizing, 50 steps).

MFU = achieved model FLOPs / the GPUs' dense bf16 peak, model FLOPs per token = 6 * N (matmul weights,
forward + backward) + 12 * layers * width * sequence (attention scores), as in the PaLM paper's appendix B;
activation checkpointing's recomputed forward is not counted (that is hardware FLOPs, not model FLOPs).
"""

from __future__ import annotations

import argparse
import json
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
    corpus = (REPO_ROOT / "examples" / "data" / "corpus.txt").read_text().split()
    rng = random.Random(0)
    folder.mkdir(parents=True)
    with (folder / "train.jsonl").open("w") as out:
        for _ in range(records):
            # ~1.5 tokens per word with the small BPE: 1.2 * seq_len words always overflow one sequence.
            out.write(json.dumps({"text": " ".join(rng.choices(corpus, k=int(seq_len * 1.2)))}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8, help="per GPU")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=40, help="timed steps, after --warmup untimed ones")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--mlp", type=int, default=5632)
    parser.add_argument("--no-activation-checkpointing", action="store_true")
    parser.add_argument(
        "--no-packing",
        action="store_true",
        help="one record per row instead of packed rows (records overflow a row, so rows are still full)",
    )
    parser.add_argument("--log", type=Path, default=None, help="also write run_train.py's output here")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's bf16 peak")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu_training.py: no CUDA GPU here; nothing measured (run it on a GPU machine).")
        return 0

    gpus = torch.cuda.device_count()
    total_steps = args.warmup + args.steps
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        matmul_params = build_model(work, args)
        write_data(work / "train", records=total_steps * args.batch_size * gpus + 64, seq_len=args.seq_len)
        prepare_s = time.perf_counter() - started
        hyperparameters = {
            "max_steps": total_steps,
            "per_device_train_batch_size": args.batch_size,
            "block_size": args.seq_len,
            "learning_rate": 1e-4,
            "logging_steps": 1,
            "save_steps": 1_000_000,
            "validation_split": 0,
            "precision": "bf16",
            "dtype": "float32",  # fp32 master weights, bf16 compute (FSDP mixed precision)
            "fsdp": "full_shard auto_wrap",
            "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
            "gradient_checkpointing": not args.no_activation_checkpointing,
            "attn_implementation": "sdpa",
            "packing": not args.no_packing,
        }
        argv = [item for key, value in hyperparameters.items() for item in (f"--{key}", str(value))]
        env = {
            **os.environ,
            "SM_CHANNEL_TRAIN": str(work / "train"),
            "SM_CHANNEL_MODEL": str(work / "model"),
            "SM_MODEL_DIR": str(work / "output-model"),
            "SM_OUTPUT_DIR": str(work / "output"),
            "SM_INPUT_DIR": str(work / "input"),
            "SM_CHECKPOINT_DIR": str(work / "checkpoints"),
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
        log = args.log.open("w") if args.log else None
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
            print(f"bench/gpu_training.py: run_train.py exited with {code}", file=sys.stderr)
            return 1
        elapsed = arrivals[total_steps] - arrivals[args.warmup]
        tokens_per_second = args.steps * args.batch_size * gpus * args.seq_len / elapsed
        flops_per_token = 6 * matmul_params + 12 * args.layers * args.width * args.seq_len
        name = torch.cuda.get_device_name(0)
        peak = peak_flops(name, args.peak_tflops)
        saved = sorted(p.name for p in (work / "output-model").glob("*.safetensors"))
        print(
            json.dumps(
                {
                    "device": f"{gpus} x {name}",
                    "torch": torch.__version__,
                    "entry_point": "training_code/run_train.py (torchrun, FSDP full_shard, bf16, SDPA)",
                    "matmul_params_millions": round(matmul_params / 1e6, 1),
                    "batch_size_per_gpu": args.batch_size,
                    "seq_len": args.seq_len,
                    "activation_checkpointing": not args.no_activation_checkpointing,
                    "packing": not args.no_packing,
                    "prepare_s": round(prepare_s, 1),
                    "step_ms": round(1000 * elapsed / args.steps, 1),
                    "tokens_per_second": round(tokens_per_second),
                    "tokens_per_second_per_gpu": round(tokens_per_second / gpus),
                    "model_tflops_per_second_per_gpu": round(flops_per_token * tokens_per_second / gpus / 1e12, 1),
                    "mfu": round(flops_per_token * tokens_per_second / gpus / peak, 3) if peak else None,
                    "peak_bf16_tflops": peak / 1e12 if peak else None,
                    "first_loss": losses[min(losses)],
                    "final_loss": losses[total_steps],
                    "saved_model": saved,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
