"""Causal-LM fine-tuning entry point for SageMaker script mode (`entry_point="run_train.py"`).

The SageMaker training toolkit downloads this folder to /opt/ml/code, installs requirements.txt and
runs `python run_train.py --hyperparameter value ...`. On one host with at most one GPU the script
trains in-process; otherwise it relaunches itself under torchrun (see launcher.py).

    args -> data -> model -> trainer -> train (resuming) -> evaluate -> save

Inputs: the `model` channel (or `model_s3_uri`), the `train` channel, optionally `val`.
Outputs: the fine-tuned model and tokenizer in SM_MODEL_DIR (world rank 0 only), final figures in
SM_OUTPUT_DATA_DIR/metrics.json, checkpoints in
`checkpoint_dir` / $SM_CHECKPOINT_DIR / /opt/ml/checkpoints, metric lines (metrics.py) on stdout, and on
error a one-paragraph reason in $SM_OUTPUT_DIR/failure plus a non-zero exit code.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from arguments import Arguments, ModelArguments, TrainArguments, parse_arguments
from errors import ArgumentError
from failure import describe, write_failure
from launcher import LaunchPlan, is_torchrun_worker, plan_launch, run_torchrun
from sagemaker_env import SageMakerEnvironment
from weights import local_weights_dir, pull_weights, resolve_s3_uri

if TYPE_CHECKING:
    import torch
    from text_data import PackedBlocks
    from transformers import TrainingArguments

log = logging.getLogger("run_train")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sm = SageMakerEnvironment.from_environ(os.environ)
    rank = int(os.environ["RANK"]) if "RANK" in os.environ else None
    _configure_logging(sm.current_host, rank)
    try:
        args = parse_arguments(argv)
        plan = plan_launch(sm, os.environ)
        if plan.world_size > 1 and not is_torchrun_worker(os.environ):
            return launch(args, sm, plan, argv)
        train(args, sm, plan)
        return 0
    except Exception as error:
        log.exception("training failed")
        write_failure(sm.failure_file, describe(error, host=sm.current_host, rank=rank))
        return 1


def launch(args: Arguments, sm: SageMakerEnvironment, plan: LaunchPlan, argv: Sequence[str]) -> int:
    """This host's share of a multi-process job: per-host preparation, then torchrun."""
    # Once per host, before any worker exists, so N local workers don't race on the same download.
    model_source(args.model, sm)
    code = run_torchrun(plan, Path(__file__).resolve(), argv)
    if code != 0:
        # Only reached when no worker managed to explain itself (e.g. killed by the OOM killer).
        write_failure(
            sm.failure_file,
            f"Training failed on host {sm.current_host}: torchrun exited with code {code} "
            f"(node {plan.node_rank} of {plan.nnodes}, {plan.nproc_per_node} worker(s)). The training log has details.",
        )
    return code


def train(args: Arguments, sm: SageMakerEnvironment, plan: LaunchPlan) -> None:
    # Heavy imports here: the launcher process never needs them.
    import transformers
    from callbacks import MetricLinesCallback, RankReportCallback
    from checkpoints import agreed_resume_checkpoint, resolve_checkpoint_dir
    from metrics import perplexity
    from text_data import pack, read_texts
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, Trainer, default_data_collator

    transformers.utils.logging.set_verbosity_warning()
    # One copy of each transformers warning, in our log format, instead of one from each handler.
    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.enable_propagation()
    transformers.utils.logging.disable_progress_bar()
    transformers.set_seed(args.train.seed)

    # Data first: a broken dataset should fail the job before minutes of weight loading.
    train_texts = read_texts("train", channel_dir(args.data.train_dir, sm, "train"), args.data.text_field)
    val_dir = args.data.val_dir or sm.channels.get("val")
    val_texts = read_texts("val", Path(val_dir), args.data.text_field) if val_dir else None

    model_path = model_source(args.model, sm)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=_torch_dtype(args.model))
    if args.train.gradient_checkpointing:
        model.config.use_cache = False  # the KV cache is useless in training and conflicts with recomputation

    block_size = min(args.data.block_size, _context_length(model.config))
    train_set = pack("train", train_texts, tokenizer, block_size)
    val_set = pack("val", val_texts, tokenizer, block_size) if val_texts else None
    log.info(
        "train: %d texts -> %d blocks of %d tokens; val: %s",
        len(train_texts),
        len(train_set),
        block_size,
        f"{len(val_set)} blocks" if val_set else "none",
    )

    checkpoint_dir = resolve_checkpoint_dir(args.train.checkpoint_dir, os.environ)
    trainer = Trainer(
        model=model,
        args=training_arguments(args.train, checkpoint_dir, val_set, plan),
        train_dataset=train_set,
        eval_dataset=val_set,
        processing_class=tokenizer,
        data_collator=default_data_collator,
    )
    # Our metric lines replace Trainer's dict printing; the rank report proves every node trained.
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(MetricLinesCallback())
    trainer.add_callback(RankReportCallback(sm.current_host, trainer.args.process_index, trainer.args.world_size))

    resume_from = agreed_resume_checkpoint(checkpoint_dir) if args.train.resume else None
    if resume_from and trainer.is_world_process_zero():
        print(f"resuming from {resume_from.name}", flush=True)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

    summary: dict[str, float] = dict(result.metrics)
    if val_set is not None:
        summary.update(trainer.evaluate())
        summary["eval_perplexity"] = perplexity(summary["eval_loss"])
    if trainer.is_world_process_zero():
        # SageMaker uploads SM_OUTPUT_DATA_DIR as output.tar.gz next to the model: the run's final figures.
        sm.output_data_dir.mkdir(parents=True, exist_ok=True)
        (sm.output_data_dir / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")

    # Checkpoints were saved on every node (each has its own disk); the final model is written once,
    # by world rank 0. All ranks still call save_model: under FSDP gathering the weights is collective.
    trainer.args.save_on_each_node = False
    trainer.save_model(str(sm.model_dir))
    if trainer.is_world_process_zero():
        print(f"saved model to {sm.model_dir}", flush=True)


def training_arguments(
    train: TrainArguments, checkpoint_dir: Path, val_set: PackedBlocks | None, plan: LaunchPlan
) -> TrainingArguments:
    """Our hyperparameters -> transformers.TrainingArguments, with the platform's fixed choices."""
    import dataclasses

    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    # transformers renamed gradient_checkpointing to activation_checkpointing (old name deprecated); use
    # whichever this install has so an image's older transformers still works.
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    precision = train.precision
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    fsdp_layers = [name.strip() for name in train.fsdp_transformer_layer_cls_to_wrap.split(",") if name.strip()]
    evaluate_periodically = val_set is not None and train.eval_steps > 0
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=train.num_train_epochs,
        max_steps=train.max_steps,
        per_device_train_batch_size=train.per_device_train_batch_size,
        per_device_eval_batch_size=train.per_device_eval_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        learning_rate=train.learning_rate,
        weight_decay=train.weight_decay,
        warmup_steps=train.warmup_steps,
        lr_scheduler_type=train.lr_scheduler_type,
        max_grad_norm=train.max_grad_norm,
        seed=train.seed,
        logging_strategy="steps",
        logging_steps=train.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if evaluate_periodically else "no",
        eval_steps=train.eval_steps if evaluate_periodically else None,
        save_strategy="steps",
        save_steps=train.save_steps,
        save_total_limit=train.save_total_limit,
        save_on_each_node=True,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        **{checkpointing: train.gradient_checkpointing},
        fsdp=train.fsdp or None,
        fsdp_config={"transformer_layer_cls_to_wrap": fsdp_layers} if fsdp_layers else None,
        ddp_backend=plan.backend if plan.world_size > 1 else None,
        # Causal LMs use every parameter in each forward pass; the search for unused ones costs a graph walk.
        ddp_find_unused_parameters=False,
        use_cpu=not cuda,
        dataloader_num_workers=train.dataloader_num_workers,
        include_num_input_tokens_seen=True,
        report_to="none",
        disable_tqdm=True,
    )


def channel_dir(explicit: str | None, sm: SageMakerEnvironment, channel: str) -> Path:
    if explicit:
        return Path(explicit)
    if channel not in sm.channels:
        raise ArgumentError(f"no `{channel}` channel in the job (channels: {sorted(sm.channels) or 'none'})")
    return sm.channels[channel]


def model_source(model: ModelArguments, sm: SageMakerEnvironment) -> str:
    """Where the base model and tokenizer are: pulled from S3, a given path or hub id, or the `model` channel."""
    if model.model_s3_uri:
        uri = resolve_s3_uri(model.model_s3_uri, sm.model_s3_bucket)
        return str(pull_weights(uri, local_weights_dir(sm.input_dir), os.environ))
    if model.model_name_or_path:
        return model.model_name_or_path
    if "model" in sm.channels:
        return str(sm.channels["model"])
    raise ArgumentError("no base model: add a `model` channel, or set model_s3_uri or model_name_or_path")


def _torch_dtype(model: ModelArguments) -> torch.dtype | str:
    import torch

    return "auto" if model.dtype == "auto" else getattr(torch, model.dtype)


def _context_length(config: object) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def _configure_logging(host: str, rank: int | None) -> None:
    where = host if rank is None else f"{host} rank {rank}"
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{where}] %(name)s: %(message)s",
        stream=sys.stdout,
        force=True,
    )


if __name__ == "__main__":
    sys.exit(main())
