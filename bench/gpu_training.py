"""GPU training throughput: tokens/s and model FLOPs utilisation (MFU) of a ~125M-parameter causal LM in bf16.

GPT-2 small's shape (12 layers, 768 wide, 12 heads, 1024 context), random init, synthetic tokens: it
measures the hardware path the training image gives a job (PyTorch, SDPA attention, bf16 autocast,
fused AdamW), not data loading. Runs only where CUDA is present; elsewhere it says so and exits 0.

    python bench/gpu_training.py [--batch-size 16] [--steps 30] [--compile]

MFU = achieved model FLOPs / the GPU's dense bf16 peak, with model FLOPs per token = 6 * N (weights,
forward + backward) + 12 * layers * width * context (attention scores), as in the PaLM paper's appendix B.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, in FLOP/s, by name fragment.
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; the PCIe card is 756e12 (pass --peak-tflops 756)
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 70e12,
    "L4": 121e12,
}


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    for fragment, peak in PEAK_BF16_FLOPS.items():
        if fragment in device_name:
            return peak
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30, help="timed steps, after --warmup untimed ones")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's bf16 peak")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu_training.py: no CUDA GPU here; nothing measured (run it on a GPU machine).")
        return 0

    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device("cuda")
    config = GPT2Config(n_positions=args.seq_len, n_embd=768, n_layer=12, n_head=12, vocab_size=50304)
    # 50304 = GPT-2's 50257 rounded up to a multiple of 64: the standard tensor-core-friendly padding.
    model = GPT2LMHeadModel(config).to(device)
    model.config.use_cache = False
    params = sum(p.numel() for p in model.parameters())
    # Tied input/output embeddings count once in `params`; position embeddings do no matmul work.
    matmul_params = params - config.n_positions * config.n_embd
    flops_per_token = 6 * matmul_params + 12 * config.n_layer * config.n_embd * args.seq_len

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    step_model = torch.compile(model) if args.compile else model
    batch = torch.randint(0, config.vocab_size, (args.batch_size, args.seq_len), device=device)

    def step() -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    compile_start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - compile_start

    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start

    tokens_per_second = args.steps * args.batch_size * args.seq_len / elapsed
    name = torch.cuda.get_device_name(0)
    peak = peak_flops(name, args.peak_tflops)
    figures = {
        "device": name,
        "torch": torch.__version__,
        "params_millions": round(params / 1e6, 1),
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "compiled": args.compile,
        "warmup_s": round(warmup_s, 2),
        "step_ms": round(1000 * elapsed / args.steps, 1),
        "tokens_per_second": round(tokens_per_second),
        "model_tflops_per_second": round(flops_per_token * tokens_per_second / 1e12, 1),
        "mfu": round(flops_per_token * tokens_per_second / peak, 3) if peak else None,
        "peak_bf16_tflops": peak / 1e12 if peak else None,
        "max_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "final_loss": round(float(loss), 3),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
