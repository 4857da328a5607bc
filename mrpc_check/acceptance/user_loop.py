"""A user's own loop on real MRPC: ``mrpc-check train --loop FILE.py:adapter`` (and ``sweep --loop``).

The same adapter ``verify`` judges (:mod:`mrpc_check.checks.contract`) trains the chosen model on the
real data, and the run is written as the built-in loops' runs are: ``report.json`` (validation
scores with their interval and baseline, the labelled test split when the source has one, the
acceptance floors' verdict), ``curves.png`` and the model. The loop is observed from outside
(:class:`~mrpc_check.checks.observe.Observer`) for the curves: the loss the model returned at each
training forward, averaged per optimizer step, and each step's learning rate.

In pipeline order, as :func:`mrpc_check.pipeline.run.run_training`: data, tokenize, collate, model,
then the adapter (loaders, optimizer and loop are the user's), then the metric on the predictions
it returns, the test split, the report. The recipe it gets comes from the command's flags; a flag
for a feature the adapter declares absent (``adapter.supports``) is refused before any work, not
silently ignored. A resumable adapter (``adapter.resumable``) checkpoints into ``OUTPUT/loop-checkpoints``
and ``--resume`` hands it ``recipe.resume``. A loop that raises ends with one line naming it, and
keeps its checkpoints.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from mrpc_check.errors import ConfigError, TrainingError, os_reason
from mrpc_check.pipeline.config import LOOPS, TrainConfig

CHECKPOINTS = "loop-checkpoints"  # what a resumable adapter is given as recipe.checkpoint_dir, inside --output-dir


def is_user_loop(loop: str) -> bool:
    """Whether ``--loop`` names an adapter (``file.py:adapter``, ``package.module:adapter``) rather than a built-in loop."""
    return loop not in LOOPS


def train_any(cfg: TrainConfig, floors=None, command: Optional[list] = None) -> dict:
    """``cfg.loop``'s run: a built-in loop through :func:`mrpc_check.pipeline.run.run_training`, an adapter through
    :func:`run_user_loop`; the same report either way."""
    if is_user_loop(cfg.loop):
        return run_user_loop(cfg, floors, command)
    from mrpc_check.pipeline.run import run_training

    return run_training(cfg, floors, command)


def resumable_from(cfg: TrainConfig) -> bool:
    """Whether ``cfg``'s run is a resumable adapter's with checkpoints of its own in the output folder (a sweep resumes it)."""
    if not is_user_loop(cfg.loop):
        return False
    folder = Path(cfg.output_dir) / CHECKPOINTS
    if not (folder.is_dir() and any(folder.iterdir())):
        return False
    from mrpc_check.checks.contract import capabilities, load_adapter

    return capabilities(load_adapter(cfg.loop), cfg.loop).resumable


def recipe_for(cfg: TrainConfig, adapter, spec: str):
    """The battery's :class:`~mrpc_check.checks.contract.Recipe` for ``cfg``; refuse a flag the adapter declares it ignores.

    Raises:
        ConfigError: a flag asks for a feature outside ``adapter.supports``, or a pipeline-only flag.
    """
    from mrpc_check.checks.contract import FEATURES, Recipe, capabilities

    caps = capabilities(adapter, spec)
    values = {"grad_accum": cfg.grad_accum, "max_grad_norm": cfg.max_grad_norm, "warmup_steps": cfg.warmup_steps,
              "warmup_ratio": cfg.warmup_ratio, "weight_decay": cfg.weight_decay, "mixed_precision": cfg.mixed_precision}
    for feature in caps.absent():
        for field, neutral in FEATURES[feature].items():
            if values[field] != neutral:
                raise ConfigError(f"--{field.replace('_', '-')} {values[field]}: {spec} declares no {feature!r} "
                                  f"(adapter.supports): drop the flag, or implement it and add {feature!r} to supports")
    if cfg.checkpoint_every is not None:
        raise ConfigError(f"--checkpoint-every: {spec} checkpoints itself (adapter.resumable, into recipe.checkpoint_dir): "
                          "drop the flag")
    if cfg.resume and not caps.resumable:
        raise ConfigError(f"--resume: {spec} is not resumable (set adapter.resumable = True and honour recipe.checkpoint_dir "
                          "and recipe.resume): drop --resume")
    from mrpc_check.pipeline.model import resolve_device

    device = resolve_device(cfg.device).type
    return Recipe(epochs=cfg.epochs, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, lr=cfg.lr,
                  scheduler=cfg.scheduler, seed=cfg.seed, group_by_length=cfg.group_by_length, device=device,
                  resume=cfg.resume, **values), caps


def run_user_loop(cfg: TrainConfig, floors=None, command: Optional[list] = None) -> dict:
    """Train ``cfg.model`` on MRPC with the adapter ``cfg.loop`` names; write and return the report.

    Raises:
        MrpcCheckError: bad input (data, model, adapter, flags, output folder), or the loop raised
            (:class:`~mrpc_check.errors.TrainingError`, one line; its checkpoints are kept).
    """
    from mrpc_check.checks.contract import load_adapter
    from mrpc_check.pipeline.run import owned_output

    adapter = load_adapter(cfg.loop)  # AdapterError: one line, before any work
    recipe, caps = recipe_for(cfg, adapter, cfg.loop)
    with owned_output(cfg.output_dir) as out:
        return _run(cfg, adapter, recipe, caps, floors, command, out)


def _run(cfg: TrainConfig, adapter, recipe, caps, floors, command, out: Path) -> dict:
    from mrpc_check.checks.contract import normalise_output
    from mrpc_check.checks.observe import Observer
    from mrpc_check.pipeline import run as pipeline  # its stages, score_test_split and draw_curves, as its own runs use them
    from mrpc_check.pipeline.evaluation import load_metric
    from mrpc_check.pipeline.model import resolve_device
    from mrpc_check.pipeline.report import CURVES_NAME, REPORT_NAME, build_report, pair_problem, save_outputs

    # The output folder: a finished run is not clobbered; a resumable adapter's checkpoints live inside it.
    checkpoints = out / CHECKPOINTS
    resumable = cfg.resume and checkpoints.is_dir() and any(checkpoints.iterdir())
    mixed = pair_problem(out)
    if mixed and not cfg.overwrite and not resumable:
        raise ConfigError(mixed)
    if (out / REPORT_NAME).exists() and not cfg.overwrite and not mixed:
        raise ConfigError(f"{str(out)!r} already holds a finished run ({REPORT_NAME}): pass --overwrite or another --output-dir")
    if cfg.resume and not (checkpoints.is_dir() and any(checkpoints.iterdir())):
        raise ConfigError(f"--resume: no checkpoint in {str(checkpoints)!r}: drop --resume to start afresh")
    if caps.resumable:
        checkpoints.mkdir(parents=True, exist_ok=True)
        recipe = recipe.replace(checkpoint_dir=str(checkpoints))
    device = resolve_device(cfg.device)
    # 1-4. data, tokenize, collate, model: the pipeline's own stages
    raw, checkpoint, tokenizer, tokenized, collator, model = pipeline.prepare_stages(cfg, floors)
    model.to(device)
    # 5-7. the user's loop, observed from outside for the curves
    observer = Observer(model)
    started = time.perf_counter()
    try:
        with observer:
            value = adapter(model, tokenized["train"], tokenized["validation"], collator, recipe)
        output = normalise_output(value, len(tokenized["validation"]), cfg.loop)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        from mrpc_check.checks.contract import AdapterError

        if isinstance(exc, AdapterError):
            raise
        text = (str(exc).strip().splitlines() or [""])[0][:200]
        kept = (f"its checkpoints in {checkpoints} are kept: rerun with --resume" if caps.resumable and any(checkpoints.iterdir())
                else "nothing was written")
        raise TrainingError(f"the loop {cfg.loop} raised {type(exc).__name__}: {text}; {kept}") from exc
    runtime = time.perf_counter() - started
    result = observed_result(observer.observation, output.predictions, raw["validation"]["label"], load_metric(), runtime,
                             cfg.epochs)
    # 8. the labelled test split, when the source has one, with the model the loop trained
    test = pipeline.score_test_split(model, tokenizer, tokenized, raw, collator, cfg)
    # 9. report
    report = build_report({**cfg.to_dict(), "loop": cfg.loop}, checkpoint, device.type, result, raw["validation"]["label"],
                          test, command)
    report["loop"] = {"adapter": cfg.loop, "capabilities": caps.to_dict(),
                      "reported_metrics": output.metrics, "note": "the metrics are the bundled MRPC metric on the predictions "
                      "the adapter returned; the curves are the model's own loss at each training forward"}
    if floors is not None:
        report["floors"] = floors.judge_report(report)
    try:
        report = save_outputs(model, tokenizer, report, out)  # model/, then report.json naming it
    except OSError as exc:
        raise TrainingError(f"results not written to {out} ({os_reason(exc)}): free space, then rerun") from exc
    skipped = pipeline.draw_curves(report, out / CURVES_NAME)
    if skipped:
        print(skipped)
    return report


def observed_result(observation, predictions: list, labels: list, metric, runtime: float, epochs: int):
    """A :class:`~mrpc_check.pipeline.steplog.TrainResult` from what the observer saw and the predictions returned."""
    from mrpc_check.pipeline.steplog import TrainResult

    train = observation.train_forwards()
    losses = []
    for k in range(len(observation.steps)):
        step = [f.loss for f in train if f.steps_before == k and f.loss is not None]
        losses.append(sum(step) / len(step) if step else float("nan"))
    scores = metric.compute(predictions=predictions, references=labels)
    tokens = sum(f.real_tokens for f in train)
    padded = sum(f.shape[0] * f.shape[1] for f in train if len(f.shape) == 2)
    return TrainResult(step_losses=losses, step_lrs=[s.lrs[0] for s in observation.steps],
                       epochs=[{"epoch": epochs, **{k: float(v) for k, v in scores.items()}}], runtime_s=runtime,
                       train_samples=sum(f.shape[0] for f in train if f.shape), real_tokens=tokens, padded_tokens=padded,
                       optimizer_steps=len(observation.steps),
                       final_lr=observation.final_lrs[0] if observation.final_lrs else float("nan"),
                       eval_predictions=list(predictions))
