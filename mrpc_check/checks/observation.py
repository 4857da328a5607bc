"""What the observer records (:mod:`mrpc_check.checks.observe`): one record per forward and per optimizer step,
and the run's :class:`Observation` that the facts, the effective recipe and every check read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "labels")


@dataclass
class ForwardRecord:
    """One forward pass of the observed model."""

    training: bool  # module.training when the forward ran
    grad_enabled: bool  # torch.is_grad_enabled(): training forwards build a graph, evaluation ones should not
    keys: frozenset  # which of INPUT_KEYS arrived (not None)
    shape: tuple  # input_ids' shape: (batch, seq_len)
    rows: list  # (split, index) of each row, or None for a row found in neither split
    steps_before: int  # optimizer steps taken before this forward
    loss: Optional[float]  # the loss the model returned (None without labels)
    mask_ok: bool = True  # attention_mask marks exactly a prefix of real tokens, or is absent
    real_tokens: int = 0  # attention_mask's sum: the batch's real (non-padding) tokens
    # Training forwards: the logits returned, and the gradient the loop's loss sent back into them (a tensor
    # hook on the logits, whatever computed the loss: the model or the loop). (batch, num_labels) each.
    logits: Optional[torch.Tensor] = None
    logit_grad: Optional[torch.Tensor] = None


@dataclass
class StepRecord:
    """One optimizer step, seen just before it updates the weights."""

    lrs: list  # learning rate of each param group, as the step uses it
    weight_decays: list  # weight decay of each param group
    grad_norm: float  # global L2 norm of the gradients the step applies
    updated: frozenset = frozenset()  # names of the parameters this step applies a gradient to
    grads: Optional[dict] = None  # parameter name -> gradient copy (steps listed in capture)
    weights: Optional[dict] = None  # parameter name -> weight copy before the step
    # The gradient backward produced in this step (tensor hooks, summed over its backwards), against the applied one:
    raw_norm: float = 0.0  # its global L2 norm
    raw_dot: float = 0.0  # its dot product with the applied gradient (equal to raw_norm ** 2 when nothing touched it)
    raw: Optional[dict] = None  # parameter name -> copy (steps listed in capture)
    scheduler_calls: int = 0  # LRScheduler.step() calls so far, before this optimizer step (construction's included)


@dataclass
class Observation:
    """Everything one run showed."""

    forwards: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    final_lrs: list = field(default_factory=list)  # each group's lr after training (after the last scheduler step)
    final_lrs_each: list = field(default_factory=list)  # the same for every optimizer, in the order they first stepped
    optimizers: int = 0  # distinct optimizers that stepped
    dropout: float = 0.0  # the largest dropout rate in the model's modules when the run started
    # 1-based optimizer step -> L2 norm of the gradients already in .grad when each parameter's first
    # gradient of that step arrived (tensor hooks fire before accumulation): 0 when zero_grad cleared them.
    leftover: dict = field(default_factory=dict)
    # Each optimizer's param groups at its first step: {"lr", "initial_lr", "weight_decay", "names", "frozen",
    # "foreign"}; names are the model's parameter names ("foreign": tensors that are not the model's).
    groups: list = field(default_factory=list)
    trainable: list = field(default_factory=list)  # names of the model's parameters with requires_grad, at the start
    trainable_at_step: Optional[list] = None  # the same at the first optimizer step (None: no step): the loop's freezing shows
    dropout_at_train: Optional[float] = None  # the largest dropout rate at the first training forward (None: none ran)
    # Weights moved outside the optimizer: 1-based step k -> relative L2 change between the weights step k left and
    # the ones step k + 1 started from (for k + 1 in capture); "end" -> the same between the last step and the run's end.
    moved: dict = field(default_factory=dict)
    scheduler_calls: int = 0  # LRScheduler.step() calls over the whole run
    # Tensors the loop added: in the model (found by a forward or a step; named by their path there, e.g.
    # "...query.lora_A.default.weight") and outside it ("(outside the model) ...": stepped, reached by backward).
    added: list = field(default_factory=list)
    outside: list = field(default_factory=list)  # the added ones that are not in the model
    # Name -> the tensor itself, for every tensor named (the model's at the start under their names then, and the added
    # ones): the gradient oracles find the same tensors in a copy of the trained model through it.
    tensors: dict = field(default_factory=dict, repr=False, compare=False)
    # A new optimizer after the first one: {"step": its first optimizer step (1-based), "fresh": whether the model's
    # weights were back at their start values then (several models trained in one run: k-fold, an ensemble)}.
    restarts: list = field(default_factory=list)
    # Other model objects the loop trained (an ensemble's members: deep copies, models built anew), each
    # {"after": the model's optimizer steps before its first step, "steps": its optimizer steps, "fresh": whether it
    # started from the model's start weights, "tensors": tensors its optimizer holds}. Their steps are not the model's:
    # kept out of ``steps`` and the scheduler count (their forwards never reach the model's hooks).
    members: list = field(default_factory=list)
    member_optimizers: set = field(default_factory=set, repr=False, compare=False)  # id() of the members' optimizers
    constructed: dict = field(default_factory=dict, repr=False, compare=False)  # id(optimizer) -> its schedulers' construction steps
    # Training forwards under autocast: (device type, dtype name), e.g. ("cpu", "bfloat16"), read from torch's autocast
    # state when the first training forward starts; None in full precision. logits_dtype: the training logits' dtype.
    autocast: Optional[tuple] = None
    logits_dtype: Optional[str] = None
    # Rates the optimizer applied from its own schedule (schedule-free's group["scheduled_lr"], read after each
    # step), replacing StepRecord.lrs: True when any step's rate came from there.
    own_schedule: bool = False
    # Steps taken as optimizer.step(closure), forward and backward inside the step (Lightning's automatic optimization).
    closure_steps: bool = False

    def scheduler_stride(self) -> Optional[int]:
        """Scheduler steps per optimizer step when every step took the same number (2 under a prepared scheduler
        on 2 processes, accum when stepped per micro-batch), else None."""
        calls = [s.scheduler_calls for s in self.steps]  # between two optimizer steps: however the loop orders them
        gaps = {b - a for a, b in zip(calls, calls[1:])}
        return gaps.pop() if len(gaps) == 1 and gaps != {0} else None

    def train_forwards(self) -> list:
        return [f for f in self.forwards if f.grad_enabled]

    def eval_forwards(self) -> list:
        return [f for f in self.forwards if not f.grad_enabled]

    def train_rows(self) -> list:
        """Rows of every training forward, in the order the loop fed them."""
        return [r for f in self.train_forwards() for r in f.rows]

    def train_losses(self) -> list:
        return [f.loss for f in self.train_forwards()]
