"""Stage 6b: the manual loop of :mod:`mrpc_check.pipeline.train`, run through Accelerate.

Same shape, line for line; every change is marked ``# [accelerate]``. It runs
alone, or under ``accelerate launch`` on several processes.

The walkthrough sized its schedule from the loader *before*
``accelerator.prepare``: on N processes the prepared loader is N times shorter, so
the schedule ends at (1 - 1/N) of the peak rate instead of 0 (and handing the
scheduler to ``prepare`` as well steps it N times per step, so it ends early).
Here the schedule is built after ``prepare`` from the loader actually iterated,
and stepped once per real optimizer step.
"""

from __future__ import annotations

import math

import torch

from mrpc_check.pipeline.batching import epoch_batch_sizes, group_weights, set_loader_epoch
from mrpc_check.pipeline.checkpoint import Progress
from mrpc_check.pipeline.config import TrainConfig
from mrpc_check.pipeline.evaluation import evaluate_model
from mrpc_check.pipeline.model import autocast_dtype, build_scheduler, resolve_device
from mrpc_check.pipeline.steplog import StepLog, TrainResult, check_finite


def make_accelerator(cfg: TrainConfig):
    """An Accelerator for ``cfg``: precision, accumulation, and CPU when asked or when there is no GPU."""
    from accelerate import Accelerator

    device = resolve_device(cfg.device)
    autocast_dtype(cfg.mixed_precision, device)  # refuses fp16 on CPU with a one-line error
    return Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        cpu=device.type == "cpu",
    )


def agree_max(flag: int, device) -> int:
    """The largest of every process's ``flag`` (one tiny all-reduce per optimizer step, multi-process only)."""
    value = torch.tensor([flag], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return int(value.item())


def train_accelerate(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader,
    eval_loader,
    cfg: TrainConfig,
    metric=None,
    accelerator=None,
    checkpointer=None,
) -> TrainResult:
    """Fine-tune ``model`` with Accelerate, evaluating after each epoch.

    Args: as :func:`mrpc_check.pipeline.train.train_manual`, plus
        accelerator: an ``Accelerator`` (one from :func:`make_accelerator` when None).
        checkpointer: as in the manual loop; writes on the main process only.

    Returns:
        :class:`TrainResult`, with samples and tokens summed over processes and
        ``main_process`` telling the caller whether to write results.
    """
    accelerator = accelerator or make_accelerator(cfg)  # [accelerate]
    # [accelerate] device placement, DDP wrapping, autocast and loader sharding in one call.
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)

    # [accelerate] sized from the *prepared* loader: per-process batches, after sharding.
    steps_per_epoch = math.ceil(len(train_loader) / cfg.grad_accum)
    scheduler = build_scheduler(optimizer, steps_per_epoch * cfg.epochs, cfg.scheduler, cfg.warmup_steps, cfg.warmup_ratio)
    log = StepLog(steps_per_epoch * cfg.epochs, cfg.log_every, disable=not accelerator.is_local_main_process)  # [accelerate]
    bare = accelerator.unwrap_model(model)  # [accelerate] checkpoints hold the model without its DDP wrapper
    if checkpointer:
        checkpointer.main_process = accelerator.is_main_process  # [accelerate] one writer
        if accelerator.num_processes > 1:  # [accelerate] a signal to any rank stops all at the same step
            checkpointer.agree = lambda flag: agree_max(flag, accelerator.device)
            checkpointer.barrier = accelerator.wait_for_everyone
    start = checkpointer.restore(bare, optimizer, scheduler) if checkpointer else Progress()
    log.restore(start.record)

    for epoch in range(start.epoch, cfg.epochs):
        set_loader_epoch(train_loader, epoch)
        weights = group_weights(epoch_batch_sizes(train_loader), cfg.grad_accum)
        done = start.batches if epoch == start.epoch else 0  # batches a resumed run already trained on
        model.train()
        log.start()
        step_loss = torch.zeros((), device=accelerator.device)
        for i, batch in enumerate(train_loader):
            if i < done:
                continue  # the order is a function of (seed, epoch): skipping replays it exactly
            log.count_batch(batch)  # [accelerate] batches arrive on the device already
            with accelerator.accumulate(model):  # [accelerate] no DDP all-reduce until the group's last micro-batch
                loss = model(**batch).loss * weights[i]
                step_loss += loss.detach()
                # [accelerate] backward divides by gradient_accumulation_steps; undo it, the weights already average.
                accelerator.backward(loss * cfg.grad_accum)

                if not accelerator.sync_gradients:  # [accelerate] replaces the manual (i + 1) % grad_accum test
                    continue
                check_finite(step_loss, log.result.optimizer_steps + 1, epoch, checkpointer)
                if cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)  # [accelerate] unscales fp16 first
                lr = scheduler.get_last_lr()[0]
                optimizer.step()  # [accelerate] the GradScaler step, under fp16
                if not accelerator.optimizer_step_was_skipped:  # [accelerate] fp16 overflow: no step, no decay
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                log.step(step_loss, lr)
                step_loss = torch.zeros((), device=accelerator.device)
            if checkpointer:  # only reached after an optimizer step: the `continue` above skips the rest
                steps = log.result.optimizer_steps
                checkpointer.after_step(bare, optimizer, scheduler, steps, lambda: Progress(epoch, i + 1, steps, log.state()))
        log.pause()
        # [accelerate] gather_for_metrics: every example once, across processes, padding samples dropped.
        predictions: list[int] = []
        metrics = evaluate_model(model, eval_loader, metric, gather=accelerator.gather_for_metrics, predictions_out=predictions,
                                 progress=accelerator.is_local_main_process)
        log.epoch_end(epoch, metrics, print_fn=accelerator.print, predictions=predictions)
        if checkpointer:
            checkpointer.after_epoch(bare, optimizer, scheduler, lambda: Progress(epoch + 1, 0, log.result.optimizer_steps, log.state()))
    result = log.close(final_lr=scheduler.get_last_lr()[0])
    # [accelerate] throughput counts every process's work.
    totals = accelerator.reduce(torch.tensor([result.train_samples, result.real_tokens, result.padded_tokens], device=accelerator.device), "sum")
    result.train_samples, result.real_tokens, result.padded_tokens = (int(x) for x in totals.tolist())
    result.main_process = accelerator.is_main_process
    accelerator.wait_for_everyone()
    return result
