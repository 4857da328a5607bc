"""Checkpoints that let a killed run resume to the same final weights.

A checkpoint is a folder ``OUTPUT/checkpoints/step-NNNNNNNN`` holding:

* ``model.safetensors``: the weights (safetensors: no pickle, no code on load);
* ``state.pt``: optimizer and scheduler state dicts and torch RNG states, read back with
  ``torch.load(weights_only=True)``;
* ``progress.json``: where the loop was (epoch, batches done in it, optimizer steps), the
  python and numpy RNG states, what the loop had recorded so far, and the run's config.

It is written into a hidden temporary folder and renamed into place, so a kill at any moment
leaves either the new checkpoint whole or none of it; the previous one is deleted only after.
Saves happen only at optimizer-step boundaries, where no gradient is pending.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from mrpc_check.errors import ConfigError

CHECKPOINT_DIR = "checkpoints"
_PREFIX = "step-"
# Fields that may change between a run and its resumption without changing what it computes.
RESUMABLE_CHANGES = {"resume", "overwrite", "checkpoint_every", "output_dir", "log_every", "num_workers"}


@dataclass
class Progress:
    """Where a loop stands: ``batches`` of epoch ``epoch`` are done, ``steps`` optimizer steps in all."""

    epoch: int = 0
    batches: int = 0
    steps: int = 0
    record: dict = field(default_factory=dict)  # StepLog's state: losses, lrs, epoch metrics, counts


def parse_every(text: Optional[str]):
    """``--checkpoint-every``: None, ``"epoch"``, or a positive number of optimizer steps."""
    if text is None or text == "epoch":
        return text
    try:
        steps = int(text)
    except ValueError:
        steps = 0
    if steps <= 0:
        raise ConfigError(f"--checkpoint-every takes 'epoch' or a positive number of steps, got {text!r}")
    return steps


def checkpoints_in(out: Path) -> list[Path]:
    """Complete checkpoints in ``out``, oldest first (temporary folders are never listed)."""
    folder = Path(out) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and (p / "progress.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))


def latest_checkpoint(out: Path) -> Optional[Path]:
    found = checkpoints_in(out)
    return found[-1] if found else None


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_checkpoint(out: Path, model, optimizer, scheduler, progress: Progress, config: dict, keep: int = 1) -> Path:
    """Write a checkpoint atomically; keep the newest ``keep`` older ones besides it.

    Args:
        out: the run's output folder.
        model: the (unwrapped) model.
        optimizer, scheduler: their states are saved.
        progress: position and records of the loop.
        config: the run's config, checked on resume.
        keep: older checkpoints to keep.

    Returns:
        The new checkpoint's folder.
    """
    folder = Path(out) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{_PREFIX}{progress.steps:08d}"
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".tmp-"))
    try:
        from safetensors.torch import save_model

        save_model(model, str(tmp / "model.safetensors"))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            tmp / "state.pt",
        )
        meta = {"epoch": progress.epoch, "batches": progress.batches, "steps": progress.steps,
                "record": progress.record, "rng": _rng_state(), "config": config}
        (tmp / "progress.json").write_text(json.dumps(meta))
        if final.exists():  # a re-save at the same step (epoch end right after a step save)
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in checkpoints_in(out)[: -(keep + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def check_compatible(saved: dict, current: dict, path: Path) -> None:
    """Refuse to resume a run whose recipe differs: the result would match neither."""
    differ = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if differ:
        shown = ", ".join(f"{k}={saved.get(k)!r} (now {current[k]!r})" for k in differ)
        raise ConfigError(f"checkpoint {path} was made with {shown}: resume with the same settings, or start over with --overwrite")


def load_checkpoint(path: Path, model, optimizer, scheduler, config: dict) -> Progress:
    """Restore model, optimizer, scheduler and RNG states in place; return where to continue."""
    from safetensors.torch import load_model

    meta = json.loads((path / "progress.json").read_text())
    check_compatible(meta["config"], config, path)
    load_model(model, str(path / "model.safetensors"))
    state = torch.load(path / "state.pt", weights_only=True)  # tensors and plain containers only
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    _set_rng_state(meta["rng"])
    return Progress(epoch=meta["epoch"], batches=meta["batches"], steps=meta["steps"], record=meta["record"])


class Checkpointer:
    """Decides when to save, saves on the main process only, and restores on resume.

    Args:
        out: the run's output folder.
        every: ``"epoch"``, a number of optimizer steps, or None (never save, only resume).
        config: the run's config as a dict (stored, and compared on resume).
        resume: restore the latest checkpoint when the loop starts.
        main_process: False on Accelerate's other ranks, which restore but never write.
    """

    def __init__(self, out, every=None, config: Optional[dict] = None, resume: bool = False, main_process: bool = True):
        self.out = Path(out)
        self.every = parse_every(every) if isinstance(every, str) else every
        self.config = config or {}
        self.resume_from = latest_checkpoint(self.out) if resume else None
        self.main_process = main_process
        self.last_saved: Optional[Path] = self.resume_from

    def restore(self, model, optimizer, scheduler) -> Progress:
        """Load the checkpoint to resume from, if any; else the start of training."""
        if self.resume_from is None:
            return Progress()
        return load_checkpoint(self.resume_from, model, optimizer, scheduler, self.config)

    # ``progress`` is a callable: building the record reads losses back from the device,
    # which only a save should pay for.
    def after_step(self, model, optimizer, scheduler, steps: int, progress: Callable[[], Progress]) -> None:
        if isinstance(self.every, int) and steps % self.every == 0:
            self._save(model, optimizer, scheduler, progress())

    def after_epoch(self, model, optimizer, scheduler, progress: Callable[[], Progress]) -> None:
        if self.every == "epoch":
            self._save(model, optimizer, scheduler, progress())

    def _save(self, model, optimizer, scheduler, progress: Progress) -> None:
        if self.main_process:
            self.last_saved = save_checkpoint(self.out, model, optimizer, scheduler, progress, self.config)

    def describe_last(self) -> str:
        return f"last good checkpoint {self.last_saved}" if self.last_saved else "no checkpoint was saved (see --checkpoint-every)"

    def clear(self) -> None:
        """Remove the checkpoints once the run's results are written: they would only fill the disk."""
        shutil.rmtree(self.out / CHECKPOINT_DIR, ignore_errors=True)
