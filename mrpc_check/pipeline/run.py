"""The orchestrator: one call per stage, in pipeline order.

data -> tokenize -> collate/batch -> model -> optimizer -> loop (+ metric) -> report
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Optional, Protocol

import torch

from mrpc_check.pipeline.batching import make_collator, make_eval_loader, make_train_loader
from mrpc_check.pipeline.checkpoint import Checkpointer
from mrpc_check.pipeline.config import TrainConfig
from mrpc_check.pipeline.data import LABEL_NAMES, label_counts, load_mrpc
from mrpc_check.errors import ConfigError, DataError, TrainingError, os_reason
from mrpc_check.pipeline.evaluation import evaluate_model, load_metric
from mrpc_check.pipeline.model import (
    autocast_dtype,
    build_optimizer,
    load_model,
    load_tokenizer,
    parameter_count,
    resolve_checkpoint,
    resolve_device,
)
from mrpc_check.pipeline.report import (
    CURVES_NAME,
    build_report,
    draw_curves,
    ensure_writable,
    output_lock,
    prepare_output_dir,
    refuse_mixed,
    remove_if_empty,
    save_outputs,
)
from mrpc_check.pipeline.stats import analyse, majority_baseline
from mrpc_check.pipeline.tokenize import max_length_for, token_lengths, tokenize_dataset
from mrpc_check.pipeline.train import train_manual
from mrpc_check.pipeline.train_accelerate import train_accelerate
from mrpc_check.pipeline.train_trainer import train_trainer


class Rules(Protocol):
    """What the pipeline asks of acceptance rules it is handed (:class:`mrpc_check.acceptance.floors.Floors`).

    The rules come in as an argument, so the pipeline judges by them without importing the layer
    that defines them.
    """

    def refuse(self, baseline: dict, split: str = "validation") -> None: ...

    def judge_split(self, scores: dict, analysis: dict, split: str = "validation") -> dict: ...

    def judge_report(self, report: dict, apply_floors: bool = True) -> dict: ...


def run_training(cfg: TrainConfig, floors: Optional[Rules] = None, command: Optional[list] = None) -> dict:
    """Fine-tune on MRPC as ``cfg`` says and write the run's results.

    Args:
        cfg: the full recipe.
        floors: acceptance rules to judge the run by (refused before training when the majority
            class alone clears them); the verdict lands in the report's ``floors`` entry.
        command: the command line to record in the report (default: this process's).

    Returns:
        The report (also written to ``OUTPUT/report.json``); on Accelerate's
        non-main processes, the report without writing anything.

    Raises:
        MrpcCheckError: bad input anywhere (data, model, config, output folder).
    """
    with owned_output(cfg.output_dir):
        return _train(cfg, floors, command)


@contextlib.contextmanager
def owned_output(path: str):
    """The output folder for one run: created writable and locked by the main process; removed if the run fails
    having created it and left it empty. Shared by :func:`run_training` and a user's loop's runs."""
    out = Path(path).expanduser()
    created = not out.exists()
    # One writer per folder: the main process (RANK 0, or no launcher at all) holds the lock.
    writer = os.environ.get("RANK", "0") == "0"
    try:
        if writer:
            ensure_writable(out)
        with output_lock(out) if writer else contextlib.nullcontext():
            yield out
    except BaseException:
        if created and writer:
            remove_if_empty(out)  # a failed run leaves no empty folder behind
        raise


def _train(cfg: TrainConfig, floors: Optional[Rules], command: Optional[list]) -> dict:
    """:func:`run_training`'s stages, with the output folder locked."""
    out = prepare_output_dir(cfg.output_dir, cfg.overwrite, cfg.resume)  # refuse before hours of work, not after
    device = resolve_device(cfg.device)
    autocast_dtype(cfg.mixed_precision, device)  # fp16 without CUDA fails here, not after tokenizing

    # 1-4. data, tokenize, collate, model
    raw, checkpoint, tokenizer, tokenized, collator, model = prepare_stages(cfg, floors)
    # 5-7. loaders, optimizer, loop with the metric after each epoch; SIGTERM/SIGINT stop at a
    # step boundary with a checkpoint (Trainer keeps its own checkpoints and signal handling).
    if cfg.loop == "trainer":
        result = fit(model, tokenizer, tokenized["train"], tokenized["validation"], collator, cfg)
        checkpointer = None
    else:
        checkpointer = Checkpointer(out, cfg.checkpoint_every, cfg.to_dict(), cfg.resume, keep=cfg.keep_checkpoints)
        with checkpointer.signals():
            result = fit(model, tokenizer, tokenized["train"], tokenized["validation"], collator, cfg, checkpointer)
    # 8. the labelled test split, when the source has one (raw MSR files), scored once at the end
    test = score_test_split(model, tokenizer, tokenized, raw, collator, cfg) if result.main_process else None
    # 9. report
    report = build_report(cfg.to_dict(), checkpoint, device.type, result, raw["validation"]["label"], test, command)
    if floors is not None:
        report["floors"] = floors.judge_report(report)
    if report["degenerate"]["flag"] and result.main_process:
        print(f"warning: degenerate run: {report['degenerate']['reason']}")
    if not result.main_process:
        return report
    try:
        report = save_outputs(model, tokenizer, report, out)  # model/, then report.json naming it
    except OSError as exc:
        why = os_reason(exc)
        kept = f"checkpoint {checkpointer.last_saved} is kept" if checkpointer and checkpointer.last_saved else "nothing earlier was replaced"
        raise TrainingError(f"results not written to {out} ({why}); {kept}: free space, then rerun "
                            f"{'with --resume' if checkpointer and checkpointer.last_saved else 'the run'}") from exc
    skipped = draw_curves(report, out / CURVES_NAME)
    if skipped:
        print(skipped)
    if checkpointer:
        checkpointer.clear()  # the results are on disk: the checkpoints have done their job
    return report


def prepare_stages(cfg: TrainConfig, floors: Optional[Rules] = None) -> tuple:
    """Stages 1-4, before any loop: ``(raw, checkpoint, tokenizer, tokenized, collator, model)``.

    Shared by :func:`run_training` and the runs of a user's own loop
    (:mod:`mrpc_check.acceptance.user_loop`), so both train on the same data, tokens and model.
    """
    from transformers import set_seed

    # 1. data
    raw = load_mrpc(cfg.data)
    if floors is not None:
        floors.refuse(majority_baseline(raw["validation"]["label"]))  # before hours of work
    if cfg.max_train_samples:
        raw["train"] = raw["train"].select(range(min(cfg.max_train_samples, len(raw["train"]))))
    # 2. tokenize
    checkpoint = resolve_checkpoint(cfg.model)
    tokenizer = load_tokenizer(checkpoint)
    tokenized = tokenize_dataset(raw, tokenizer, max_length_for(tokenizer, requested=cfg.max_length))
    # 3. collate (the batches themselves are cut inside the loop, from the seed)
    collator = make_collator(tokenizer, cfg.pad_to_multiple_of)
    # 4. model (the head's initialisation draws from the seed)
    set_seed(cfg.seed)
    model = load_model(checkpoint, raw["train"].features["label"].names, dropout=cfg.dropout, freeze_layers=cfg.freeze_layers)
    return raw, checkpoint, tokenizer, tokenized, collator, model


def labelled_test_split(raw) -> bool:
    """Whether the source carries a test split with labels (the raw MSR files do, GLUE's test.tsv does not)."""
    return "test" in raw and len(raw["test"]) > 0 and min(raw["test"]["label"]) >= 0


def score_test_split(model, tokenizer, tokenized, raw, collator, cfg: TrainConfig) -> Optional[dict]:
    """Predict the labelled test split with the trained model; None when the source has none."""
    if not labelled_test_split(raw):
        return None
    predictions: list = []
    loader = make_eval_loader(tokenized["test"], collator, cfg.eval_batch_size)
    device = next(model.parameters()).device
    metrics = evaluate_model(model, loader, device=device, autocast_dtype=autocast_dtype(cfg.mixed_precision, device),
                             predictions_out=predictions)
    print(f"test accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}")
    return {"metrics": metrics, "predictions": predictions, "labels": raw["test"]["label"]}


def fit(model, tokenizer, train_dataset, eval_dataset, collator, cfg: TrainConfig, checkpointer=None, metric=None):
    """Train a built model with the loop ``cfg.loop`` names: batches, optimizer, loop, metric.

    The part of :func:`run_training` that the check battery's adapters for our own loops call
    too (:mod:`mrpc_check.checks.adapters`), so the battery verifies the code the CLI runs.

    Args:
        model: a sequence classifier.
        tokenizer: its tokenizer (Trainer saves it with its checkpoints).
        train_dataset: the tokenized training split (``labels`` column, torch format).
        eval_dataset: the tokenized evaluation split, the same way.
        collator: the padding collator.
        cfg: the recipe.
        checkpointer: a :class:`Checkpointer` for the manual and Accelerate loops, or None.
        metric: an ``evaluate`` module; the bundled MRPC metric when None.

    Returns:
        The loop's :class:`mrpc_check.pipeline.steplog.TrainResult`.
    """
    lengths = token_lengths(train_dataset) if cfg.group_by_length else None
    train_loader = make_train_loader(train_dataset, collator, cfg.batch_size, cfg.seed, lengths, cfg.num_workers)
    eval_loader = make_eval_loader(eval_dataset, collator, cfg.eval_batch_size, cfg.num_workers)
    # The schedule is sized inside each loop, from the loader it really iterates.
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    metric = metric or load_metric()
    if cfg.loop == "manual":
        return train_manual(model, optimizer, train_loader, eval_loader, cfg, metric, checkpointer)
    if cfg.loop == "accelerate":
        return train_accelerate(model, optimizer, train_loader, eval_loader, cfg, metric, checkpointer=checkpointer)
    return train_trainer(model, tokenizer, {"train": train_dataset, "validation": eval_dataset}, collator, cfg, metric)


def run_evaluation(model: str, data: str, split: str = "validation", batch_size: int = 32, device: str = "auto",
                   floors: Optional[Rules] = None) -> dict:
    """Score a fine-tuned model, as it is, on one split: no training.

    Returns:
        ``{"split", "examples", "model", "accuracy", "f1", "baseline", "analysis", "degenerate"}``
        and, with ``floors``, their verdict under ``"floors"``.

    Raises:
        DataError: the split is absent or carries no labels (GLUE's test.tsv).
        ModelError: the checkpoint has no trained classification head.
        ConfigError: a floor at or below the split's majority baseline.
    """
    raw = load_mrpc(data)
    if split not in raw:
        raise DataError(f"split {split!r} is not in this MRPC source (it has {', '.join(raw)}): pick one of those")
    dataset = raw[split]
    if any(label < 0 for label in dataset["label"]):
        raise DataError(f"split {split!r} has no labels (GLUE's test.tsv is unlabelled): use the raw MSR files or --split validation")
    labels = dataset["label"]
    if floors is not None:
        floors.refuse(majority_baseline(labels), split)
    checkpoint = resolve_checkpoint(model)
    if Path(checkpoint).is_dir():
        refuse_mixed(Path(checkpoint).resolve().parent)  # OUTPUT/model beside another run's report.json: said, not scored
    # A model without a trained head is refused before any tokenizing: seconds, not the whole split.
    net = load_model(checkpoint, LABEL_NAMES, require_head=True)
    tokenizer = load_tokenizer(checkpoint)
    from datasets import DatasetDict

    tokenized = tokenize_dataset(DatasetDict({split: dataset}), tokenizer, max_length_for(tokenizer))
    loader = make_eval_loader(tokenized[split], make_collator(tokenizer), batch_size)
    target = resolve_device(device)
    net.to(target)
    predictions: list = []
    metrics = evaluate_model(net, loader, device=target, predictions_out=predictions, progress=True)
    analysis = analyse(predictions, labels, metrics)
    result = {"split": split, "examples": len(dataset), "model": checkpoint, **metrics,
              "baseline": analysis.pop("baseline"), "degenerate": analysis.pop("degenerate"), "analysis": analysis}
    if floors is not None:
        result["floors"] = floors.judge_split(metrics, {**analysis, "baseline": result["baseline"], "degenerate": result["degenerate"]}, split)
    return result


def inspect_pipeline(model: str, data: str, batch_size: int = 8, max_length: Optional[int] = None, seed: int = 42) -> dict:
    """The walkthrough's "output shapes" look: split sizes, label balance, one batch through a fresh head."""
    from transformers import set_seed

    if batch_size <= 0:
        raise ConfigError(f"--batch-size must be a positive integer, got {batch_size}")
    raw = load_mrpc(data)
    checkpoint = resolve_checkpoint(model)
    tokenizer = load_tokenizer(checkpoint)
    tokenized = tokenize_dataset(raw, tokenizer, max_length_for(tokenizer, requested=max_length))
    loader = make_train_loader(tokenized["train"], make_collator(tokenizer), batch_size, seed)
    batch = next(iter(loader))
    set_seed(seed)
    net = load_model(checkpoint, raw["train"].features["label"].names)
    net.eval()
    with torch.no_grad():
        outputs = net(**batch)
    return {
        "checkpoint": checkpoint,
        "parameters": parameter_count(net),
        "splits": {name: {"rows": len(split), "labels": label_counts(split)} for name, split in raw.items()},
        "batch": {name: list(tensor.shape) for name, tensor in batch.items()},
        "loss": float(outputs.loss),
        "ln2": math.log(2),
        "logits_shape": list(outputs.logits.shape),
    }
