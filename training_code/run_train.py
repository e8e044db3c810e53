"""Causal-LM supervised fine-tuning (TRL SFTTrainer) for SageMaker script mode (`entry_point="run_train.py"`).

The SageMaker training toolkit downloads this folder to /opt/ml/code, installs requirements.txt and
runs `python run_train.py --hyperparameter value ...`. On one host with at most one GPU the script
trains in-process; otherwise it relaunches itself under torchrun (see launcher.py).

    args -> data -> model -> trainer -> train (resuming) -> evaluate -> save

Inputs: the `model` channel (or `model_s3_uri`), the `train` channel (raw text, chat or prompt/completion
records, sft_data.py), optionally `val`.
Outputs: the fine-tuned model and tokenizer in SM_MODEL_DIR (world rank 0 only), final figures in
SM_OUTPUT_DATA_DIR/metrics.json, checkpoints in
`checkpoint_dir` / $SM_CHECKPOINT_DIR / /opt/ml/checkpoints, metric lines (metrics.py) on stdout, and on
error a one-paragraph reason in $SM_OUTPUT_DIR/failure plus a non-zero exit code.
"""

from __future__ import annotations

import faulthandler
import gc
import importlib.util
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import memory_plan
from arguments import Arguments, LoraArguments, ModelArguments, parse_arguments
from errors import ArgumentError, DataError
from failure import describe, write_failure
from launcher import LaunchPlan, efa_environment, is_torchrun_worker, plan_launch, run_torchrun
from sagemaker_env import SageMakerEnvironment
from sft_data import Shape, check_channel, data_files, tokenizing_plan
from weights import WARM_POOL_CACHE_ENV, fetch_model, pull_small_files, resolve_s3_uri

if TYPE_CHECKING:
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

log = logging.getLogger("run_train")

# Set by the launcher for the workers it starts: what it already did once for the whole host.
_CHECKED_DATA_ENV = "TRAINSTACK_CHECKED_DATA"
_MODEL_PATH_ENV = "TRAINSTACK_MODEL_PATH"
# Distribution name -> module: mlflow is the client transformers' MLflowCallback drives; sagemaker-mlflow is
# the plugin that resolves an mlflow-tracking-server ARN as tracking URI and signs requests with the role.
_MLFLOW_PACKAGES = {"mlflow": "mlflow", "sagemaker-mlflow": "sagemaker_mlflow"}
# How long a rank waits for destroy_process_group once every rank has passed the final barrier (see
# leave_process_group); a healthy teardown takes seconds, NCCL's included.
TEARDOWN_TIMEOUT_S = 60.0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sm = SageMakerEnvironment.from_environ(os.environ)
    rank = int(os.environ["RANK"]) if "RANK" in os.environ else None
    _configure_logging(sm.current_host, rank)
    try:
        args = parse_arguments(argv)
        # Before the memory plan and any download: a tracking server the image cannot reach fails now.
        report_to(os.environ)
        plan = plan_launch(sm, os.environ)
        if not is_torchrun_worker(os.environ):
            # First, once per host: a run that cannot fit fails here, before data checks and weight downloads.
            check_memory_plan(args, sm)
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
    # Once per host, before any worker exists (and inside no rendezvous timeout): N local workers must not
    # race on the same download, and a broken dataset fails the job before weights load.
    shapes, model_path = prepare_host(args, sm)
    os.environ[_CHECKED_DATA_ENV] = json.dumps({c: s.value for c, s in shapes.items()})
    os.environ[_MODEL_PATH_ENV] = model_path
    efa_environment(os.environ)
    code = run_torchrun(plan, Path(__file__).resolve(), argv)
    if code != 0:
        # Only reached when no worker managed to explain itself (e.g. killed by the OOM killer).
        write_failure(
            sm.failure_file,
            f"Training failed on host {sm.current_host}: torchrun exited with code {code} "
            f"(node {plan.node_rank} of {plan.nnodes}, {plan.nproc_per_node} worker(s)). The training log has details.",
        )
    return code


def check_memory_plan(args: Arguments, sm: SageMakerEnvironment) -> None:
    """Print the memory plan (memory_plan.py) from the base model's config.json; refuse a run that cannot fit."""
    config = base_model_config(args.model, sm)
    if config is None:
        log.info("no config.json to plan memory from (a hub id): no memory plan")
        return
    values = {k: v for group in (args.model, args.data, args.lora, args.train) for k, v in asdict(group).items()}
    run = memory_plan.run_from_hyperparameters(values, sm.instance_type, len(sm.hosts))
    try:
        plan = memory_plan.plan(config, run)
    except KeyError as missing:
        log.warning("no memory plan: config.json of model_type %r has no %s", config.get("model_type"), missing)
        return
    print(plan.render(), flush=True)
    if not plan.fits:
        raise ArgumentError(plan.refusal(config))


def base_model_config(model: ModelArguments, sm: SageMakerEnvironment) -> dict | None:
    """The base model's config.json: one small S3 object for model_s3_uri (no weights), else the local folder."""
    if model.model_s3_uri:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, prefix = resolve_s3_uri(model.model_s3_uri, sm.model_s3_bucket).removeprefix("s3://").partition("/")
        key = f"{prefix.rstrip('/')}/config.json".lstrip("/")
        try:
            body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as error:  # the download that follows reports it in full
            log.warning("no memory plan: cannot read s3://%s/%s (%s)", bucket, key, error)
            return None
        return json.loads(body)
    folder = Path(model.model_name_or_path) if model.model_name_or_path else sm.channels.get("model")
    if folder is None or not (folder / "config.json").is_file():
        return None
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def prepare_host(args: Arguments, sm: SageMakerEnvironment) -> tuple[dict[str, Shape], str]:
    """Once per host: data, then tokenizer and chat template (early_checks.py), then the weights."""
    from early_checks import check_tokenizer

    shapes = check_data(args, sm)
    tokenizer_dir: Path | str
    if args.model.model_s3_uri:
        uri = resolve_s3_uri(args.model.model_s3_uri, sm.model_s3_bucket)
        tokenizer_dir = pull_small_files(uri, sm.input_dir / "model-small-files")
    else:
        tokenizer_dir = model_source(args.model, sm)
    train_dir = channel_dir(args.data.train_dir, sm, "train")
    check_tokenizer(tokenizer_dir, shapes["train"], train_dir, args.data.assistant_only_loss)
    return shapes, model_source(args.model, sm)


def check_data(args: Arguments, sm: SageMakerEnvironment) -> dict[str, Shape]:
    """Each data channel's record shape, after checking every file once (sft_data.check_channel)."""
    shapes = {"train": check_channel("train", channel_dir(args.data.train_dir, sm, "train"), args.data.text_field)}
    val_dir = args.data.val_dir or sm.channels.get("val")
    if val_dir:
        shapes["val"] = check_channel("val", Path(val_dir), args.data.text_field)
        if shapes["val"] is not shapes["train"]:
            raise DataError(
                f"the val channel's records are {shapes['val'].value}, the train channel's {shapes['train'].value}"
            )
    return shapes


def train(args: Arguments, sm: SageMakerEnvironment, plan: LaunchPlan) -> None:
    # Heavy imports here: the launcher process never needs them.
    import datasets
    import torch
    import transformers
    from callbacks import MetricLinesCallback, RankReportCallback
    from checkpoints import (
        CompleteCheckpointCallback,
        HostCheckpointRotationCallback,
        SaveTriggersCallback,
        agreed_resume_checkpoint,
        resolve_checkpoint_dir,
    )
    from metrics import perplexity
    from model_loading import choose_attention, load_model, master_weights_in_fp32, model_class_for, training_dtype
    from packing import count_packed_tokens
    from sft_data import load_channel
    from transformers import AutoConfig, AutoTokenizer, PrinterCallback
    from trl import SFTTrainer

    transformers.utils.logging.set_verbosity_warning()
    # One copy of each transformers warning, in our log format, instead of one from each handler.
    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.enable_propagation()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    transformers.set_seed(args.train.seed)

    # Data first: a broken dataset should fail the job before minutes of weight loading.
    checked = os.environ.get(_CHECKED_DATA_ENV)
    if checked:
        shapes = {c: Shape(v) for c, v in json.loads(checked).items()}
        model_path = os.environ[_MODEL_PATH_ENV]
    else:
        shapes, model_path = prepare_host(args, sm)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    block_size = min(args.data.block_size, _context_length(AutoConfig.from_pretrained(model_path)))
    checkpoint_dir = resolve_checkpoint_dir(args.train.checkpoint_dir, os.environ)
    precision = resolve_precision(args.train.precision)
    attention = choose_attention(
        args.train.attn_implementation, args.data.packing, torch.cuda.is_available(), model_class_for(model_path)
    )
    config = sft_config(args, shapes["train"], block_size, checkpoint_dir, plan, precision, channel_bytes(args, sm))

    # Loaded and split once per host, main process first: the others read the Arrow cache it wrote.
    cache_dir = data_cache_dir(sm)
    with config.main_process_first(local=True, desc="loading data"):
        train_dir = channel_dir(args.data.train_dir, sm, "train")
        train_set = load_channel("train", train_dir, shapes["train"], args.data.text_field, cache_dir)
        val_dir = args.data.val_dir or sm.channels.get("val")
        val_set = None
        if val_dir:
            val_set = load_channel("val", Path(val_dir), shapes["val"], args.data.text_field, cache_dir)
        elif args.data.validation_split > 0 and len(train_set) >= 2:
            split = train_set.train_test_split(test_size=args.data.validation_split, seed=args.train.seed)
            train_set, val_set = split["train"], split["test"]
    if val_set is None:
        config.eval_strategy = "no"
    log.info(
        "train: %d %s records; val: %s; sequences of up to %d tokens%s",
        len(train_set),
        shapes["train"].value,
        f"{len(val_set)} records" if val_set is not None else "none",
        block_size,
        " (packed)" if args.data.packing else "",
    )

    # Read once per host (model_loading.py), after the data: a broken dataset fails before the weights load.
    model = load_model(
        model_path,
        training_dtype(args.model.dtype, precision),
        attention,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=plan.world_size,
        fsdp=bool(args.train.fsdp),
    )
    master_weights_in_fp32(model, fsdp=bool(args.train.fsdp), lora=args.lora.lora_r > 0)
    # transformers' TensorBoardCallback reads its folder from this variable when it is built (it has no
    # TrainingArguments field in transformers 5) and writes on world rank 0 only.
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(sm.tensorboard_dir))
    with count_packed_tokens() as packed:
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=train_set,
            eval_dataset=val_set,
            processing_class=tokenizer,
            peft_config=lora_config(args.lora),
        )
    if trainer.is_world_process_zero():
        for line in packed.report_lines():
            print(line, flush=True)
    # Our metric lines replace Trainer's dict printing; the rank report proves every node trained.
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(MetricLinesCallback())
    trainer.add_callback(RankReportCallback(sm.current_host, trainer.args.process_index, trainer.args.world_size))
    trainer.add_callback(CompleteCheckpointCallback(checkpoint_dir))
    # After the manifest's gather: every rank has finished writing the checkpoint before any host prunes.
    trainer.add_callback(HostCheckpointRotationCallback(checkpoint_dir, args.train.save_total_limit))
    triggers = SaveTriggersCallback(args.train.save_minutes)
    trainer.add_callback(triggers)

    resume_from = agreed_resume_checkpoint(checkpoint_dir) if args.train.resume else None
    if resume_from and trainer.is_world_process_zero():
        print(f"resuming from {resume_from.name}", flush=True)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if triggers.terminating:
        # SIGTERM: the checkpoint is what a restart needs; the rest of the stop window is not ours to spend.
        if trainer.is_world_process_zero():
            print(f"stopped by SIGTERM after checkpoint-{trainer.state.global_step}", flush=True)
        leave_process_group()
        return

    summary: dict[str, float] = dict(result.metrics)
    if val_set is not None:
        summary.update(final_evaluation(trainer))
        summary["eval_perplexity"] = perplexity(summary["eval_loss"])
    if trainer.is_world_process_zero():
        # SageMaker uploads SM_OUTPUT_DATA_DIR as output.tar.gz next to the model: the run's final figures.
        sm.output_data_dir.mkdir(parents=True, exist_ok=True)
        (sm.output_data_dir / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    save_final_model(trainer, tokenizer, sm.model_dir, args)
    leave_process_group()


def leave_process_group(
    teardown_timeout_s: float = TEARDOWN_TIMEOUT_S, exit_process: Callable[[int], object] = os._exit
) -> None:
    """All ranks leave the process group together once the work is done; the teardown is bounded.

    The barrier: otherwise rank 0, still writing the model, and the other ranks, already exiting, tear the group
    down at different times, and a gloo or NCCL peer whose connection closes under it aborts (SIGABRT): a finished
    job that fails on one host. It waits as long as the group's timeout (ddp_timeout) for rank 0's final save.

    Past the barrier every rank's work is saved. destroy_process_group can still hang (pytorch/pytorch#75097),
    and a rank that never exits holds its host's torchrun agent, the other agents wait for it in torchrun's exit
    barrier, and the job runs on until MaxRuntimeInSeconds. So the teardown gets `teardown_timeout_s`; past that
    the stacks go to stderr and the process exits 0 at once (`exit_process`), without the interpreter's own
    teardown, which would wait on the same group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    log.info("every rank has finished; leaving the process group")
    release_ddp_reducers()
    done = threading.Event()
    failures: list[BaseException] = []

    def destroy() -> None:
        try:
            dist.destroy_process_group()
        except BaseException as error:  # re-raised below, in the caller's thread
            failures.append(error)
        finally:
            done.set()

    # A daemon thread: a hung teardown must not also hold the interpreter's exit.
    started = time.monotonic()
    threading.Thread(target=destroy, name="destroy_process_group", daemon=True).start()
    if done.wait(teardown_timeout_s):
        if failures:
            raise failures[0]
        log.info("left the process group in %.1f s", time.monotonic() - started)
        return
    log.warning(
        "destroy_process_group has not returned %.0f s after every rank passed the final barrier; "
        "the work is saved, so this rank exits without it (thread stacks follow)",
        teardown_timeout_s,
    )
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    exit_process(0)


def release_ddp_reducers() -> None:
    """Drops every DistributedDataParallel's C++ Reducer while the process group is still registered.

    A Reducer holds the group and is freed with the GIL held (pybind11 shared_ptr holder). Freed last, at the
    interpreter's exit after destroy_process_group, it runs ProcessGroupGloo's destructor, which joins the gloo
    work thread; that thread is freeing the final barrier's work, whose tensors need the GIL: a deadlock (seen
    as a finished rank alive for minutes; gdb: ~Reducer -> ~ProcessGroupGloo -> thread::join, and
    ~AsyncBarrierWork -> gil_scoped_acquire). Freed here, the registry still holds the group, and
    destroy_process_group frees it through the binding that releases the GIL. Training is over: no backward
    pass needs a Reducer again."""
    from torch.nn.parallel import DistributedDataParallel

    for candidate in gc.get_objects():
        if isinstance(candidate, DistributedDataParallel) and "reducer" in candidate.__dict__:
            del candidate.__dict__["reducer"]
    gc.collect()


def final_evaluation(trainer: SFTTrainer) -> dict[str, float]:
    """The end-of-run evaluation, unless the periodic one just ran at the last step (then its figures)."""
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry.get("step") == step:
            return {k: v for k, v in entry.items() if k.startswith("eval_")}
    return trainer.evaluate()


def save_final_model(trainer: SFTTrainer, tokenizer: object, model_dir: Path, args: Arguments) -> None:
    """One consolidated model in SM_MODEL_DIR, written by world rank 0 (bf16 when trained in bf16).

    Gathering the weights is collective under FSDP, so every rank calls this. With LoRA the adapter is
    written (to `adapter/` when `merge_lora` also writes the merged full model at the top).
    """
    import torch

    accelerator = trainer.accelerator
    if trainer.is_fsdp_enabled:
        # Checkpoints stay sharded (fast, parallel); the deliverable is one full state dict.
        accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    state_dict = accelerator.get_state_dict(trainer.model)
    if not trainer.is_world_process_zero():
        return
    model = accelerator.unwrap_model(trainer.model)
    if trainer.args.bf16:
        state_dict = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state_dict.items()}
    # Gradient checkpointing turns the KV cache off for training; whoever loads the model wants it on.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.use_cache = True
    model_dir.mkdir(parents=True, exist_ok=True)
    if args.lora.lora_r and args.lora.merge_lora:
        from peft import AutoPeftModelForCausalLM

        adapter_dir = model_dir / "adapter"
        model.save_pretrained(adapter_dir, state_dict=state_dict)
        tokenizer.save_pretrained(adapter_dir)
        merged = AutoPeftModelForCausalLM.from_pretrained(
            adapter_dir, dtype=torch.bfloat16 if trainer.args.bf16 else torch.float32
        ).merge_and_unload()
        merged.config.use_cache = True
        merged.save_pretrained(model_dir)
    else:
        model.save_pretrained(model_dir, state_dict=state_dict)
        if trainer.args.bf16 and not args.lora.lora_r:
            # save_pretrained records the dtype of the parameters in memory (the fp32 master weights), not that
            # of the bf16 state dict it wrote; a loader with dtype="auto" would double the memory.
            base.config.dtype = torch.bfloat16
            base.config.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    print(f"saved model to {model_dir}", flush=True)


def report_to(environ: Mapping[str, str]) -> list[str]:
    """TensorBoard always; MLflow too when the platform set MLFLOW_TRACKING_URI (the environment's
    training.mlflow_tracking_server_arn). An ARN as tracking URI needs the sagemaker-mlflow plugin besides mlflow;
    without them transformers would skip MLflow with a warning, and the run would log nowhere it was asked to."""
    if not environ.get("MLFLOW_TRACKING_URI"):
        return ["tensorboard"]
    missing = [package for package, module in _MLFLOW_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ArgumentError(
            f"MLFLOW_TRACKING_URI is set (the environment's training.mlflow_tracking_server_arn) but this image lacks "
            f"{', '.join(missing)}: use the platform's image (training_code/Dockerfile installs them), add them to "
            "the code's requirements.txt, or unset training.mlflow_tracking_server_arn"
        )
    return ["tensorboard", "mlflow"]


def resolve_precision(requested: str) -> str:
    """`auto`: bf16 on GPUs that support it, else fp32; anything else as given."""
    import torch

    if requested != "auto":
        return requested
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def sft_config(
    args: Arguments,
    shape: Shape,
    block_size: int,
    checkpoint_dir: Path,
    plan: LaunchPlan,
    precision: str,
    data_bytes: int = 0,
) -> SFTConfig:
    """Our hyperparameters -> TRL's SFTConfig (a TrainingArguments), with the platform's fixed choices."""
    import dataclasses

    import torch
    from trl import SFTConfig

    train = args.train
    num_proc, collective_timeout = tokenizing_plan(data_bytes, os.cpu_count() or 1)
    cuda = torch.cuda.is_available()
    # transformers renamed gradient_checkpointing to activation_checkpointing (the old name warns); use
    # whichever this install has, so an image with an older transformers 5 still works.
    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    fsdp_layers = [name.strip() for name in train.fsdp_transformer_layer_cls_to_wrap.split(",") if name.strip()]
    fsdp_config: dict[str, object] | None = None
    if train.fsdp:
        # RAM-efficient loading: only rank 0 reads the weights, the others start on the meta device and get
        # theirs from the broadcast (sync_module_states). Checkpoints are sharded (every rank writes its own
        # shard in parallel); save_final_model gathers one full copy. Activation checkpointing goes through
        # FSDP's wrapper, not the model's gradient_checkpointing flag, which transformers warns about.
        fsdp_config = {
            "cpu_ram_efficient_loading": True,
            "sync_module_states": True,
            "state_dict_type": "SHARDED_STATE_DICT",
            "use_orig_params": True,
            "activation_checkpointing": train.gradient_checkpointing,
            **({"transformer_layer_cls_to_wrap": fsdp_layers} if fsdp_layers else {}),
        }
    evaluate_periodically = train.eval_steps > 0
    return SFTConfig(
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
        # One shared S3 prefix for every host (checkpoints.py): no node writes a second copy of the weights.
        save_on_each_node=False,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        **{checkpointing: train.gradient_checkpointing and not train.fsdp},
        fsdp=train.fsdp or "",
        fsdp_config=fsdp_config,
        ddp_backend=plan.backend if plan.world_size > 1 else None,
        # Causal LMs use every parameter in each forward pass; the search for unused ones costs a graph walk.
        ddp_find_unused_parameters=False,
        use_cpu=not cuda,
        dataloader_num_workers=train.dataloader_num_workers,
        torch_compile=train.torch_compile,
        use_liger_kernel=train.use_liger_kernel,
        include_num_input_tokens_seen=True,
        # Event files for TensorBoardOutputConfig (run_train sets the folder), and MLflow when configured.
        report_to=report_to(os.environ),
        disable_tqdm=True,
        # TRL: the data side.
        max_length=block_size,
        packing=args.data.packing,
        # Raw text is split across rows rather than truncated (every token trains); a conversation or a
        # prompt/completion pair is kept whole (split, its tail would train without its prompt) and what
        # does not fit a row is counted and reported (packing.py).
        packing_strategy="bfd_split" if shape is Shape.TEXT else "bfd",
        dataset_text_field=args.data.text_field,
        assistant_only_loss=shape is Shape.CHAT and args.data.assistant_only_loss,
        completion_only_loss=None,  # on for prompt/completion records, by TRL's own rule
        dataset_num_proc=args.data.dataset_num_proc or num_proc,
        ddp_timeout=collective_timeout,
    )


def lora_config(lora: LoraArguments) -> LoraConfig | None:
    if lora.lora_r == 0:
        return None
    from peft import LoraConfig

    targets = lora.lora_target_modules.strip()
    return LoraConfig(
        r=lora.lora_r,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()],
        task_type="CAUSAL_LM",
    )


def channel_bytes(args: Arguments, sm: SageMakerEnvironment) -> int:
    """Size of the train and val channels' files: what the host's main process will tokenize."""
    folders = [channel_dir(args.data.train_dir, sm, "train")]
    val_dir = args.data.val_dir or sm.channels.get("val")
    if val_dir:
        folders.append(Path(val_dir))
    return sum(path.stat().st_size for folder in folders for path in data_files(folder.name, folder))


def data_cache_dir(sm: SageMakerEnvironment) -> Path:
    # On the ML storage volume (not the small root disk); in the warm pool's cache when there is one, so a
    # job on a reused pool finds the tokenized data of the last one (same files -> same fingerprints).
    warm = os.environ.get(WARM_POOL_CACHE_ENV)
    return Path(warm) / "datasets" if warm else sm.input_dir / "datasets-cache"


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
        return str(fetch_model(uri, sm.input_dir, os.environ))
    if model.model_name_or_path:
        return model.model_name_or_path
    if "model" in sm.channels:
        return str(sm.channels["model"])
    raise ArgumentError("no base model: add a `model` channel, or set model_s3_uri or model_name_or_path")


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
