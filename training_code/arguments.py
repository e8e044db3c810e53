"""Every hyperparameter the script accepts, as dataclasses, parsed in one place.

The SageMaker toolkit JSON-decodes the job's hyperparameters and passes them as `--name value`
(booleans as `True`/`False`); the same flags work when running the script by hand. An unknown name fails
the job with a message listing the known ones: a typo must not silently train with a default.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from errors import ArgumentError
from transformers import HfArgumentParser


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Model + tokenizer directory. Default: the `model` channel (SM_CHANNEL_MODEL)."},
    )
    model_s3_uri: str | None = field(
        default=None,
        metadata={
            "help": "Pull base weights from S3 with s5cmd instead of a File-mode channel: s3://bucket/prefix, "
            "or a bare prefix inside the MODEL_S3_BUCKET environment variable's bucket."
        },
    )
    dtype: Literal["precision", "float32", "bfloat16", "float16", "auto"] = field(
        default="precision",
        metadata={
            "help": "Dtype the weights are read in. precision: bf16 (fp16) when training in it, else fp32, which "
            "halves host memory at load; trainable weights are kept in fp32 for the optimizer all the same."
        },
    )


@dataclass
class DataArguments:
    train_dir: str | None = field(default=None, metadata={"help": "Default: the `train` channel."})
    val_dir: str | None = field(default=None, metadata={"help": "Default: the `val` channel; none skips evaluation."})
    text_field: str = field(default="text", metadata={"help": "JSON key holding raw text in .jsonl/.json files."})
    block_size: int = field(
        default=512, metadata={"help": "Tokens per training sequence (examples are packed); capped by the model."}
    )
    packing: bool = field(
        default=True,
        metadata={"help": "Pack examples into block_size sequences (best-fit, no example split, boundaries kept)."},
    )
    validation_split: float = field(
        default=0.05, metadata={"help": "Fraction of train held out for evaluation when there is no val channel."}
    )
    assistant_only_loss: bool = field(
        default=True, metadata={"help": "Chat data: loss on the assistant turns only (needs {% generation %})."}
    )
    dataset_num_proc: int | None = field(default=None, metadata={"help": "Processes tokenizing the data."})


@dataclass
class LoraArguments:
    lora_r: int = field(default=0, metadata={"help": "LoRA rank; 0 trains every weight (no LoRA)."})
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: str = field(
        default="all-linear", metadata={"help": "Comma-separated module names, or all-linear."}
    )
    merge_lora: bool = field(
        default=False, metadata={"help": "Also write the base model merged with the adapter (full weights)."}
    )


@dataclass
class TrainArguments:
    num_train_epochs: float = 1.0
    max_steps: int = field(default=-1, metadata={"help": "Overrides num_train_epochs when > 0."})
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    warmup_steps: float = field(default=0.0, metadata={"help": "Steps, or a fraction of all steps when < 1."})
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 10
    eval_steps: int = field(default=0, metadata={"help": "Evaluate every N steps; 0 evaluates once at the end."})
    save_steps: int = field(default=500, metadata={"help": "Checkpoint every N optimizer steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept on disk (and so synced to S3)."})
    save_minutes: float = field(
        default=30.0,
        metadata={
            "help": "Also checkpoint every N minutes of wall time (0 = off): bounds the work a spot interruption "
            "loses, since the SIGTERM save is best effort."
        },
    )
    attn_implementation: str = field(
        default="auto",
        metadata={
            "help": "auto: with packing FlashAttention 3/2 where installed, else flex_attention; without, sdpa. "
            "Or sdpa, eager, flex_attention, flash_attention_2, flash_attention_3."
        },
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = field(
        default="auto", metadata={"help": "auto: bf16 on GPUs that support it, fp32 otherwise."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward: less memory, ~30% more compute."}
    )
    torch_compile: bool = field(default=False, metadata={"help": "Compile the model with torch.compile (GPU)."})
    use_liger_kernel: bool = field(
        default=False, metadata={"help": "Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU, fused linear loss)."}
    )
    fsdp: str = field(
        default="",
        metadata={"help": "FSDP mode for models that do not fit one GPU, e.g. 'full_shard auto_wrap'. Empty: DDP."},
    )
    fsdp_transformer_layer_cls_to_wrap: str = field(
        default="", metadata={"help": "Comma-separated decoder layer classes FSDP wraps, e.g. LlamaDecoderLayer."}
    )
    checkpoint_dir: str | None = field(
        default=None, metadata={"help": "Default: $SM_CHECKPOINT_DIR, else /opt/ml/checkpoints."}
    )
    resume: bool = field(default=True, metadata={"help": "Resume from the newest complete checkpoint if any."})
    dataloader_num_workers: int = 0


@dataclass(frozen=True)
class Arguments:
    model: ModelArguments
    data: DataArguments
    lora: LoraArguments
    train: TrainArguments


class _Parser(HfArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print usage and exit 2; a job needs the reason in its failure file instead.
        raise ArgumentError(f"bad hyperparameter: {message}")


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """Parse `--name value` flags into the three groups; raise ArgumentError naming what is wrong."""
    groups = (ModelArguments, DataArguments, LoraArguments, TrainArguments)
    parser = _Parser(groups)  # type: ignore[arg-type]
    model, data, lora, train, unknown = parser.parse_args_into_dataclasses(
        args=list(argv), return_remaining_strings=True
    )
    if unknown:
        known = sorted(f.name for group in groups for f in dataclasses.fields(group))
        raise ArgumentError(f"unknown hyperparameters {unknown}; known ones are: {', '.join(known)}")
    arguments = Arguments(model=model, data=data, lora=lora, train=train)
    _validate(arguments)
    return arguments


def _validate(arguments: Arguments) -> None:
    train = arguments.train
    if train.num_train_epochs <= 0 and train.max_steps <= 0:
        raise ArgumentError("set num_train_epochs > 0 or max_steps > 0")
    if arguments.data.block_size < 2:
        raise ArgumentError(f"block_size must be at least 2, got {arguments.data.block_size}")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(train, name) < 1:
            raise ArgumentError(f"{name} must be at least 1, got {getattr(train, name)}")
    if train.save_steps < 1 or train.logging_steps < 1:
        raise ArgumentError("save_steps and logging_steps must be at least 1")
    if not 0 <= arguments.data.validation_split < 1:
        raise ArgumentError(f"validation_split must be in [0, 1), got {arguments.data.validation_split}")
    if arguments.lora.lora_r < 0:
        raise ArgumentError(f"lora_r must be 0 (off) or a positive rank, got {arguments.lora.lora_r}")
    if arguments.lora.merge_lora and arguments.lora.lora_r == 0:
        raise ArgumentError("merge_lora needs lora_r > 0")
    if train.use_liger_kernel and importlib.util.find_spec("liger_kernel") is None:
        raise ArgumentError("use_liger_kernel=true needs the liger-kernel package, which this image does not have")
