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
* ``supports = {...}``: the recipe features the loop implements (:data:`FEATURES`; all of them
  when the attribute is absent, so a loop that forgot one still fails). A feature left out is
  declared absent: the battery never varies it, runs the loop at its neutral value (accumulation
  1, no clipping, no warmup, weight decay 0, fp32) and reports the checks that judge it as
  ``skip`` with the declaration as the reason. ``"resume"`` and ``"distributed"`` may be listed
  here too: the same as ``resumable = True`` / ``distributed = True``.

* ``extras = {...}``: what the loop does that the recipe never asks for, on purpose (:data:`EXTRAS`):
  ``{"max_grad_norm": 1.0}`` for a clip fixed in the loop, ``{"label_smoothing": 0.1}``,
  ``{"class_weights": (1.0, 2.0)}``, ``{"frozen": ("bert.embeddings",)}`` (name prefixes),
  ``{"warmup_steps": 10}``, ``{"dropout": 0.1}``, ``{"schedule": "constant"}`` (no lr scheduler: a
  schedule-free optimizer keeps the rate at its peak). The battery observes every extra whether declared
  or not (the effective recipe, :mod:`mrpc_check.checks.effective`); an undeclared one is named as
  its own root cause (a warning), a declared one that the run shows passes, a declared one the run
  contradicts fails.

One place says it all: :func:`capabilities` reads the four attributes and refuses an unknown
feature or extra name with the nearest known one.
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


# Recipe features a loop may declare absent, each with the recipe fields it covers and their neutral
# value: what the battery runs a loop at when it does not implement the feature.
FEATURES = {
    "grad_accum": {"grad_accum": 1},  # micro-batches per optimizer step
    "max_grad_norm": {"max_grad_norm": None},  # global gradient-norm clipping
    "warmup": {"warmup_steps": 0, "warmup_ratio": 0.0},  # linear warmup, as steps or as a ratio
    "weight_decay": {"weight_decay": 0.0},  # AdamW decoupled decay, the recipe's value
    "mixed_precision": {"mixed_precision": "no"},  # fp16 / bf16 autocast
}
"""The features an adapter may declare absent (``adapter.supports``), each with its neutral recipe values."""
# How a loop is run rather than what it computes: opt-in, off unless declared.
RUN_MODES = ("resume", "distributed")

EXTRAS = {
    "max_grad_norm": "a global-norm clip fixed in the loop (clip_grad_norm_(..., 1.0)), whatever the recipe says",
    "label_smoothing": "CrossEntropyLoss(label_smoothing=...) computed by the loop",
    "class_weights": "CrossEntropyLoss(weight=...) computed by the loop, one weight per class",
    "frozen": "name prefixes of the tensors the loop freezes (requires_grad=False), e.g. ('bert.embeddings',)",
    "warmup_steps": "a warmup fixed in the loop, in optimizer steps, where the recipe has none",
    "dropout": "the dropout rate the loop sets on the model's Dropout modules for training",
    "models": "how many models the loop trains in one run (k-fold cross-validation, an ensemble): fresh weights and a new optimizer each",
    "schedule": "'constant': no lr scheduler, the rate stays at its peak after any warmup (a schedule-free optimizer)",
    "held_out": "the share of the training rows the loop holds out as its own validation split (early stopping's), e.g. 0.2",
}
"""What a loop may declare it does beyond the recipe (``adapter.extras``), each with what it stands for."""


def did_you_mean(word: str, known) -> str:
    """' (did you mean X?)' for the nearest known name, or ''."""
    import difflib

    close = difflib.get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Capabilities:
    """What a loop declares: the recipe features it implements, and whether it resumes or runs on several processes."""

    features: frozenset
    resumable: bool = False
    distributed: bool = False
    declared: bool = False  # the adapter has a ``supports`` attribute (else every feature is assumed)
    extras: tuple = ()  # (name, value) pairs the adapter declares in ``extras``: choices beyond the recipe

    def extra(self, name: str, default=None):
        """The declared value of extra ``name``, or ``default`` when the loop does not declare it."""
        return dict(self.extras).get(name, default)

    def absent(self) -> list:
        return [f for f in FEATURES if f not in self.features]

    def neutral(self, recipe: "Recipe") -> "Recipe":
        """``recipe`` with every declared-absent feature at its neutral value."""
        changes = {field: value for f in self.absent() for field, value in FEATURES[f].items()}
        return recipe.replace(**changes) if changes else recipe

    def to_dict(self) -> dict:
        return {"supports": sorted(self.features), "absent": self.absent(), "resumable": self.resumable,
                "distributed": self.distributed, "declared": self.declared, "extras": {k: v for k, v in self.extras}}


def capabilities(adapter, name: str = "adapter") -> Capabilities:
    """Read ``supports``, ``resumable`` and ``distributed`` off an adapter; refuse unknown names in one line.

    Raises:
        AdapterError: ``supports`` is not a collection of names, or names an unknown feature.
    """
    declared = getattr(adapter, "supports", None)
    if declared is None:
        features = set(FEATURES)
    else:
        if isinstance(declared, str) or not hasattr(declared, "__iter__"):
            raise AdapterError(f"{name}.supports = {declared!r}: give a set of feature names, e.g. "
                               f"{{'grad_accum', 'max_grad_norm'}}; known: {', '.join([*FEATURES, *RUN_MODES])}")
        features = {str(f) for f in declared}
        unknown = sorted(features - set(FEATURES) - set(RUN_MODES))
        if unknown:
            raise AdapterError(f"{name}.supports names unknown feature {unknown[0]!r}{did_you_mean(unknown[0], [*FEATURES, *RUN_MODES])}; "
                               f"known: {', '.join([*FEATURES, *RUN_MODES])}")
    resumable = bool(getattr(adapter, "resumable", False)) or "resume" in features
    distributed = bool(getattr(adapter, "distributed", False)) or "distributed" in features
    return Capabilities(frozenset(features & set(FEATURES)), resumable, distributed, declared is not None,
                        _extras(getattr(adapter, "extras", None), name))


def _extras(declared, name: str) -> tuple:
    """``adapter.extras`` as sorted (name, value) pairs, values checked; refuse what cannot be read, in one line."""
    if declared is None:
        return ()
    example = "{'max_grad_norm': 1.0, 'label_smoothing': 0.1}"
    if not isinstance(declared, dict):
        raise AdapterError(f"{name}.extras = {declared!r}: give a dict of what the loop does beyond the recipe, e.g. {example}; "
                           f"known: {', '.join(EXTRAS)}")
    pairs = []
    for key, value in declared.items():
        if key not in EXTRAS:
            raise AdapterError(f"{name}.extras names unknown extra {key!r}{did_you_mean(key, EXTRAS)}; known: {', '.join(EXTRAS)}")
        try:
            if key == "frozen":
                value = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
                if not value:
                    raise ValueError("no prefix")
            elif key == "class_weights":
                value = tuple(float(v) for v in value)
                if len(value) < 2 or min(value) <= 0:
                    raise ValueError("one positive weight per class")
            elif key == "schedule":
                if value != "constant":
                    raise ValueError("the one schedule a loop may declare instead of the recipe's is 'constant'")
            elif key == "models":
                if int(value) != value or value < 2:
                    raise ValueError("a whole number of models >= 2")
                value = int(value)
            elif key == "warmup_steps":
                if int(value) != value or value < 1:
                    raise ValueError("a whole number of steps >= 1")
                value = int(value)
            else:
                value = float(value)
                if not (value > 0 and (key not in ("label_smoothing", "dropout", "held_out") or value < 1)):
                    raise ValueError("out of range")
        except (TypeError, ValueError) as exc:
            raise AdapterError(f"{name}.extras[{key!r}] = {declared[key]!r} cannot be read ({exc}): {EXTRAS[key]}") from None
        pairs.append((key, value))
    return tuple(sorted(pairs))


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

        if hasattr(predictions, "detach"):  # a tensor; bf16/fp16 logits under autocast have no numpy dtype: as float32
            predictions = predictions.detach().cpu()
            predictions = predictions.float() if predictions.is_floating_point() else predictions
        array = np.asarray(predictions)
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
    "example": "mrpc_check.checks.twins:plain_loop",
}


def load_adapter(spec: str, option: str = "--loop") -> Adapter:
    """Import ``package.module:attribute``, ``path/to/file.py:attribute`` or a built-in name.

    Built-in names: ``manual``, ``accelerate``, ``trainer`` (this project's loops) and
    ``example`` (the plain PyTorch loop the broken catalogue varies). ``option`` is the flag errors name
    (``--mrpc-loop`` on the pytest route).

    Raises:
        AdapterError: the module or attribute cannot be found, or is not callable.
    """
    spec = BUILTIN.get(spec, spec)
    if ":" not in spec:
        raise AdapterError(f"{option} {spec!r}: write package.module:adapter (or file.py:adapter, or one of "
                           f"{', '.join(BUILTIN)}){did_you_mean(spec, BUILTIN)}")
    adapter = import_object(spec, option, AdapterError, "adapter function")
    attr = spec.rpartition(":")[2]
    if isinstance(adapter, type):  # a loop class such as the catalogue's: its instances are adapters
        try:
            adapter = adapter()
        except Exception as exc:
            raise AdapterError(f"{option} {spec!r}: cannot instantiate class {attr!r} without arguments ({exc}): name an instance or a function") from exc
    if not callable(adapter):
        raise AdapterError(f"{option} {spec!r}: {attr!r} is a {type(adapter).__name__}, not a callable adapter")
    check_signature(adapter, spec, option)
    capabilities(adapter, f"{option} {spec!r}: {attr}")  # an unknown feature name is refused now, not mid-battery
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
            # One name per option whichever route loads it (--loop, --mrpc-loop): 2-process ranks load by --loop.
            module_name = f"_mrpc_{option.strip('-').replace('-', '_').removeprefix('mrpc_')}_{path.stem}"
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
        hint = did_you_mean(attr, [n for n in vars(module) if not n.startswith("_")])
        raise error(f"{option} {spec!r}: {where!r} has no attribute {attr!r}{hint}: name the {what} after the colon") from None

def check_signature(adapter: Adapter, spec: str = "adapter", option: str = "--loop") -> None:
    """Refuse an adapter that cannot take (model, train_dataset, eval_dataset, collator, recipe)."""
    import inspect

    try:
        signature = inspect.signature(adapter)
    except (TypeError, ValueError):
        return  # builtins and some C callables have none: the call itself will tell
    try:
        signature.bind(None, None, None, None, None)
    except TypeError:
        raise AdapterError(f"{option} {spec!r}: your adapter takes {signature}; the battery calls "
                           "adapter(model, train_dataset, eval_dataset, collator, recipe): accept those five arguments") from None


def adapter_name(adapter: Adapter) -> str:
    return getattr(adapter, "name", None) or getattr(adapter, "__name__", None) or type(adapter).__name__
