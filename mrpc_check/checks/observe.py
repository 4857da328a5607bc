"""Observation from outside the loop: forward hooks on the model, torch's global optimizer hooks.

The battery never asks a loop what it did; it watches:

* every forward pass of the model (``register_forward_pre_hook``/``register_forward_hook``
  with kwargs): train or eval mode, whether autograd was on, which of ``attention_mask``,
  ``token_type_ids`` and ``labels`` arrived, the batch's shape, which dataset rows it held
  (recognised by their unpadded token ids), and the loss the model returned;
* every optimizer step (``torch.optim.optimizer.register_optimizer_step_pre_hook``, global,
  so it sees an optimizer whoever built it: the loop, Accelerate or Trainer): the learning
  rate and weight decay of each group, the global gradient norm, and on request a copy of
  the gradients and of the weights the step starts from;
* the precision of the training forwards: torch's autocast state (device and dtype) as the first one starts,
  and the dtype of the logits, so that the gradient oracles recompute at the precision the loop ran at;
* the gradient backward produced, before the loop touched it: tensor hooks on every parameter
  sum what autograd hands over in each step, so a clip, a rescale or a leftover shows as the
  difference between that *raw* gradient and the one the step applies;
* the tensors the loop adds and trains (PEFT's LoRA matrices and ``modules_to_save`` copies, a head it
  replaces, a wrapper's own tensors): every forward looks for tensors the model did not hold when it
  was handed over, names them by their path in the model and hooks them like the rest; a tensor an
  optimizer steps that is not in the model at all but that backward reached is named as outside the
  model (a tensor no gradient reaches is a copy's, the ``optimizer`` check's bug);
* which tensors the loop froze (``requires_grad`` at the first step against the start), the
  dropout rates of the first training forward, and weights moved outside the optimizer
  (``register_optimizer_step_post_hook``: the weights a step left against the next step's start
  and the run's end).

Hooks fire inside DDP and Accelerate wrappers too, since those call the wrapped module.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Iterable, Optional

import torch

from mrpc_check.checks.observation import INPUT_KEYS, ForwardRecord, Observation, StepRecord  # noqa: F401  (importable here too)


class RowIndex:
    """Recognises dataset rows inside padded batches by their real token ids."""

    def __init__(self, splits: dict, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id
        self.rows: dict[tuple, tuple] = {}
        for split, dataset in splits.items():
            for i, ids in enumerate(dataset.with_format(None)["input_ids"]):
                self.rows.setdefault(tuple(ids), (split, i))  # the battery's data has no duplicate pairs

    def identify(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor]) -> tuple[list, bool]:
        """Rows of a batch, and whether the mask marked exactly a prefix of real tokens."""
        ids = input_ids.detach().cpu()
        found, mask_ok = [], True
        if attention_mask is not None:
            mask = attention_mask.detach().cpu().bool()
            lengths = mask.sum(-1)
            # A right-padded mask is 1 for the first `length` positions and 0 after.
            prefix = torch.arange(mask.shape[-1]).unsqueeze(0) < lengths.unsqueeze(-1)
            mask_ok = bool(torch.equal(mask, prefix))
            for row, n in zip(ids, lengths.tolist()):
                found.append(self.rows.get(tuple(row[:n].tolist())))
        else:
            for row in ids.tolist():
                while row and row[-1] == self.pad_token_id:
                    row.pop()
                found.append(self.rows.get(tuple(row)))
        return found, mask_ok


class Observer:
    """Context manager that records what ``model`` receives and what every optimizer step applies.

    Args:
        model: the model handed to the loop (hooks stay on it through DDP/Accelerate wrapping).
        rows: a :class:`RowIndex` to name the rows of each batch, or None.
        capture: 1-based optimizer steps whose gradients and starting weights are copied.
    """

    def __init__(self, model: torch.nn.Module, rows: Optional[RowIndex] = None, capture: Iterable[int] = ()) -> None:
        self.model = model
        self.rows = rows
        self.capture = set(capture)
        self.observation = Observation()
        self._names = {id(p): n for n, p in model.named_parameters()}
        self._count = len(self._names)  # parameters the model held at the last scan
        self._hooked: set = set()  # ids of the tensors with a gradient hook
        self._signature = inspect.signature(model.forward)
        self._handles: list = []
        self._pending: Optional[ForwardRecord] = None
        self._optimizers: dict[int, torch.optim.Optimizer] = {}
        self._seen: set = set()  # parameters whose first gradient of the current step has arrived
        self._raw: dict = {}  # id(parameter) -> the gradient backward produced for it in the current step
        self._left: Optional[dict] = None  # name -> weights the last optimizer step left (capture runs only)
        self._probe: list = []  # (tensor, its start value) for a few small trainable tensors
        self._member_index: dict = {}  # id(optimizer) of another model object's -> its index in observation.members

    def __enter__(self) -> "Observer":
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        self._handles = [
            self.model.register_forward_pre_hook(self._before_forward, with_kwargs=True),
            self.model.register_forward_hook(self._after_forward, with_kwargs=True),
            register_optimizer_step_pre_hook(self._before_step),
        ]
        # Every LRScheduler.step() call, whoever makes it (the loop, Accelerate's wrapper once per process, the Trainer).
        _watch_scheduler_steps(self.observation)
        if self.capture:  # weights after each step, against the next start and the end: only runs that copy weights
            from torch.optim.optimizer import register_optimizer_step_post_hook

            self._handles.append(register_optimizer_step_post_hook(self._after_step))
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handles.append(register_optimizer_step_post_hook(self._read_own_schedule))
        for name, p in self.model.named_parameters():
            self.observation.tensors[name] = p
            if p.requires_grad:
                self._hook(p)
        self.observation.trainable = [n for n, p in self.model.named_parameters() if p.requires_grad]
        # A few of the smallest trainable tensors, as they start: a new optimizer that finds them back at these values
        # starts a fresh model (k-fold's load_state_dict of the initial weights), not a new stage of the same training.
        small = sorted((p for p in self.model.parameters() if p.requires_grad), key=lambda p: p.numel())[:4]
        self._probe = [(p, p.detach().clone()) for p in small]
        rates = [m.p for m in self.model.modules() if isinstance(m, torch.nn.Dropout)]
        self.observation.dropout = float(max(rates, default=0.0))
        return self

    def _hook(self, param: torch.Tensor) -> None:
        if id(param) not in self._hooked:
            self._hooked.add(id(param))
            self._handles.append(param.register_hook(self._gradient_hook(param)))

    def _scan(self) -> None:
        """Name and hook the tensors the loop added to the model since the last look (PEFT injects its own in place)."""
        params = list(self.model.named_parameters())
        if len(params) == self._count and all(id(p) in self._names for _, p in params[-1:]):
            return  # nothing added (the cheap test first: this runs before every forward)
        self._count = len(params)
        for name, p in params:
            if id(p) not in self._names:
                self._add(name, p)

    def _add(self, name: str, param: torch.Tensor, outside: bool = False) -> None:
        self._names[id(param)] = name
        self.observation.tensors[name] = param
        self.observation.added.append(name)
        if outside:
            self.observation.outside.append(name)
        if param.requires_grad:
            self._hook(param)

    def _adopt(self, optimizer) -> None:
        """Name the tensors ``optimizer`` steps that the model does not hold but backward reached (a head outside it)."""
        for g, group in enumerate(optimizer.param_groups):
            for i, p in enumerate(group["params"]):
                if id(p) not in self._names and p.grad is not None:
                    shape = "x".join(map(str, p.shape))
                    self._add(f"(outside the model) optimizer {len(self._optimizers)} group {g} tensor {i} ({shape})", p, outside=True)

    def _gradient_hook(self, param: torch.Tensor):
        """A tensor hook: at the parameter's first gradient of a step, what .grad already held."""

        def hook(grad):
            if id(param) not in self._seen:
                self._seen.add(id(param))
                step = len(self.observation.steps) + 1
                held = param.grad
                square = float(held.detach().float().pow(2).sum()) if held is not None else 0.0
                self.observation.leftover[step] = (self.observation.leftover.get(step, 0.0) ** 2 + square) ** 0.5
                self._raw[id(param)] = grad.detach().float().clone()
            else:
                self._raw[id(param)] += grad.detach().float()
            return None  # the gradient itself is left untouched

        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        _WATCHERS[:] = [w for w in _WATCHERS if w is not self.observation]  # by identity: observations compare by value
        # After the last step the rate the next step would take: a scheduler's, or a self-scheduling optimizer's last.
        self.observation.final_lrs_each = [
            [float(g["scheduled_lr"] if self.observation.own_schedule and "scheduled_lr" in g else g["lr"]) for g in o.param_groups]
            for o in self._optimizers.values()]
        self.observation.final_lrs = self.observation.final_lrs_each[-1] if self._optimizers else []
        self.observation.optimizers = len(self._optimizers)
        if self._left is not None:
            self.observation.moved["end"] = _relative_change(self._left, self.model.named_parameters())
            self._left = None

    # -- forwards -------------------------------------------------------------------------
    def _inputs(self, args, kwargs) -> dict:
        try:
            bound = self._signature.bind_partial(*args, **kwargs).arguments
        except TypeError:
            bound = dict(kwargs)
        extra = bound.pop("kwargs", None)  # models whose forward takes **kwargs
        if isinstance(extra, dict):
            bound.update(extra)
        return bound

    def _before_forward(self, module, args, kwargs):
        self._scan()  # before the forward, so that this forward's backward reaches the hooks of what the loop added
        if torch.is_grad_enabled() and self.observation.logits_dtype is None and self.observation.autocast is None:
            for device in ("cpu", "cuda"):
                if torch.is_autocast_enabled(device):
                    self.observation.autocast = (device, str(torch.get_autocast_dtype(device)).replace("torch.", ""))
                    break
        if self.observation.dropout_at_train is None and torch.is_grad_enabled():
            rates = [m.p for m in self.model.modules() if isinstance(m, torch.nn.Dropout) and m.training]
            self.observation.dropout_at_train = float(max(rates, default=0.0))
        inputs = self._inputs(args, kwargs)
        input_ids = inputs.get("input_ids")
        present = frozenset(k for k in INPUT_KEYS if inputs.get(k) is not None)
        rows, mask_ok = ([], True)
        if self.rows is not None and isinstance(input_ids, torch.Tensor):
            rows, mask_ok = self.rows.identify(input_ids, inputs.get("attention_mask"))
        mask = inputs.get("attention_mask")
        self._pending = ForwardRecord(
            training=module.training,
            grad_enabled=torch.is_grad_enabled(),
            keys=present,
            shape=tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else (),
            rows=rows,
            steps_before=len(self.observation.steps),
            loss=None,
            mask_ok=mask_ok,
            real_tokens=int(mask.sum()) if isinstance(mask, torch.Tensor) else 0,
        )

    def _after_forward(self, module, args, kwargs, output):
        record, self._pending = self._pending, None
        if record is None:
            return
        loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            record.loss = float(loss.detach().float())
        logits = output.get("logits") if isinstance(output, dict) else getattr(output, "logits", None)
        if isinstance(logits, torch.Tensor) and logits.requires_grad and logits.dim() == 2:
            if self.observation.logits_dtype is None:
                self.observation.logits_dtype = str(logits.dtype).replace("torch.", "")
            record.logits = logits.detach().float().cpu()

            def received(grad, record=record):
                g = grad.detach().float().cpu()
                record.logit_grad = g if record.logit_grad is None else record.logit_grad + g

            logits.register_hook(received)
        self.observation.forwards.append(record)

    # -- optimizer steps ------------------------------------------------------------------
    def _before_step(self, optimizer, args, kwargs):
        if isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
            return  # a wrapper (e.g. Accelerate's) whose inner optimizer reports the same step
        if self._member(optimizer):
            return None
        self._scan()
        if id(optimizer) not in self._optimizers:
            self._adopt(optimizer)
            if self._optimizers:
                fresh = bool(self._probe) and all(torch.equal(p.detach(), start) for p, start in self._probe)
                self.observation.restarts.append({"step": len(self.observation.steps) + 1, "fresh": fresh})
        if self.observation.trainable_at_step is None:
            # By the names the tensors had at the start (PEFT moves a Linear's weight to ".base_layer.weight").
            self.observation.trainable_at_step = [self._names[id(p)] for p in self.model.parameters() if p.requires_grad] + [
                n for n in self.observation.outside if self.observation.tensors[n].requires_grad]
        if id(optimizer) not in self._optimizers:
            for g in optimizer.param_groups:
                names = [self._names.get(id(p)) for p in g["params"]]
                self.observation.groups.append({
                    "optimizer": len(self._optimizers), "lr": float(g["lr"]),
                    "initial_lr": float(g.get("initial_lr", g["lr"])), "weight_decay": float(g.get("weight_decay", 0.0)),
                    "names": [n for n in names if n], "foreign": sum(n is None for n in names),
                    "frozen": [n for n, p in zip(names, g["params"]) if n and not p.requires_grad],
                    "type": type(optimizer).__name__,
                })
        self._optimizers[id(optimizer)] = optimizer
        closure = kwargs.get("closure", args[0] if args else None)
        if callable(closure):
            self.observation.closure_steps = True
            # optimizer.step(closure) (Lightning's automatic optimization): forward and backward run inside the step,
            # after this hook. The step is read when the closure returns, just before the update, as it is otherwise.
            def observed(*a, **k):
                loss = closure(*a, **k)
                self._record(optimizer)
                return loss

            if "closure" in kwargs:
                return args, {**kwargs, "closure": observed}
            return (observed, *args[1:]), kwargs
        self._record(optimizer)
        return None

    def _member(self, optimizer) -> bool:
        """Whether ``optimizer`` trains another model object (an ensemble's member), counting its step if so.

        Decided at its first step: none of its tensors is one the model holds, backward reached some of them (an
        optimizer over a copy nothing trains is the optimizer check's bug, not a member), and their shapes are the
        model's (all its tensors, or the trainable ones).
        """
        members = self.observation.member_optimizers
        if id(optimizer) in members:
            self.observation.members[self._member_index[id(optimizer)]]["steps"] += 1
            return True
        if id(optimizer) in self._optimizers:
            return False
        params = [p for g in optimizer.param_groups for p in g["params"]]
        if not params or any(id(p) in self._names for p in params) or all(p.grad is None for p in params):
            return False
        shapes = sorted(tuple(p.shape) for p in params)
        own = list(self.model.parameters())
        if shapes not in (sorted(tuple(p.shape) for p in own), sorted(tuple(p.shape) for p in own if p.requires_grad)):
            return False
        by_shape = {}
        for p in params:
            by_shape.setdefault(tuple(p.shape), []).append(p)
        fresh = bool(self._probe) and all(any(torch.equal(q.detach(), start) for q in by_shape.get(tuple(start.shape), ()))
                                          for _, start in self._probe)
        members.add(id(optimizer))
        self.observation.scheduler_calls -= self.observation.constructed.pop(id(optimizer), 0)
        self._member_index[id(optimizer)] = len(self.observation.members)
        # Held by id only (a member's optimizer and its state are freed with it): once it is gone, its id may be
        # another optimizer's, the next member's included, so the id is forgotten with it.
        weakref.finalize(optimizer, self._forget_member, id(optimizer))
        self.observation.members.append({"after": len(self.observation.steps), "steps": 1, "fresh": fresh,
                                         "tensors": len(params)})
        return True

    def _forget_member(self, key: int) -> None:
        self.observation.member_optimizers.discard(key)
        self._member_index.pop(key, None)

    def _record(self, optimizer) -> None:
        """The step about to update the weights: its rates, its gradients against backward's raw ones."""
        params = [p for g in optimizer.param_groups for p in g["params"]]
        with torch.no_grad():
            grads = {id(p): p.grad.detach().float() for p in params if p.grad is not None}
            raws = [(self._raw[id(p)], grads.get(id(p))) for p in params if id(p) in self._raw]
            # One kernel per tensor list and one host sync per figure: this runs at every step of every run.
            norm = _sum_of_squares(list(grads.values())) ** 0.5
            raw_sq = _sum_of_squares([raw for raw, _ in raws])
            dot = _total([torch.dot(_dense(raw).reshape(-1), _dense(grad).reshape(-1)) for raw, grad in raws if grad is not None])
        record = StepRecord(
            lrs=[float(g["lr"]) for g in optimizer.param_groups],
            weight_decays=[float(g.get("weight_decay", 0.0)) for g in optimizer.param_groups],
            grad_norm=norm,
            updated=frozenset(self._names.get(key) for key in grads) - {None},
            scheduler_calls=self.observation.scheduler_calls,
        )
        record.raw_norm, record.raw_dot = raw_sq ** 0.5, dot
        step = len(self.observation.steps) + 1
        if step in self.capture:
            named = [(self._names.get(id(p)), p) for p in params]
            record.grads = {n: (p.grad.detach().float().cpu().clone() if p.grad is not None else None) for n, p in named if n}
            record.weights = {n: p.detach().float().cpu().clone() for n, p in named if n}
            record.raw = {n: (self._raw[id(p)].cpu().clone() if id(p) in self._raw else None) for n, p in named if n}
            if self._left is not None and step - 1 >= 1:
                self.observation.moved[step - 1] = _relative_change(self._left, self.model.named_parameters())
        self.observation.steps.append(record)
        self._seen = set()
        self._raw = {}

    def _read_own_schedule(self, optimizer, args, kwargs):
        """The rate the step applied where the optimizer schedules itself (schedule-free: warmup inside the optimizer)."""
        if (isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer) or not self.observation.steps
                or id(optimizer) in self.observation.member_optimizers):
            return
        own = [g.get("scheduled_lr") for g in optimizer.param_groups]
        if all(isinstance(x, (int, float)) for x in own):
            self.observation.steps[-1].lrs = [float(x) for x in own]
            self.observation.own_schedule = True

    def _after_step(self, optimizer, args, kwargs):
        if isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer) or id(optimizer) in self.observation.member_optimizers:
            return
        # What this step left: read against the next captured step's start and against the run's end.
        self._left = {n: p.detach().float().cpu().clone() for n, p in self.model.named_parameters()}


_WATCHERS: list = []  # the observations of the observers now open: each counts every scheduler step


def _watch_scheduler_steps(observation: Observation) -> None:
    """Count LRScheduler.step() calls into ``observation`` until its observer closes.

    One wrapper, installed once for the process, serves every open observer: nested or interleaved
    observers cannot leave a stale wrapper behind, and a closed one stops counting.
    """
    from torch.optim import lr_scheduler

    if not getattr(lr_scheduler.LRScheduler.step, "_mrpc_counted", False):
        original = lr_scheduler.LRScheduler.step

        def counted(scheduler, *args, **kwargs):
            key = id(getattr(scheduler, "optimizer", None))
            for watching in _WATCHERS:  # not an ensemble member's scheduler: its steps are not the model's
                if key not in watching.member_optimizers:
                    watching.scheduler_calls += 1
                    if getattr(scheduler, "_step_count", None) == 0:  # the construction's step: taken back if a member's
                        watching.constructed[key] = watching.constructed.get(key, 0) + 1
            return original(scheduler, *args, **kwargs)

        counted._mrpc_counted = True
        lr_scheduler.LRScheduler.step = counted
    _WATCHERS.append(observation)


def _relative_change(before: dict, named) -> float:
    """||now - before|| / ||before|| over the parameters ``before`` holds."""
    with torch.no_grad():
        pairs = [(p.detach().float().cpu(), before[n]) for n, p in named if n in before]
        diff = _sum_of_squares(torch._foreach_sub([now for now, _ in pairs], [then for _, then in pairs])) if pairs else 0.0
        base = _sum_of_squares([then for _, then in pairs])
    return (diff / max(base, 1e-30)) ** 0.5


def _by_device(tensors) -> list:
    """``tensors`` in one list per device: foreach kernels and torch.stack take one device at a time."""
    groups: dict = {}
    for t in tensors:
        groups.setdefault(t.device, []).append(t)
    return list(groups.values())


def _sum_of_squares(tensors: list) -> float:
    """Sum of the squares of every element of ``tensors``: per-tensor norms (one foreach call per device), summed in float64."""
    return sum(float(torch.stack(torch._foreach_norm(group)).double().pow(2).sum()) for group in _by_device(map(_dense, tensors)))


def _dense(t: torch.Tensor) -> torch.Tensor:
    # A sparse gradient (nn.Embedding(sparse=True)): the foreach kernels and torch.dot take strided tensors only.
    return t.to_dense() if t.layout != torch.strided else t


def _total(values: list) -> float:
    """Sum of 0-d tensors in float64, one host sync per device."""
    return sum(float(torch.stack(group).double().sum()) for group in _by_device(values))


def models_in_run(run) -> Optional[dict]:
    """Several models trained in one run, else None.

    ``{"count", "starts": [first optimizer step of each model the handed one became], "rows": [training rows each of
    those was fed], "members": other model objects trained, "describe": text}``. K-fold cross-validation (the model
    restored to its start weights with a new optimizer per fold, on part of the rows) and an ensemble (the same, or
    other model objects: deep copies, models built anew) are this shape; the recipe's one model trained once over
    every row is not.
    """
    obs = run.observation
    restarts = [] if not all(r["fresh"] for r in obs.restarts) else obs.restarts
    members = obs.members
    if not restarts and not members:
        return None
    starts = ([1] + [r["step"] for r in restarts]) if obs.steps else []
    rows = [set() for _ in starts]
    for f in obs.train_forwards():
        model = sum(1 for s in starts[1:] if f.steps_before + 1 >= s)
        if starts:
            rows[model].update(r for r in f.rows if r is not None)
    n = len(run.train_labels)
    parts = []
    if len(starts) > 1:
        share = "/".join(sorted({str(len(r)) for r in rows}))
        kind = "k-fold cross-validation" if all(0 < len(r) < n for r in rows) and not members else "an ensemble or repeated runs"
        parts.append(f"fresh weights and a new optimizer at optimizer steps {', '.join(map(str, starts))}, each fed {share} "
                     f"of the {n} training rows ({kind})")
    elif starts:
        parts.append(f"the model handed over ({len(obs.steps)} optimizer steps)")
    if members:
        fresh = sum(m["fresh"] for m in members)
        origin = ("from the model's start weights" if fresh == len(members) else
                  "from other start weights" if not fresh else f"{fresh} of them from the model's start weights")
        steps = "/".join(sorted({str(m["steps"]) for m in members}))
        parts.append(f"{len(members)} other model object(s) trained {origin} ({steps} optimizer steps each; their forwards "
                     "are not observed: an ensemble)")
    count = len(starts) + len(members)
    return {"count": count, "starts": starts, "rows": rows, "members": len(members),
            "describe": f"{count} models trained in one run: " + "; ".join(parts)}


def first_model(run):
    """``run`` as the first of several models trained in it saw it (k-fold's first fold: its steps, forwards, optimizer
    and final rate), else ``run`` itself: what one model's training did, where the loop trains one after another."""
    import copy

    several = models_in_run(run)
    if several is None or len(several["starts"]) < 2:
        return run
    obs, cut = run.observation, several["starts"][1] - 1  # the first model's optimizer steps
    forwards = obs.forwards
    end = next((i for i, f in enumerate(forwards) if f.grad_enabled and f.steps_before >= cut), len(forwards))
    first = copy.copy(obs)
    first.steps, first.forwards = obs.steps[:cut], forwards[:end]
    first.groups = [g for g in obs.groups if g["optimizer"] == 0]
    first.final_lrs = obs.final_lrs_each[0] if obs.final_lrs_each else obs.final_lrs
    first.restarts = []
    first.moved = {k: v for k, v in obs.moved.items() if k != "end" and k < cut}
    view = copy.copy(run)
    view.observation = first
    return view


def training_epochs(observation: Observation, epochs: int) -> list:
    """The training forwards of each epoch, as the loop fed them.

    A loop feeds the same number of micro-batches every epoch (``drop_last`` or not), so an even
    split of the training forwards by ``epochs`` is the epochs; failing that, evaluation passes
    between training forwards mark the boundaries; failing that, a training row seen again starts
    a new epoch. Never a cut of the row stream into chunks of the dataset's size, which mixes two
    epochs as soon as one of them is short.
    """
    train = observation.train_forwards()
    if epochs > 0 and train and len(train) % epochs == 0:
        per = len(train) // epochs
        return [train[i : i + per] for i in range(0, len(train), per)]
    chunks, current, evaluated = [], [], False
    for f in observation.forwards:
        if not f.grad_enabled:
            evaluated = bool(current)
            continue
        if evaluated:
            chunks.append(current)
            current, evaluated = [], False
        current.append(f)
    if current:
        chunks.append(current)
    if len(chunks) == epochs:
        return chunks
    chunks, current, seen = [], [], set()
    for f in train:
        rows = [r for r in f.rows if r is not None]
        if current and any(r in seen for r in rows):
            chunks.append(current)
            current, seen = [], set()
        current.append(f)
        seen.update(rows)
    return chunks + ([current] if current else [])
