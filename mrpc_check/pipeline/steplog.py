"""What the training loops share: the step log, the result record, the finiteness guard.

Both :mod:`mrpc_check.pipeline.train` and :mod:`mrpc_check.pipeline.train_accelerate` import these, so each
loop module holds only its loop; :mod:`mrpc_check.pipeline.train_trainer` reports in the same record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from mrpc_check.errors import TrainingError


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
    eval_predictions: list[int] = field(default_factory=list)  # last evaluation's class per example, dataset order

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

    def epoch_end(self, epoch: int, metrics: dict, print_fn: Callable = tqdm.write, predictions=None) -> None:
        self.flush()
        self.result.epochs.append({"epoch": epoch + 1, **metrics})
        if predictions is not None:
            self.result.eval_predictions = list(predictions)
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
