"""Stage 6a: the walkthrough's manual training loop, made exact.

Differences from the walkthrough, each for a reason:
* the schedule is sized from the loader this loop iterates, with gradient
  accumulation counted, so the last optimizer step ends at lr 0;
* accumulated micro-batches are weighted by their size, so 2 x batch 4 equals
  1 x batch 8 even when the last group is short;
* the loss is read back to the host only every ``log_every`` steps (each read is a
  device sync), except for the finiteness check that guards every step.
"""

from __future__ import annotations

import math

import torch

from mrpc_check.pipeline.batching import epoch_batch_sizes, group_weights, set_loader_epoch
from mrpc_check.pipeline.checkpoint import Progress
from mrpc_check.pipeline.config import TrainConfig
from mrpc_check.pipeline.evaluation import evaluate_model
from mrpc_check.pipeline.model import autocast_context, autocast_dtype, build_scheduler, resolve_device
from mrpc_check.pipeline.steplog import StepLog, TrainResult, check_finite

__all__ = ["StepLog", "TrainResult", "check_finite", "train_manual"]  # the first three live in steplog


def train_manual(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader,
    eval_loader,
    cfg: TrainConfig,
    metric=None,
    checkpointer=None,
) -> TrainResult:
    """Fine-tune ``model`` with a plain PyTorch loop, evaluating after each epoch.

    Args:
        model: a sequence classifier (moved to the configured device here).
        optimizer: built on ``model``'s parameters.
        train_loader: from :func:`mrpc_check.pipeline.batching.make_train_loader`.
        eval_loader: validation loader; evaluated after every epoch.
        cfg: epochs, accumulation, clipping, precision, schedule, device.
        metric: an ``evaluate`` module; the bundled MRPC metric when None.
        checkpointer: a :class:`mrpc_check.pipeline.checkpoint.Checkpointer` that saves at step or
            epoch ends and, on resume, restores where a killed run stopped.

    Returns:
        :class:`TrainResult`.

    Raises:
        TrainingError: a non-finite loss.
        ConfigError: fp16 without CUDA, CUDA asked for without one.
    """
    device = resolve_device(cfg.device)
    amp_dtype = autocast_dtype(cfg.mixed_precision, device)
    # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    model.to(device)

    steps_per_epoch = math.ceil(len(train_loader) / cfg.grad_accum)
    scheduler = build_scheduler(optimizer, steps_per_epoch * cfg.epochs, cfg.scheduler, cfg.warmup_steps, cfg.warmup_ratio)
    log = StepLog(steps_per_epoch * cfg.epochs, cfg.log_every)
    start = checkpointer.restore(model, optimizer, scheduler) if checkpointer else Progress()
    log.restore(start.record)

    for epoch in range(start.epoch, cfg.epochs):
        set_loader_epoch(train_loader, epoch)
        weights = group_weights(epoch_batch_sizes(train_loader), cfg.grad_accum)
        done = start.batches if epoch == start.epoch else 0  # batches a resumed run already trained on
        model.train()
        log.start()
        step_loss = torch.zeros((), device=device)
        for i, batch in enumerate(train_loader):
            if i < done:
                continue  # the order is a function of (seed, epoch): skipping replays it exactly
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            log.count_batch(batch)
            with autocast_context(device, amp_dtype):
                loss = model(**batch).loss * weights[i]
            step_loss += loss.detach()
            (scaler.scale(loss) if scaler else loss).backward()

            if (i + 1) % cfg.grad_accum and i + 1 != len(weights):
                continue  # more micro-batches in this group
            check_finite(step_loss, log.result.optimizer_steps + 1, epoch, checkpointer)
            if cfg.max_grad_norm:
                if scaler:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            stepped = True
            if scaler:
                scale = scaler.get_scale()
                scaler.step(optimizer)  # skips optimizer.step() when the gradients hold an inf or NaN
                scaler.update()
                stepped = scaler.get_scale() >= scale  # update() lowers the scale exactly when it skipped
            else:
                optimizer.step()
            if stepped:  # a skipped step must not advance the schedule (Accelerate's loop agrees)
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            log.step(step_loss, lr)
            step_loss = torch.zeros((), device=device)
            if checkpointer:
                steps = log.result.optimizer_steps
                checkpointer.after_step(model, optimizer, scheduler, steps, lambda: Progress(epoch, i + 1, steps, log.state()))
        log.pause()
        predictions: list[int] = []
        metrics = evaluate_model(model, eval_loader, metric, device=device, autocast_dtype=amp_dtype, predictions_out=predictions,
                                 progress=True)
        log.epoch_end(epoch, metrics, predictions=predictions)
        if checkpointer:
            checkpointer.after_epoch(model, optimizer, scheduler, lambda: Progress(epoch + 1, 0, log.result.optimizer_steps, log.state()))
    return log.close(final_lr=scheduler.get_last_lr()[0])

