"""One training run: data -> loss -> SentenceTransformerTrainer -> evaluation -> saved (and pushed) model.

The recipes, ``hf-softnce train`` and the main job all call :func:`train_retriever`.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from transformers import set_seed

from hf_softnce.data import all_columns, to_training_dataset
from hf_softnce.data.schema import check_label_column, negative_columns
from hf_softnce.evaluation import CodeSearchEvaluator, evaluate_retrieval_sets
from hf_softnce.output_paths import check_training_output, readable_as_umask_allows
from hf_softnce.training.checkpoints import SaveConfigCallback, resume_checkpoint
from hf_softnce.training.config import ConfigError, TrainConfig
from hf_softnce.training.data import TaskData, load_task_data
from hf_softnce.training.losses import build_loss
from hf_softnce.training.models import load_model
from hf_softnce.training.wise_ft import interpolate_with_base

logger = logging.getLogger(__name__)
BASE_METRICS_ATTRIBUTE = "_base_metrics"  # on a TaskData: {base model name: its metrics on that data's sets}


@dataclass
class RunResult:
    config: TrainConfig
    model: object
    loss: object
    metrics: dict[str, float] = field(default_factory=dict)
    output_dir: Path | None = None
    per_query: dict[str, dict[str, int]] = field(default_factory=dict)  # {set: {query id: rank}}, for intervals
    base_metrics: dict[str, float] = field(default_factory=dict)  # the base model on the same sets, for the card


def is_main_process() -> bool:
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def leave_process_group() -> None:
    """End a multi-process run with every rank together; nothing in one process.

    A rank that exits while rank 0 still evaluates or writes its files can abort in the process group's teardown
    ("terminate called without an active exception", SIGABRT), failing the whole launch after its work is done.
    The trainer's DDP wrapper, unreachable once training returned, is collected first, while the process group is
    still registered: collected after it, its reducer holds the group's last reference and tears the group down
    while holding the GIL, and gloo's worker thread, waiting for the GIL, deadlocks that rank at exit.
    """
    if torch.distributed.is_initialized():
        gc.collect()
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def encode_batch_size(model) -> int:
    """The batch size for encoding a codebase: 16 on a CPU, 64 on an accelerator.

    Measured on 2 CPU cores (MiniLM-L6, CoSQA codes at 256 tokens): batches of 16 encode 20% faster than 64
    (20.3 s vs 25.3 s for 1,200 codes; 12 and 24 within 1 s of 16), which saves ~30 s on every ranking of the
    6,267-code codebase. Accelerators want large batches.
    """
    return 16 if model.device.type == "cpu" else 64


def evaluate_model(model, data: TaskData, batch_size: int | None = None, per_query: dict | None = None,
                   show_progress_bar: bool = True) -> dict[str, float]:
    """Metrics on every evaluation set of ``data``, computed once on the main process and shared with all ranks.

    ``batch_size``: encoding batch size, :func:`encode_batch_size` when None.
    ``per_query`` (main process only): filled with ``{set: {query id: rank of the gold code}}``.

    The codebase's embeddings are kept for this process: mining, the trained-model estimator, the order teacher
    and the cascade read them when they encode the same codes with the same weights.
    """
    batch_size = batch_size or encode_batch_size(model)
    metrics = None
    if is_main_process():
        metrics = evaluate_retrieval_sets(model, data.eval_sets(), batch_size=batch_size, per_query=per_query,
                                          show_progress_bar=show_progress_bar, remember_embeddings=True)
    if torch.distributed.is_initialized():
        shared = [metrics]
        torch.distributed.broadcast_object_list(shared, src=0)
        metrics = shared[0]
    return metrics


def base_model_metrics(config: TrainConfig, data: TaskData, base_model=None) -> dict[str, float]:
    """The base model on ``data``'s evaluation sets, for the card's "base model" row beside the run's.

    Computed once per (data, base model) and kept on ``data``: the main job trains many rows on one ``data``
    (:func:`remember_base_metrics` hands it a zero-shot evaluation it already has). Every rank calls this (the
    evaluation is shared with a broadcast), so every rank takes the same branch.
    """
    cache = data.__dict__.setdefault(BASE_METRICS_ATTRIBUTE, {})
    if config.model not in cache:
        cache[config.model] = evaluate_model(base_model if base_model is not None else load_model(config.model), data)
    return cache[config.model]


def remember_base_metrics(data: TaskData, model_name: str, metrics: dict[str, float]) -> None:
    """Hand :func:`base_model_metrics` an evaluation of ``model_name`` on ``data`` made elsewhere (a zero-shot row)."""
    data.__dict__.setdefault(BASE_METRICS_ATTRIBUTE, {})[model_name] = metrics


def selection_set(config: TrainConfig, data: TaskData):
    if config.select_on not in ("auto", "valid", "cosqa", "none"):
        raise ValueError(f"select_on={config.select_on!r}: choose valid, cosqa, auto or none.")
    if config.select_on == "none":
        return None
    if config.select_on == "cosqa" and data.real_select is None:
        raise ValueError("select_on=cosqa but no CoSQA dev split was found (set cosqa_dir).")
    if config.select_on in ("cosqa", "auto") and data.real_select is not None:
        return data.real_select
    return data.valid


def training_arguments(
    config: TrainConfig, selecting: bool, metric: str | None, args_class=SentenceTransformerTrainingArguments
) -> SentenceTransformerTrainingArguments:
    """The trainer's arguments: hf_softnce's settings, then every training-argument field of the config on top.

    args_class: CrossEncoderTrainingArguments for the ranker recipe, which shares every setting here.
    """
    use_cpu = (not torch.cuda.is_available()) if config.use_cpu is None else config.use_cpu
    # Choosing the best checkpoint needs an evaluation at every save: save_steps alone sets the evaluation
    # interval too, eval_steps alone the save interval; neither: both once per epoch.
    every = config.eval_steps or (config.save_steps if selecting else None)
    save_every = config.save_steps or config.eval_steps
    values = dict(
        output_dir=config.output_dir,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        **_warmup(config.warmup_ratio),
        bf16=config.bf16,
        fp16=config.fp16,
        use_cpu=use_cpu,
        # gloo only under a multi-process launch: accelerate treats any explicit backend as distributed.
        ddp_backend=config.ddp_backend or ("gloo" if use_cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None),
        seed=config.seed,
        data_seed=config.seed,
        # In-batch duplicates would be false negatives: never put two identical texts in one batch.
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy=("steps" if every else "epoch") if selecting else "no",
        eval_steps=every if selecting else None,
        save_strategy="steps" if save_every else "epoch",
        save_steps=save_every,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=selecting,
        metric_for_best_model=f"eval_{metric}" if selecting else None,
        greater_is_better=True,
        logging_steps=config.logging_steps,
        report_to=["tensorboard"] if importlib.util.find_spec("tensorboard") else [],
        dataloader_drop_last=True,
    )
    # Any SentenceTransformerTrainingArguments field named in the config wins over what hf_softnce would set.
    values.update(config.training_args)
    try:
        return args_class(**values)
    except ValueError as error:
        # The combination is wrong (e.g. save_steps not a multiple of eval_steps when choosing the best model).
        raise ConfigError(f"training arguments: {' '.join(str(error).split())}") from None


def _warmup(ratio: float) -> dict:
    # Transformers v5 takes the ratio as a float warmup_steps (< 1: a fraction of the total steps) and deprecates
    # warmup_ratio; v4 needs warmup_ratio. TrainConfig keeps warmup_ratio below 1, so its meaning never changes.
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"warmup_steps": float(ratio)}
    return {"warmup_ratio": ratio}


def _with_mined_negatives(config: TrainConfig, data: TaskData, progress: bool) -> TaskData:
    """``data`` whose training pairs carry ``num_negatives`` hard negatives, as the main job's mined rows and the order
    recipe get them: ranked by a frozen retriever (``miner_model``, else the base model) from the codebase the real
    queries search when there is one (else the training codes), never the positive's duplicate group, within the
    config's ``mining_*`` margins and strategy: the mining keys a card shows are the ones that trained the model."""
    import copy

    from hf_softnce.training.ranker import mine_negatives

    retriever = load_model(config.miner_model or config.model, max_seq_length=config.max_seq_length)
    mined = copy.copy(data)  # the same evaluation sets, another training set
    mined.train = mine_negatives(config, data.train, retriever, corpus=data.codebase, progress=progress)
    del retriever
    gc.collect()
    return mined


def train_retriever(
    config: TrainConfig, data: TaskData | None = None, *, progress: bool = True, callbacks: list | None = None
) -> RunResult:
    """Train one retriever as ``config`` says, evaluate it, save it under ``output_dir/final``.

    ``callbacks``: ``transformers.TrainerCallback`` objects handed to the trainer (early stopping, custom logging).
    """
    check_training_output(config.output_dir, config.model)  # before the data, the model and any step
    resume = resume_checkpoint(config.resume_from_checkpoint, config.output_dir, config)
    repo_id = None
    if config.push_to_hub:
        from hf_softnce.hub import preflight_push

        # Credentials and repo access are checked before any data is built or any step is taken.
        repo_id = preflight_push(config.push_to_hub, private=config.hub_private)
    set_seed(config.seed)
    data = data if data is not None else load_task_data(config, progress=progress)
    check_label_column(data.train)  # once, before the model is loaded and the trainer set up
    if config.num_negatives > 0 and not negative_columns(data.train.column_names):
        data = _with_mined_negatives(config, data, progress)
    model = load_model(config.model)
    # max_seq_length truncates training texts (a speed setting); the model keeps at least its own length for
    # evaluation and after saving, so a model trained at 128 tokens still reads the codebase as its base did.
    own_max_seq_length = model.max_seq_length
    model.max_seq_length = config.max_seq_length
    groups = None
    if "dup_group" in data.train.column_names:
        groups = dict(zip(data.train["code"], all_columns(data.train)["dup_group"]))  # a loader's pairs hide it
    loss = build_loss(config, model, data.train, duplicate_groups=groups)
    chosen = selection_set(config, data)
    evaluator = None
    if chosen is not None:
        evaluator = CodeSearchEvaluator(chosen, name=chosen.name, batch_size=encode_batch_size(model))
    args = training_arguments(config, evaluator is not None, evaluator.primary_metric if evaluator else None)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=to_training_dataset(data.train),
        loss=loss,
        evaluator=evaluator,
        callbacks=[*(callbacks or []), SaveConfigCallback(config)],
    )
    trainer.train(resume_from_checkpoint=resume)
    # Rows whose SoftInfoNCE weights were undefined are counted on the device; one read once the steps are over
    # (it waits for the device) warns about them.
    getattr(loss, "undefined_weight_rows", None)

    base_model = None
    if config.wise_ft_weight is not None:
        base_model = load_model(config.model)
        interpolate_with_base(model, base_model, config.wise_ft_weight)
    model.max_seq_length = max(own_max_seq_length or 0, config.max_seq_length)
    per_query: dict = {}
    # The saved weights' numbers (after WiSE-FT): the only ones the card reports.
    metrics = evaluate_model(model, data, per_query=per_query, show_progress_bar=progress)
    base_metrics = base_model_metrics(config, data, base_model) if config.evaluate_base else {}
    output_dir = Path(config.output_dir)
    if is_main_process():
        from hf_softnce.training.publish import publish_run, single_run_summary, write_run_card

        final = output_dir / "final"
        # hf_softnce's card replaces sentence-transformers' stock one (placeholders, pre-WiSE-FT eval logs).
        model.save(str(final), create_model_card=False)
        readable_as_umask_allows(final)
        summary = single_run_summary(config, loss, data, metrics, base_metrics, repo_id=repo_id,
                                     selected=chosen.name if chosen is not None else None)
        write_run_card(output_dir, model, summary)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if base_metrics:
            (output_dir / "base_metrics.json").write_text(json.dumps(base_metrics, indent=2))
        else:  # an earlier run's in the same folder would read as this run's base
            (output_dir / "base_metrics.json").unlink(missing_ok=True)
        (output_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        if repo_id:
            publish_run(config, repo_id)
    return RunResult(config, model, loss, metrics, output_dir, per_query, base_metrics)
