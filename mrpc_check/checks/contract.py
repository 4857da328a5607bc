"""The contract between the check battery and a training loop under test.

A loop is reached through an *adapter*: a callable

    adapter(model, train_dataset, eval_dataset, collator, recipe) -> LoopOutput (or predictions)

that trains ``model`` on ``train_dataset`` as ``recipe`` says and returns, for each example of
``eval_dataset`` in dataset order, the class the loop's own evaluation predicted after
training. Everything else (what the model receives, which mode it is in, the learning rate
and gradients of every optimizer step) the battery observes from outside, with hooks, so the
adapter stays a few lines and cannot hide a bug from the observation.

Optional attributes on the adapter:

* ``resumable = True``: the loop honours ``recipe.checkpoint_dir`` (a checkpoint after every
  optimizer step) and ``recipe.resume`` (continue from the latest one); enables the resume check.
* ``distributed = True``: the loop runs under ``torchrun`` / ``accelerate launch`` on several
  processes; enables the 2-process checks.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from mrpc_check.errors import MrpcCheckError


class AdapterError(MrpcCheckError):
    """An adapter that cannot be imported or returns the wrong thing (exit 2, one line)."""


@dataclass(frozen=True)
class Recipe:
    """What a loop under test must do. The battery varies one field at a time."""

    epochs: int = 2  # passes over the training set
    batch_size: int = 4  # examples per micro-batch, per process
    eval_batch_size: int = 4  # evaluation batch; not part of the training recipe
    grad_accum: int = 1  # micro-batches per optimizer step (a short last group still steps)
    lr: float = 1e-3  # AdamW peak learning rate
    scheduler: str = "linear"  # linear decay to exactly 0 after the last optimizer step
    warmup_steps: int = 0  # absolute warmup, in optimizer steps
    warmup_ratio: float = 0.0  # or warmup as a fraction of the optimizer steps, rounded up
    weight_decay: float = 0.0  # AdamW decoupled decay
    max_grad_norm: Optional[float] = None  # clip the global gradient norm to this; None: no clipping
    seed: int = 0  # data order (and dropout, where there is any) derive from it
    mixed_precision: str = "no"  # no | bf16 | fp16
    group_by_length: bool = False  # batches of similar lengths (our loops; others may ignore it)
    device: str = "cpu"  # where the loop runs
    checkpoint_dir: Optional[str] = None  # resumable loops: checkpoint after every optimizer step here
    resume: bool = False  # resumable loops: continue from the latest checkpoint in checkpoint_dir

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)


@dataclass
class LoopOutput:
    """What an adapter returns."""

    predictions: Sequence[int]  # predicted class of each eval example, in eval dataset order
    metrics: Optional[dict] = None  # what the loop itself reported ({"accuracy", "f1"}), if anything


Adapter = Callable[..., Any]


def normalise_output(value: Any, n_eval: int, name: str = "adapter") -> LoopOutput:
    """Turn what an adapter returned into a :class:`LoopOutput`; refuse anything else in one line.

    Accepts a LoopOutput, a dict with ``predictions`` (and optionally ``metrics``), or the
    predictions alone: a sequence of class ids, or a (n, num_labels) array of logits.
    """
    metrics = None
    if isinstance(value, LoopOutput):
        predictions, metrics = value.predictions, value.metrics
    elif isinstance(value, dict) and "predictions" in value:
        predictions, metrics = value["predictions"], value.get("metrics")
    elif isinstance(value, dict):
        raise AdapterError(f"{name} returned a dict with keys {sorted(map(str, value))} and no 'predictions': return "
                           "LoopOutput(predictions=..., metrics=...) or {'predictions': [class of each eval example, in order]}")
    else:
        predictions = value
    if predictions is None:
        raise AdapterError(f"{name} returned no predictions: return LoopOutput(predictions=[class of each eval example, in order])")
    try:
        import numpy as np

        array = np.asarray(predictions.detach().cpu() if hasattr(predictions, "detach") else predictions)
    except Exception as exc:  # anything numpy cannot read is not a list of classes
        raise AdapterError(f"{name} returned {type(value).__name__}, not predictions: return LoopOutput(predictions=[...])") from exc
    if array.ndim == 2:
        array = array.argmax(-1)  # logits
    if array.ndim != 1 or not (array.dtype.kind in "iu" or (array.dtype.kind == "f" and (array == array.round()).all())):
        raise AdapterError(
            f"{name} returned predictions of shape {tuple(array.shape)} and dtype {array.dtype}: "
            "return one class id per eval example (or a (n, num_labels) array of logits)"
        )
    if metrics is not None and not isinstance(metrics, dict):
        raise AdapterError(f"{name} returned metrics of type {type(metrics).__name__}: return a dict such as {{'accuracy': ..., 'f1': ...}}")
    return LoopOutput(predictions=[int(x) for x in array.tolist()], metrics=metrics)


BUILTIN = {
    "manual": "mrpc_check.checks.adapters:manual",
    "accelerate": "mrpc_check.checks.adapters:accelerate",
    "trainer": "mrpc_check.checks.adapters:trainer",
    "example": "mrpc_check.checks.broken:plain_loop",
}


def load_adapter(spec: str) -> Adapter:
    """Import ``package.module:attribute``, ``path/to/file.py:attribute`` or a built-in name.

    Built-in names: ``manual``, ``accelerate``, ``trainer`` (this project's loops) and
    ``example`` (the plain PyTorch loop the broken catalogue varies).

    Raises:
        AdapterError: the module or attribute cannot be found, or is not callable.
    """
    spec = BUILTIN.get(spec, spec)
    if ":" not in spec:
        raise AdapterError(f"--loop {spec!r}: write package.module:adapter (or file.py:adapter, or one of {', '.join(BUILTIN)})")
    adapter = import_object(spec, "--loop", AdapterError, "adapter function")
    attr = spec.rpartition(":")[2]
    if isinstance(adapter, type):  # a loop class such as the catalogue's: its instances are adapters
        try:
            adapter = adapter()
        except Exception as exc:
            raise AdapterError(f"--loop {spec!r}: cannot instantiate class {attr!r} without arguments ({exc}): name an instance or a function") from exc
    if not callable(adapter):
        raise AdapterError(f"--loop {spec!r}: {attr!r} is a {type(adapter).__name__}, not a callable adapter")
    check_signature(adapter, spec)
    try:
        adapter.mrpc_spec = spec  # lets the 2-process checks import the same adapter in each rank
    except (AttributeError, TypeError):  # a builtin or slotted callable: 2-process checks will skip
        pass
    return adapter



def import_object(spec: str, option: str, error: type, what: str):
    """``package.module:attribute`` or ``path/to/file.py:attribute`` -> the attribute.

    Raises:
        error: the file, module or attribute cannot be found or imported (one line naming ``option``).
    """
    if ":" not in spec:
        raise error(f"{option} {spec!r}: write package.module:name or file.py:name")
    where, _, attr = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where).expanduser().resolve()
            if not path.is_file():
                raise error(f"{option} {spec!r}: no file {str(path)!r}: give an existing .py file or package.module")
            # As `python file.py` does: the modules beside the file are importable from it.
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            module_name = f"_mrpc_{option.strip('-').replace('-', '_')}_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
            module_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and "." not in sys.path:
                sys.path.insert(0, "")  # like `python -m`: the current folder's packages are importable
            module = importlib.import_module(where)
    except error:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise error(f"{option} {spec!r}: cannot import {where!r} ({type(exc).__name__}: {first[:160]}): "
                    "check the module path and that its package is importable from here") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise error(f"{option} {spec!r}: {where!r} has no attribute {attr!r}: name the {what} after the colon") from None

def check_signature(adapter: Adapter, spec: str = "adapter") -> None:
    """Refuse an adapter that cannot take (model, train_dataset, eval_dataset, collator, recipe)."""
    import inspect

    try:
        signature = inspect.signature(adapter)
    except (TypeError, ValueError):
        return  # builtins and some C callables have none: the call itself will tell
    try:
        signature.bind(None, None, None, None, None)
    except TypeError:
        raise AdapterError(f"--loop {spec!r}: your adapter takes {signature}; the battery calls "
                           "adapter(model, train_dataset, eval_dataset, collator, recipe): accept those five arguments") from None


def adapter_name(adapter: Adapter) -> str:
    return getattr(adapter, "name", None) or getattr(adapter, "__name__", None) or type(adapter).__name__
