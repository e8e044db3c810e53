"""A memory plan before money is spent: bytes per GPU and host RAM at load, from config.json alone.

Standard library only: the training script runs it in its first seconds (before any weight download), and
`trainstack run --dry-run` and `tn.Estimator` print it before a job exists. Inputs: the model's
config.json (read from S3 or the channel folder, never the weights), the method (full fine-tuning or
LoRA), the instance type and count, and the hyperparameters that change memory.

Per GPU, with FSDP full sharding over every GPU of every host (without FSDP nothing is sharded):
- full fine-tuning, bf16 mixed precision: fp32 weights (4 B/param), fp32 gradients (4 B), AdamW's two fp32
  moments (8 B): 16 B/param sharded, what `accelerate estimate-memory` counts as model + optimizer plus the
  fp32 half of its gradients; plus FSDP's unsharded working set: two decoder layers' bf16 weights and
  gradients (the layer computing and the one prefetched);
- LoRA: the frozen base in the load dtype (2 B/param in bf16), the adapter at 16 B/param;
- activations (an estimate, stated as such): per decoder layer 34 * s * b * h bytes in bf16 with a fused
  attention (no s^2 term; Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
  Models"); with activation checkpointing 2 * s * b * h per layer kept plus one layer recomputed; plus the
  logits, s * b * V * 10 bytes (bf16 logits, their fp32 upcast for the loss and its gradient);
- 10 % of the GPU's memory is left for the CUDA context, NCCL buffers and allocator fragmentation.
Host RAM at load: one copy of the weights in the load dtype per host (local rank 0 reads, the others build
on the meta device: model_loading.py), against 90 % of the instance's memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

GIB = 1024**3
NOTHING_FITS = "CPU offload of the optimizer (not configured by this platform)"
USABLE_FRACTION = 0.9


@dataclass(frozen=True)
class Instance:
    gpus: int
    gpu_bytes: int  # per GPU
    host_bytes: int


# GPU instances training jobs use (Amazon EC2 accelerated-computing specifications; A100 80 GB = 80 GiB).
INSTANCES: dict[str, Instance] = {
    "ml.p4d.24xlarge": Instance(8, 40 * GIB, 1152 * GIB),
    "ml.p4de.24xlarge": Instance(8, 80 * GIB, 1152 * GIB),
    "ml.p5.48xlarge": Instance(8, 80 * GIB, 2048 * GIB),
    "ml.p5e.48xlarge": Instance(8, 141 * 10**9, 2048 * GIB),
    "ml.p5en.48xlarge": Instance(8, 141 * 10**9, 2048 * GIB),
    "ml.g5.xlarge": Instance(1, 24 * GIB, 16 * GIB),
    "ml.g5.2xlarge": Instance(1, 24 * GIB, 32 * GIB),
    "ml.g5.4xlarge": Instance(1, 24 * GIB, 64 * GIB),
    "ml.g5.8xlarge": Instance(1, 24 * GIB, 128 * GIB),
    "ml.g5.12xlarge": Instance(4, 24 * GIB, 192 * GIB),
    "ml.g5.16xlarge": Instance(1, 24 * GIB, 256 * GIB),
    "ml.g5.24xlarge": Instance(4, 24 * GIB, 384 * GIB),
    "ml.g5.48xlarge": Instance(8, 24 * GIB, 768 * GIB),
}

Method = Literal["full", "lora"]


@dataclass(frozen=True)
class Shape:
    """What the parameter count and activations depend on, read from config.json."""

    vocab: int
    hidden: int
    layers: int
    layer_parameters: int
    embedding_parameters: int  # input embeddings, positions, final norm, and an untied output head
    linear_shapes: tuple[tuple[int, int], ...]  # (in, out) of each linear layer of one decoder layer

    @property
    def parameters(self) -> int:
        return self.layers * self.layer_parameters + self.embedding_parameters


def model_shape(config: Mapping[str, Any]) -> Shape:
    """The decoder's dimensions and parameter count from a Hugging Face config.json (GPT-2 or Llama-like)."""
    if config.get("model_type") == "gpt2":
        h, layers, vocab = config["n_embd"], config["n_layer"], config["vocab_size"]
        inner = config.get("n_inner") or 4 * h
        linears = ((h, 3 * h), (h, h), (h, inner), (inner, h))
        per_layer = sum(i * o + o for i, o in linears) + 4 * h  # weights, biases, two layer norms
        embeddings = vocab * h + config.get("n_positions", 1024) * h + 2 * h
        if not config.get("tie_word_embeddings", True):
            embeddings += vocab * h
        return Shape(vocab, h, layers, per_layer, embeddings, linears)
    h = config["hidden_size"]
    layers = config["num_hidden_layers"]
    vocab = config["vocab_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or h // heads
    inner = config["intermediate_size"]
    experts = config.get("num_local_experts") or config.get("num_experts") or 1
    attention = ((h, heads * head_dim), (h, kv_heads * head_dim), (h, kv_heads * head_dim), (heads * head_dim, h))
    mlp = ((h, inner), (h, inner), (inner, h))  # gate, up, down (SwiGLU)
    per_layer = sum(i * o for i, o in attention) + experts * sum(i * o for i, o in mlp) + 2 * h
    if experts > 1:
        per_layer += h * experts  # the router
    embeddings = vocab * h + h
    if not config.get("tie_word_embeddings", True):
        embeddings += vocab * h
    return Shape(vocab, h, layers, per_layer, embeddings, attention + mlp * experts)


@dataclass(frozen=True)
class Run:
    method: Method
    instance_type: str
    instance_count: int
    fsdp: bool = True
    gradient_checkpointing: bool = True
    sequence_length: int = 2048
    batch_size: int = 1
    lora_r: int = 16
    load_bytes_per_parameter: int = 2  # bf16


@dataclass(frozen=True)
class MemoryPlan:
    run: Run
    shape: Shape
    instance: Instance | None
    weights: int
    gradients: int
    optimizer: int
    working_set: int
    activations: int
    host_at_load: int

    @property
    def per_gpu(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.working_set + self.activations

    @property
    def gpu_budget(self) -> int | None:
        return int(self.instance.gpu_bytes * USABLE_FRACTION) if self.instance else None

    @property
    def host_budget(self) -> int | None:
        return int(self.instance.host_bytes * USABLE_FRACTION) if self.instance else None

    @property
    def fits(self) -> bool:
        """True when it fits, or when the instance type is not one this plan knows (then no verdict)."""
        if self.instance is None:
            return True
        return self.per_gpu <= (self.gpu_budget or 0) and self.host_at_load <= (self.host_budget or 0)

    def render(self) -> str:
        run, gb = self.run, _gb
        where = f"{run.instance_count} x {run.instance_type}"
        lines = [
            f"memory plan: {run.method} fine-tuning of {self.shape.parameters / 1e9:.2f}B parameters on {where}"
            f" ({'FSDP over ' + str(self.shards) + ' GPUs' if run.fsdp else 'no sharding'}, sequence "
            f"{run.sequence_length} x batch {run.batch_size}, activation checkpointing "
            f"{'on' if run.gradient_checkpointing else 'off'})",
            f"  per GPU: weights {gb(self.weights)}, gradients {gb(self.gradients)}, optimizer "
            f"{gb(self.optimizer)}, FSDP working set {gb(self.working_set)}, activations (estimate) "
            f"{gb(self.activations)} = {gb(self.per_gpu)}"
            + (f" of {gb(self.gpu_budget)} usable" if self.gpu_budget else " (instance type unknown: no verdict)"),
            f"  host RAM at load: {gb(self.host_at_load)} (one copy per host)"
            + (f" of {gb(self.host_budget)} usable" if self.host_budget else ""),
        ]
        return "\n".join(lines)

    @property
    def shards(self) -> int:
        gpus = self.instance.gpus if self.instance else 1
        return gpus * self.run.instance_count if self.run.fsdp else 1

    def what_would_fit(self, config: Mapping[str, Any]) -> list[str]:
        options = []
        for count in range(self.run.instance_count + 1, 129):
            if plan(config, replace(self.run, instance_count=count)).fits:
                options.append(f"{count} x {self.run.instance_type}")
                break
        if self.run.method == "full" and plan(config, replace(self.run, method="lora")).fits:
            options.append(f"LoRA (lora_r={self.run.lora_r}) on the same {self.run.instance_count} host(s)")
        if not self.run.gradient_checkpointing and plan(config, replace(self.run, gradient_checkpointing=True)).fits:
            options.append("gradient_checkpointing=true")
        if not self.run.fsdp and plan(config, replace(self.run, fsdp=True)).fits:
            options.append('fsdp="full_shard auto_wrap"')
        return options

    def refusal(self, config: Mapping[str, Any]) -> str:
        options = self.what_would_fit(config) or [NOTHING_FITS]
        figures = "; ".join(line.strip() for line in self.render().splitlines())  # one line: a FailureReason
        return (
            f"the run does not fit: {figures}. What would fit: {'; '.join(options)}. "
            "(Checked before the weights download; memory_plan.py states the formula.)"
        )


# The defaults of arguments.py for what changes memory (that module needs transformers, this one must not;
# test_memory_plan_defaults_are_the_scripts keeps them equal).
HYPERPARAMETER_DEFAULTS: dict[str, Any] = {
    "lora_r": 0,
    "fsdp": "",
    "gradient_checkpointing": False,
    "block_size": 512,
    "per_device_train_batch_size": 8,
    "dtype": "precision",
    "precision": "auto",
}


def run_from_hyperparameters(values: Mapping[str, Any], instance_type: str, instance_count: int) -> Run:
    """The memory-relevant part of a run from its hyperparameters (decoded values; missing ones default)."""
    merged = {**HYPERPARAMETER_DEFAULTS, **values}
    dtype = merged["dtype"]
    # `precision` (the default): bf16 on the GPUs this plan knows, unless fp32 training was asked for.
    load_bytes = 4 if dtype == "float32" or (dtype == "precision" and merged["precision"] == "fp32") else 2
    lora_r = int(merged["lora_r"])
    return Run(
        method="lora" if lora_r > 0 else "full",
        instance_type=instance_type,
        instance_count=instance_count,
        fsdp=bool(merged["fsdp"]),
        gradient_checkpointing=_truthy(merged["gradient_checkpointing"]),
        sequence_length=int(merged["block_size"]),
        batch_size=int(merged["per_device_train_batch_size"]),
        lora_r=lora_r or 16,
        load_bytes_per_parameter=load_bytes,
    )


def _truthy(value: Any) -> bool:
    return value.strip().lower() in ("true", "1", "yes") if isinstance(value, str) else bool(value)


def plan(config: Mapping[str, Any], run: Run) -> MemoryPlan:
    shape = model_shape(config)
    instance = INSTANCES.get(run.instance_type)
    shards = (instance.gpus if instance else 1) * run.instance_count if run.fsdp else 1
    p = shape.parameters
    if run.method == "full":
        trainable, frozen_bytes = p, 0
    else:
        trainable = shape.layers * sum(run.lora_r * (i + o) for i, o in shape.linear_shapes)
        frozen_bytes = p * run.load_bytes_per_parameter
    weights = math.ceil((4 * trainable + frozen_bytes) / shards)
    gradients = math.ceil(4 * trainable / shards)
    optimizer = math.ceil(8 * trainable / shards)
    # bf16 weights of two layers, and their bf16 gradients where the layer trains in full.
    working_set = 2 * shape.layer_parameters * (4 if run.method == "full" else 2) if run.fsdp and shards > 1 else 0
    s, b, h = run.sequence_length, run.batch_size, shape.hidden
    per_layer = 34 * s * b * h
    layers = shape.layers * 2 * s * b * h + per_layer if run.gradient_checkpointing else shape.layers * per_layer
    activations = layers + s * b * shape.vocab * 10
    host_at_load = p * run.load_bytes_per_parameter
    return MemoryPlan(run, shape, instance, weights, gradients, optimizer, working_set, activations, host_at_load)


def _gb(value: int | None) -> str:
    return f"{(value or 0) / 1e9:.1f} GB"
