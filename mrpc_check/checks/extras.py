"""Checks: what the loop does that the recipe never asked for, each named as its own root cause.

The effective recipe (:mod:`mrpc_check.checks.effective`) shows every extra; these checks grade
them, one family each, and the checks whose oracle an extra breaks read it from here instead of
blaming their own family (``extra_explains``, in the verdict module).

* ``loss``: label smoothing or class weights in the loop's cross-entropy. Oracle: the raw gradient
  of the first steps decomposed on per-row gradients per class and of the uniform target.
* ``frozen``: tensors the loop set ``requires_grad=False`` on. Oracle: ``requires_grad`` at the
  start against the first optimizer step.
* ``dropout``: dropout rates the loop set for training. Oracle: the Dropout modules' rates at the
  first training forward against the model as handed over.
* ``outside_updates``: weights changed between optimizer steps or after the last one (an EMA or an
  average copied in, a checkpoint reloaded). Oracle: the weights each step left (optimizer
  post-hook) against the next step's start and the run's end.

(A clip fixed in the loop is the ``clipping`` check's, a warmup the recipe has none of the
``schedule`` check's: same findings, their families.)

Grading: an extra the loop chose (it froze tensors, smooths labels, clips) warns, naming the
choice and how to declare it (``adapter.extras``); a declared extra that the run shows passes; a
declared one the run contradicts fails. Changes that corrupt training silently stay failures in
their own families (a trainable tensor left out of the optimizer: ``optimizer``; an evaluation
pass in train mode: ``modes``).
"""

from __future__ import annotations

import math
from typing import Optional

from mrpc_check.checks.effective import MOVED, effective_recipe
from mrpc_check.checks.observe import models_in_run
from mrpc_check.checks.verdict import Verdict, check, crashed, extra_explains, fail, judge, ok, skip, warn  # noqa: F401

DECLARE = "adapter.extras = {{{key!r}: {value}}}"


def declare(key: str, value) -> str:
    """How to declare the extra: ``adapter.extras = {'label_smoothing': 0.1}``."""
    return DECLARE.format(key=key, value=repr(value))


def _present(verdict: Verdict) -> Verdict:
    verdict.extra = True  # the extra is in the run (declared or not): checks that it breaks step aside
    return verdict


@check("loss", oracle="raw gradient of the first steps decomposed on per-row gradients per class and of the uniform target",
       rests_on=("inputs",))
def check_loss(battery):
    """The loop's loss is the recipe's mean cross-entropy, or an extra it declares (label smoothing, class weights)."""
    run = battery.base_run()
    if (v := crashed("loss", run)) is not None:
        return v
    eff = effective_recipe(battery)
    finding = eff.loss
    declared_ls = battery.caps.extra("label_smoothing", 0.0)
    declared_w = battery.caps.extra("class_weights")
    if finding.form is None:
        return skip("loss", f"no cross-entropy form recognised: {finding.why} (the gradient checks judge it)")
    form = finding.form
    figure = finding.describe()
    if declared_w:
        want = tuple(w / declared_w[0] for w in declared_w)
        if not form.class_weights or any(abs(a - b) > 1e-3 * b for a, b in zip(form.class_weights, want)):
            return fail("loss", figure, f"declared class weights {declared_w} but the gradient shows "
                        f"{'none' if not form.class_weights else ':'.join(f'{w:.3g}' for w in form.class_weights)}",
                        "pass the declared weights to CrossEntropyLoss(weight=...), or correct adapter.extras")
    if declared_ls and not math.isclose(form.label_smoothing, declared_ls, abs_tol=1e-3):
        return fail("loss", figure, f"declared label smoothing {declared_ls:g} but the gradient shows {form.label_smoothing:g}",
                    "pass the declared value to CrossEntropyLoss(label_smoothing=...), or correct adapter.extras")
    if form.plain:
        return ok("loss", figure)
    undeclared = []
    if form.label_smoothing and not declared_ls:
        undeclared.append(("label_smoothing", form.label_smoothing, f"label smoothing {form.label_smoothing:g}"))
    if form.class_weights and not declared_w:
        undeclared.append(("class_weights", form.class_weights, "class weights " + ":".join(f"{w:.3g}" for w in form.class_weights)))
    if not undeclared:
        return _present(ok("loss", f"{figure}; as declared in adapter.extras"))
    what = " and ".join(u[2] for u in undeclared)
    return _present(warn("loss", figure, f"the loop trains with {what} though the recipe's loss is plain cross-entropy",
                         "remove it from the loss (CrossEntropyLoss() / the model's own loss), or declare the choice: "
                         + ", ".join(declare(k, v) for k, v, _ in undeclared)))


@check("frozen", oracle="requires_grad of every tensor at the start against the first optimizer step")
def check_frozen(battery):
    """Every tensor trains, unless the loop declares what it freezes (adapter.extras['frozen'])."""
    run = battery.base_run()
    if (v := crashed("frozen", run)) is not None:
        return v
    eff = effective_recipe(battery)
    declared = battery.caps.extra("frozen")
    total = len(run.observation.trainable)
    if (v := _untrained_head(battery, run, eff)) is not None:
        return v
    if declared:
        want = [n for n in run.observation.trainable if any(n == p or n.startswith(p + ".") for p in declared)]
        if sorted(want) != sorted(eff.frozen):
            extra = sorted(set(eff.frozen) - set(want))
            trained = sorted(set(want) - set(eff.frozen))
            return fail("frozen", f"declared frozen {list(declared)} ({len(want)} tensors); the loop froze {len(eff.frozen)}"
                        + (f", e.g. {extra[0]} not declared" if extra else "") + (f", {trained[0]} declared but trained" if trained else ""),
                        "what the loop freezes is not what it declared in adapter.extras", "freeze exactly the declared prefixes, or correct adapter.extras['frozen']")
        if not eff.frozen:
            return ok("frozen", f"all {total} tensors train")
        return _present(ok("frozen", f"{len(eff.frozen)} of {total} tensors frozen ({', '.join(eff.frozen_prefixes)}), as declared"))
    if not eff.frozen:
        return ok("frozen", f"all {total} tensors train (none set requires_grad=False)")
    shown = ", ".join(eff.frozen_prefixes[:4]) + (", ..." if len(eff.frozen_prefixes) > 4 else "")
    if eff.added:  # parameter-efficient fine-tuning: the base frozen, tensors of the loop's own trained instead
        from mrpc_check.checks.effective import describe_added

        return _present(warn("frozen", f"{len(eff.frozen)} of {total} tensors set requires_grad=False by the loop: {shown}; "
                             f"trained instead: {len(eff.added)} tensors it added ({describe_added(eff.added)})",
                             f"the loop freezes {shown} and trains {len(eff.added)} tensors of its own (parameter-efficient "
                             "fine-tuning) though the recipe trains every tensor of the model",
                             "if that is the design, declare it: " + declare("frozen", tuple(eff.frozen_prefixes))))
    return _present(warn("frozen", f"{len(eff.frozen)} of {total} tensors set requires_grad=False by the loop: {shown}",
                         f"the loop freezes {shown} though the recipe trains every tensor",
                         "train every tensor (drop the requires_grad=False), or declare the choice: "
                         + declare("frozen", tuple(eff.frozen_prefixes))))


def _untrained_head(battery, run, eff) -> Optional[Verdict]:
    """A failure when the classification head's output projection is frozen and nothing of its shape trains instead.

    The head of a sequence classifier starts from random weights (from_pretrained initialises it): frozen, the
    logits come from a random projection whatever else trains. Found by shape ((num_labels, hidden), the one
    weight whose rows are the classes), not by name, so RoBERTa's ``classifier.out_proj`` and a renamed head count.
    """
    labels = getattr(getattr(run.model, "config", None), "num_labels", 2)
    # The last such weight in registration order: the head comes after the encoder (token type embeddings can be (2, h) too).
    heads = [(n, tuple(p.shape)) for n, p in battery.fresh_model(0).named_parameters() if p.dim() == 2 and p.shape[0] == labels][-1:]
    frozen = [(n, shape) for n, shape in heads if n in set(eff.frozen)]
    if not frozen:
        return None
    (name, shape), = frozen
    tensors = run.observation.tensors
    if any(n in tensors and tuple(tensors[n].shape) == shape for n in eff.added):
        return None  # a copy of the head trains in its place (PEFT's modules_to_save)
    return _present(fail("frozen", f"{name} {shape} frozen by the loop and no tensor of its shape trains",
                "the classification head is frozen at its random initialisation: the logits come from an untrained projection",
                "train the head: LoraConfig(task_type='SEQ_CLS') (or modules_to_save=['classifier']) under PEFT, "
                "or leave the head's requires_grad on"))


@check("dropout", oracle="the Dropout modules' rates at the first training forward against the model handed over")
def check_dropout(battery):
    """Training runs at the model's own dropout, unless the loop declares the rate it sets (adapter.extras['dropout'])."""
    run = battery.base_run()
    if (v := crashed("dropout", run)) is not None:
        return v
    eff = effective_recipe(battery)
    if eff.dropout is None:
        return skip("dropout", "no training forward observed")
    declared = battery.caps.extra("dropout")
    figure = f"dropout {eff.dropout:g} at the first training forward, the model came with {eff.dropout_start:g}"
    if declared is not None:
        if not math.isclose(eff.dropout, declared, abs_tol=1e-9):
            return fail("dropout", figure, f"declared dropout {declared:g}, the loop trains at {eff.dropout:g}",
                        "set the declared rate on the model's Dropout modules, or correct adapter.extras['dropout']")
        return _present(ok("dropout", f"{figure}, as declared"))
    if math.isclose(eff.dropout, eff.dropout_start, abs_tol=1e-9):
        return ok("dropout", figure)
    return _present(warn("dropout", figure, f"the loop sets dropout {eff.dropout:g} for training (the model came with "
                         f"{eff.dropout_start:g}): its gradients are random, so the gradient checks cannot recompute them",
                         "leave the model's dropout as handed over, or declare the choice: " + declare("dropout", eff.dropout)))


@check("outside_updates", oracle="optimizer post-hook: the weights each step left against the next step's start and the run's end")
def check_outside_updates(battery):
    """Only optimizer steps change the weights: no EMA or average copied in, no checkpoint reloaded, no manual update."""
    run = battery.base_run()
    if (v := crashed("outside_updates", run)) is not None:
        return v
    eff = effective_recipe(battery)
    if (several := models_in_run(run)) is not None:  # fresh weights loaded between models: the design, not an update
        if not several["starts"]:
            return fail("outside_updates", several["describe"],
                        "the loop trains copies of the model (or models it builds), never the model it was handed: none "
                        "of the training the battery observes happened, so no other check can judge it",
                        "train the model the adapter is handed (an ensemble's first member can be that model itself), "
                        "or verify one member's training")
        declared = battery.caps.extra("models")
        if declared == several["count"]:
            return _present(ok("outside_updates", f"{several['describe']}; as declared in adapter.extras"))
        if declared is not None:
            return fail("outside_updates", several["describe"], f"declared {declared} models (adapter.extras) but the run trained "
                        f"{several['count']}", "train the declared number of models, or correct adapter.extras['models']")
        return _present(warn("outside_updates", several["describe"],
                             f"the loop trains {several['count']} models in one run though the recipe trains one model once over "
                             "every row; the checks that assume one model are not judged on it",
                             "verify one model's training (an adapter that trains a single model on the rows it is given), or "
                             "declare the choice: " + declare("models", several["count"])))
    if not eff.moved:
        return skip("outside_updates", "no optimizer step observed")
    moved = {k: v for k, v in eff.moved.items() if v > MOVED}
    checked = ", ".join(("the end" if k == "end" else f"steps {k}-{k + 1}") for k in eff.moved)
    if not moved:
        return ok("outside_updates", f"the weights each step left are the next step's and the end's ({checked})")
    between = [k for k in moved if k != "end"]
    where = ", ".join(("after the last step" if k == "end" else f"between steps {k} and {k + 1}") + f" by {v:.1e} (relative)"
                      for k, v in moved.items())
    if between:
        return fail("outside_updates", f"weights changed outside the optimizer {where}",
                    "weights updated outside the optimizer between steps (an EMA or average written into the model being "
                    "trained, or a manual update): the optimizer's next step starts from other weights than its last left",
                    "keep an EMA in a separate copy (torch.optim.swa_utils.AveragedModel) and evaluate that copy, or update "
                    "the weights only through optimizer.step()")
    if run.observation.own_schedule:  # schedule-free: optimizer.eval() swaps in the average it evaluates, by design
        return _present(warn("outside_updates", f"weights changed outside the optimizer {where}",
                             "the weights evaluated are the schedule-free optimizer's average (optimizer.eval() swaps them in), "
                             "not the last step's",
                             "nothing to change if that is the design (call optimizer.eval() before evaluating and saving, "
                             "optimizer.train() before training); say so where the results are reported"))
    return _present(warn("outside_updates", f"weights changed outside the optimizer {where}",
                         "the weights evaluated are not the last optimizer step's (an EMA or average copied in, or a "
                         "best checkpoint reloaded after training)",
                         "evaluate the weights training ended with, or say so where the results are reported"))
