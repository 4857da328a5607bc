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
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from mrpc_check.batching import epoch_batch_sizes, group_weights, set_loader_epoch
from mrpc_check.checkpoint import Progress
from mrpc_check.config import TrainConfig
from mrpc_check.errors import TrainingError
from mrpc_check.evaluation import evaluate_model
from mrpc_check.model import autocast_context, autocast_dtype, build_scheduler, resolve_device


@dataclass
class TrainResult:
    """What a loop did: per-step loss and lr, per-epoch validation metrics, throughput."""

    step_losses: list[float] = field(default_factory=list)  # mean training loss of each optimizer step
    step_lrs: list[float] = field(default_factory=list)  # learning rate each optimizer step used
    epochs: list[dict] = field(default_factory=list)  # {"epoch", "accuracy", "f1"} after each epoch
    runtime_s: float = 0.0  # training wall time, evaluation excluded
    train_samples: int = 0  # examples seen (all epochs)
    real_tokens: int = 0  # non-padding tokens seen (all epochs)
    padded_tokens: int = 0  # all tokens fed, padding included
    optimizer_steps: int = 0
    final_lr: float = float("nan")  # the learning rate after the last scheduler step (0 for linear)
    main_process: bool = True  # False on Accelerate's other ranks: they must not write results

    @property
    def final_metrics(self) -> dict:
        return {k: v for k, v in self.epochs[-1].items() if k != "epoch"} if self.epochs else {}


class StepLog:
    """Collects losses without a host sync per step; drives the progress bar."""

    def __init__(self, total_steps: int, log_every: int, disable: bool = False, desc: str = "train") -> None:
        self.result = TrainResult()
        self.log_every = log_every
        self._pending: list[torch.Tensor] = []  # step losses still on the device
        self._tokens = torch.zeros((), dtype=torch.long)
        self._padded = 0
        self._bar = tqdm(total=total_steps, disable=disable, desc=desc, dynamic_ncols=True)
        self._started = 0.0
        self._elapsed = 0.0
        self._running = False

    def state(self) -> dict:
        """Everything recorded so far, as plain data (for a checkpoint)."""
        self.flush()
        r = self.result
        return {"step_losses": r.step_losses, "step_lrs": r.step_lrs, "epochs": r.epochs, "train_samples": r.train_samples,
                "optimizer_steps": r.optimizer_steps, "real_tokens": int(self._tokens.item()), "padded_tokens": self._padded,
                "elapsed": self._elapsed + (time.perf_counter() - self._started if self._running else 0.0)}

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint's record."""
        if not state:
            return
        r = self.result
        r.step_losses, r.step_lrs, r.epochs = list(state["step_losses"]), list(state["step_lrs"]), list(state["epochs"])
        r.train_samples, r.optimizer_steps = state["train_samples"], state["optimizer_steps"]
        self._tokens = torch.tensor(state["real_tokens"])
        self._padded = state["padded_tokens"]
        self._elapsed = state["elapsed"]
        self._bar.update(r.optimizer_steps)

    def start(self) -> None:
        self._started = time.perf_counter()
        self._running = True

    def pause(self) -> None:
        self._elapsed += time.perf_counter() - self._started
        self._running = False

    def count_batch(self, batch: dict) -> None:
        mask = batch["attention_mask"]  # (batch, seq_len)
        self._tokens = self._tokens.to(mask.device) + mask.sum()
        self._padded += mask.numel()
        self.result.train_samples += mask.shape[0]

    def step(self, loss: torch.Tensor, lr: float) -> None:
        """Record one optimizer step's loss (a 0-d tensor) and the lr it used."""
        self._pending.append(loss)
        self.result.step_lrs.append(lr)
        self.result.optimizer_steps += 1
        self._bar.update(1)
        if self.result.optimizer_steps % self.log_every == 0:
            self.flush()
            self._bar.set_postfix(loss=f"{self.result.step_losses[-1]:.4f}", lr=f"{lr:.2e}")

    def flush(self) -> None:
        if self._pending:
            self.result.step_losses.extend(torch.stack(self._pending).float().cpu().tolist())
            self._pending.clear()

    def epoch_end(self, epoch: int, metrics: dict, print_fn: Callable = tqdm.write) -> None:
        self.flush()
        self.result.epochs.append({"epoch": epoch + 1, **metrics})
        print_fn(f"epoch {epoch + 1}: validation accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}")

    def close(self, final_lr: float) -> TrainResult:
        self.flush()
        self._bar.close()
        self.result.runtime_s = self._elapsed
        self.result.real_tokens = int(self._tokens.item())
        self.result.padded_tokens = self._padded
        self.result.final_lr = final_lr
        return self.result


def check_finite(loss: torch.Tensor, step: int, epoch: int, checkpointer=None) -> None:
    """Stop at the first non-finite loss, naming where, before it poisons the weights."""
    if not torch.isfinite(loss).item():
        where = checkpointer.describe_last() if checkpointer else "no checkpoint was saved (see --checkpoint-every)"
        raise TrainingError(
            f"training loss is {loss.item()} at optimizer step {step} (epoch {epoch + 1}): stopped before "
            f"the update, {where}; lower --lr, set --max-grad-norm, or use --mixed-precision no"
        )


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
        train_loader: from :func:`mrpc_check.batching.make_train_loader`.
        eval_loader: validation loader; evaluated after every epoch.
        cfg: epochs, accumulation, clipping, precision, schedule, device.
        metric: an ``evaluate`` module; the bundled MRPC metric when None.
        checkpointer: a :class:`mrpc_check.checkpoint.Checkpointer` that saves at step or
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
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            log.step(step_loss, lr)
            step_loss = torch.zeros((), device=device)
            if checkpointer:
                steps = log.result.optimizer_steps
                checkpointer.after_step(model, optimizer, scheduler, steps, lambda: Progress(epoch, i + 1, steps, log.state()))
        log.pause()
        metrics = evaluate_model(model, eval_loader, metric, device=device, autocast_dtype=amp_dtype)
        log.epoch_end(epoch, metrics)
        if checkpointer:
            checkpointer.after_epoch(model, optimizer, scheduler, lambda: Progress(epoch + 1, 0, log.result.optimizer_steps, log.state()))
    return log.close(final_lr=scheduler.get_last_lr()[0])

