"""Checkpoints that let a killed run resume to the same final weights.

A checkpoint is a folder ``OUTPUT/checkpoints/step-NNNNNNNN`` holding:

* ``model.safetensors``: the weights (safetensors: no pickle, no code on load);
* ``state.pt``: optimizer and scheduler state dicts and torch RNG states, read back with
  ``torch.load(weights_only=True)``;
* ``progress.json``: where the loop was (epoch, batches done in it, optimizer steps), the
  python and numpy RNG states, what the loop had recorded so far, and the run's config.

* ``manifest.json``: size and SHA-256 of the three files above, written last.

It is written into a hidden temporary folder and renamed into place, so a kill at any moment
leaves either the new checkpoint whole or none of it; older ones beyond ``keep`` are deleted
only after. Saves happen only at optimizer-step boundaries, where no gradient is pending.
A checkpoint damaged later (a truncated copy, a full disk, a filesystem hiccup) fails its
manifest on ``--resume``: it is named in a warning and the previous one is used instead.
SIGTERM and SIGINT (:class:`Checkpointer.signals`) stop the loop at the next optimizer step
with a checkpoint written there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from mrpc_check.errors import ConfigError, Preempted, TrainingError, os_reason

CHECKPOINT_DIR = "checkpoints"
_PREFIX = "step-"
MANIFEST = "manifest.json"
_FILES = ("model.safetensors", "state.pt", "progress.json")
KEEP_DEFAULT = 2  # checkpoints kept: the newest, and one to fall back to when the newest is damaged
# Fields that may change between a run and its resumption without changing what it computes.
RESUMABLE_CHANGES = {"resume", "overwrite", "checkpoint_every", "keep_checkpoints", "output_dir", "log_every", "num_workers"}


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
    """Checkpoint folders in ``out``, oldest first, damaged ones included (temporary folders never)."""
    folder = Path(out) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def damage(path: Path) -> Optional[str]:
    """What is wrong with a checkpoint folder (missing, truncated or altered file), or None when it is whole."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        return f"{MANIFEST} missing"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{MANIFEST} unreadable ({type(exc).__name__})"
    for name in _FILES:
        f = path / name
        if name not in files:
            return f"{name} not listed in {MANIFEST}"
        if not f.is_file():
            return f"{name} missing"
        size = f.stat().st_size
        if size != files[name]["size"]:
            return f"{name} is {size} bytes, {files[name]['size']} were written"
        if _sha256(f) != files[name]["sha256"]:
            return f"{name} does not match its SHA-256"
    return None


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


def save_checkpoint(out: Path, model, optimizer, scheduler, progress: Progress, config: dict, keep: int = KEEP_DEFAULT) -> Path:
    """Write a checkpoint atomically with its manifest; keep the newest ``keep`` checkpoints, this one included.

    Args:
        out: the run's output folder.
        model: the (unwrapped) model.
        optimizer: its state is saved.
        scheduler: its state is saved.
        progress: position and records of the loop.
        config: the run's config, checked on resume.
        keep: checkpoints to keep, the new one included.

    Returns:
        The new checkpoint's folder.

    Raises:
        TrainingError: the write failed (a full disk, say); the older checkpoints are untouched.
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
        files = {name: {"size": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in _FILES}
        with open(tmp / MANIFEST, "w") as fh:
            json.dump({"files": files}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if final.exists():  # a re-save at the same step (epoch end right after a step save)
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(out)
        kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        why = os_reason(exc)
        raise TrainingError(f"checkpoint at step {progress.steps} not written to {folder} ({why}); {kept}: "
                            "free space, then rerun the same command with --resume") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in checkpoints_in(out)[: -max(keep, 1)]:
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


def usable_checkpoint(out: Path) -> Optional[Path]:
    """The newest checkpoint that passes its manifest; each damaged newer one is named in a warning.

    Raises:
        ConfigError: checkpoints exist but none is whole (nothing is deleted).
    """
    found = checkpoints_in(out)
    damaged = []
    for path in reversed(found):
        why = damage(path)
        if why is None:
            for bad, reason in damaged:
                print(f"warning: checkpoint {bad} is damaged ({reason}): skipped, resuming from {path.name}", file=sys.stderr)
            return path
        damaged.append((path, why))
    if damaged:
        listed = "; ".join(f"{p.name}: {why}" for p, why in damaged)
        raise ConfigError(f"--resume: no usable checkpoint in {Path(out) / CHECKPOINT_DIR} ({listed}): "
                          "start over with --overwrite (the damaged checkpoints are left as they are)")
    return None


class Checkpointer:
    """Decides when to save, saves on the main process only, and restores on resume.

    Args:
        out: the run's output folder.
        every: ``"epoch"``, a number of optimizer steps, or None (never save, only resume).
        config: the run's config as a dict (stored, and compared on resume).
        resume: restore the latest checkpoint when the loop starts.
        main_process: False on Accelerate's other ranks, which restore but never write.
    """

    def __init__(self, out, every=None, config: Optional[dict] = None, resume: bool = False, main_process: bool = True,
                 keep: int = KEEP_DEFAULT):
        self.out = Path(out)
        self.every = parse_every(every) if isinstance(every, str) else every
        self.config = config or {}
        self.keep = keep
        self.resume_from = usable_checkpoint(self.out) if resume else None
        self.main_process = main_process
        self.last_saved: Optional[Path] = self.resume_from
        self.stop_signal: Optional[int] = None  # set by the handlers that signals() installs
        # Under several processes every rank must stop at the same step (max of the ranks' flags),
        # and none may exit before the main process has written the checkpoint (barrier).
        self.agree: Callable[[int], int] = lambda flag: flag
        self.barrier: Callable[[], None] = lambda: None

    def restore(self, model, optimizer, scheduler) -> Progress:
        """Load the checkpoint to resume from, if any; else the start of training."""
        if self.resume_from is None:
            return Progress()
        return load_checkpoint(self.resume_from, model, optimizer, scheduler, self.config)

    # ``progress`` is a callable: building the record reads losses back from the device,
    # which only a save should pay for.
    def after_step(self, model, optimizer, scheduler, steps: int, progress: Callable[[], Progress]) -> None:
        """Save when one is due; on SIGTERM/SIGINT save here and stop (:class:`Preempted`)."""
        stop = self.agree(self.stop_signal or 0)
        if stop:
            self._save(model, optimizer, scheduler, progress())
            self.barrier()
            raise Preempted(stop, steps, self.last_saved)
        if isinstance(self.every, int) and steps % self.every == 0:
            self._save(model, optimizer, scheduler, progress())

    def after_epoch(self, model, optimizer, scheduler, progress: Callable[[], Progress]) -> None:
        if self.every == "epoch":
            self._save(model, optimizer, scheduler, progress())

    def _save(self, model, optimizer, scheduler, progress: Progress) -> None:
        if self.main_process:
            self.last_saved = save_checkpoint(self.out, model, optimizer, scheduler, progress, self.config, self.keep)
        else:  # the other ranks' idea of where the main process wrote
            self.last_saved = Path(self.out) / CHECKPOINT_DIR / f"{_PREFIX}{progress.steps:08d}"

    @contextlib.contextmanager
    def signals(self):
        """While training: SIGTERM and SIGINT ask the loop to stop at the next optimizer step, with a
        checkpoint there (a second SIGINT stops at once). Outside the main thread, a no-op."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def ask(signum, frame):
            if signum == signal.SIGINT and self.stop_signal is not None:
                raise KeyboardInterrupt  # asked twice: do not wait for the step
            self.stop_signal = signum
            # os.write, not print: the handler may interrupt a progress-bar write to the same stream,
            # and a buffered stream refuses a reentrant write.
            os.write(2, f"\n{signal.Signals(signum).name} received: stopping after this optimizer step, with a checkpoint\n".encode())

        previous = {s: signal.signal(s, ask) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def describe_last(self) -> str:
        return f"last good checkpoint {self.last_saved}" if self.last_saved else "no checkpoint was saved (see --checkpoint-every)"

    def clear(self) -> None:
        """Remove the checkpoints once the run's results are written: they would only fill the disk."""
        shutil.rmtree(self.out / CHECKPOINT_DIR, ignore_errors=True)
