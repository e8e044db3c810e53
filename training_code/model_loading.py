"""The base model, read once per host in the training dtype, with an attention that suits packing.

TRL's SFTTrainer, given a path, calls `from_pretrained` in every process before the Trainer creates the
Accelerator (which is what turns FSDP's RAM-efficient loading on), so each of a host's 8 workers would
read the whole checkpoint: 8 x 140 GB of bf16 (280 GB in fp32) for a 70B model on a 1,152 GiB p4de. Here
local rank 0 of each host reads the weights, in bf16 when training in bf16, and the host's other ranks
build the same module on the meta device (no memory, no file read). The Trainer then gets the object:
- under FSDP (`sync_module_states`), accelerate gives the meta ranks empty storage (`param_init_fn`) and
  FSDP broadcasts rank 0's weights while sharding; accelerate upcasts the shards to fp32 for the optimizer;
- under DDP, the meta ranks get empty storage here and DDP's constructor broadcasts rank 0's parameters
  and buffers to every rank, so all start identical.
Why not DeepSpeed ZeRO-3's `zero.Init`: it partitions at construction, but needs a DeepSpeed config and
image; FSDP is what the platform already runs and checkpoints.

Padding-free packing (TRL's `bfd` strategies flatten a batch into one row with restarting position ids)
only saves work with an attention that takes the sequence lengths: FlashAttention 2/3 (varlen) or
`flex_attention` (a sparse BlockMask). Under SDPA or eager, transformers rebuilds the documents' borders as a
dense (B*L)^2 mask and no fused kernel runs, which made packing 2.4x slower than no packing on an H200.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from errors import ArgumentError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

# Attention implementations that read sequence lengths from position ids instead of a dense mask.
SEQUENCE_LENGTH_ATTENTION = ("flash_attention_3", "flash_attention_2", "flex_attention")
_FLASH_PACKAGES = {"flash_attention_3": "flash_attn_interface", "flash_attention_2": "flash_attn"}


def choose_attention(requested: str, packing: bool, cuda: bool, model_class: type) -> str:
    """The attention implementation to train with; ArgumentError when packing would need a dense mask.

    `auto`: without packing, SDPA; with packing, the first of FlashAttention 3, 2 (on CUDA, where the image
    has the package) and flex_attention that the model's class supports. On a CPU host a dense mask costs
    no fused kernel (there is none), so there it is only a warning: CPU hosts exist for tests.
    """
    if requested == "auto":
        if not packing:
            return "sdpa"
        for name in SEQUENCE_LENGTH_ATTENTION:
            if _supports(model_class, name) and (name == "flex_attention" or (cuda and _has_package(name))):
                return name
        requested = "sdpa"
    if packing and requested not in SEQUENCE_LENGTH_ATTENTION:
        reason = (
            f"packing with attn_implementation={requested} builds a dense (B*L)^2 attention mask (TRL packs a batch "
            f"into one row), so no fused attention kernel runs; {model_class.__name__} here supports none of "
            f"{', '.join(SEQUENCE_LENGTH_ATTENTION)} that this image has"
        )
        if cuda:
            raise ArgumentError(f"{reason}. Set packing=false, or attn_implementation to one of those.")
        log.warning("%s; allowed on CPU only", reason)
    return requested


def load_model(
    model_path: str, dtype: torch.dtype | str, attn_implementation: str, local_rank: int, world_size: int, fsdp: bool
) -> PreTrainedModel:
    """The base model: read from disk by local rank 0 only, built on the meta device by the host's others."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if local_rank == 0 or world_size == 1:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, attn_implementation=attn_implementation)
        print(f"read the base model's weights from {model_path} ({_dtype_name(model)})", flush=True)
        return model
    config = AutoConfig.from_pretrained(model_path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(
            config, dtype=config.dtype if dtype == "auto" else dtype, attn_implementation=attn_implementation
        )
    if not fsdp:
        # DDP needs real storage to receive the broadcast into; its constructor fills it from rank 0.
        # to_empty gives tied weights (lm_head = embeddings) separate storage: tie them again, or this rank
        # would hold one parameter more than rank 0 and DDP refuses to start.
        model.to_empty(device="cpu")
        model.tie_weights()
    log.info("built the model on the meta device; its weights come from rank 0's broadcast")
    return model


def training_dtype(requested: str, precision: str) -> torch.dtype | str:
    """The load dtype: as asked, or (`precision`, the default) bf16/fp16 when training in it, else fp32."""
    import torch

    if requested == "precision":
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    return "auto" if requested == "auto" else getattr(torch, requested)


def master_weights_in_fp32(model: PreTrainedModel, fsdp: bool, lora: bool) -> None:
    """Full fine-tuning under DDP keeps fp32 trainable weights (bf16 autocast computes in bf16).

    bf16 weights updated by AdamW lose most small updates. FSDP upcasts its shards itself (accelerate) and
    LoRA's base weights are frozen (PEFT keeps the adapter in fp32), so only DDP full fine-tuning needs it,
    and there the model is small enough to fit a GPU in fp32 anyway."""
    import torch

    if fsdp or lora:
        return
    for parameter in model.parameters():
        if parameter.is_floating_point() and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()


def _supports(model_class: type, name: str) -> bool:
    flag = {"flash_attention_3": "_supports_flash_attn", "flash_attention_2": "_supports_flash_attn"}.get(
        name, "_supports_flex_attn"
    )
    return bool(getattr(model_class, flag, False))


def _has_package(name: str) -> bool:
    return importlib.util.find_spec(_FLASH_PACKAGES[name]) is not None


def _dtype_name(model: PreTrainedModel) -> str:
    return str(next(model.parameters()).dtype).removeprefix("torch.")


def model_class_for(model_path: str | Path) -> type:
    """The causal-LM class the checkpoint's config.json names (read from the config, no weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_path)
    return AutoModelForCausalLM._model_mapping[type(config)]
