"""Checks 5-6: the gradient each optimizer step applies, recomputed outside the loop.

At the first optimizer steps the battery copies the gradients and the weights the step
starts from (optimizer pre-hook), reads which rows the step's micro-batches held (forward
hooks), and recomputes the gradient of the mean cross-entropy over exactly those rows at
exactly those weights, one unpadded example at a time, on its own copy of the model.

Bugs caught: loss not scaled for accumulation, micro-batches weighted equally when the last
one is short, ``zero_grad`` missing or misplaced, gradients of one step leaking into the next.
Oracle: the big batch's gradient, computed independently of the loop's code.

Extras the effective recipe found (:mod:`mrpc_check.checks.effective`) are the loop's, not these
checks' bugs: the reference is the loop's own cross-entropy (label smoothing, class weights), a
step the loop clipped is judged on the gradient backward produced (the clip is the ``clipping``
check's), and a loop that trains with dropout cannot have its gradients recomputed (``dropout``).
"""

from __future__ import annotations

import torch

from mrpc_check.checks.facts.gradients import TOL, flat_gradient, relative_error
from mrpc_check.checks.harness import CAPTURE, MRPC_BATCH, MRPC_TRAIN
from mrpc_check.checks.verdict import check, crashed, fail, ok, skip, warn

# Lightning's automatic optimization divides every micro-batch's loss by accumulate_grad_batches, the short group's too.
_LIGHTNING_ACCUM_FIX = ("Lightning divides each micro-batch's loss by accumulate_grad_batches, the short last group's too: "
                        "in training_step return loss * accumulate_grad_batches * len(batch) / the group's example count, "
                        "or give each epoch whole groups")


def tolerance(run) -> float:
    """TOL in full precision; under bf16/fp16 autocast, the dtype's machine epsilon (2^-7 for bf16).

    The oracle recomputes each micro-batch as a correct loop does at that precision, but a group of micro-batches is
    scaled inside backward by the loop and after it here: rounded differently, by up to 2.7e-3 of the gradient on the
    tiny BERT in bf16 (bit-exact for single micro-batches). The bugs these checks name are of order 1.
    """
    if run.observation.autocast is None:
        return TOL
    return max(TOL, float(torch.finfo(getattr(torch, run.observation.autocast[1])).eps))


def step_rows(run, k: int) -> list:
    """Micro-batches (lists of rows) of optimizer step ``k`` (1-based), in the order they ran."""
    return [f.rows for f in run.observation.train_forwards() if f.steps_before == k - 1]


def loop_loss(battery):
    """The cross-entropy the loop trains on (label smoothing, class weights), as the effective recipe found it."""
    from mrpc_check.checks.effective import effective_recipe

    return effective_recipe(battery).loss.form


def judged_gradient(battery, run, k: int) -> dict:
    """The gradient step k is judged on: the one applied, or, where the loop clipped it, the one backward produced."""
    from mrpc_check.checks.effective import effective_recipe
    from mrpc_check.checks.facts.clip import clipped_steps

    record = run.observation.steps[k - 1]
    if run.name == "base" and record.raw is not None and k in clipped_steps(run.observation.steps, effective_recipe(battery).clip):
        return record.raw
    return record.grads


def compare_step(battery, run, k: int):
    """(relative error, judged flat gradient, reference flat gradient, names, micro-batches, record) of optimizer step k."""
    record = run.observation.steps[k - 1]
    micro = step_rows(run, k)
    rows = [r for batch in micro for r in batch]
    names = [n for n, g in record.grads.items() if g is not None]
    loss = loop_loss(battery)  # the same loop in every run: its own cross-entropy
    # The mean over the step's rows, as the size-weighted mean of its micro-batches' means (the
    # same sum; each micro-batch's gradient is computed once for this check and the clearing one).
    expected = sum(flat_gradient(battery.reference_gradient(record.weights, m, run.train_labels, loss, run, scale=len(m) / len(rows)), names)
                   for m in micro)
    captured = flat_gradient(judged_gradient(battery, run, k), names)
    return relative_error(captured, expected), captured, expected, names, micro, record


def _base(battery):
    return battery.base_run()


def _ready(name, battery, run, needed: int):
    if (v := crashed(name, run)) is not None:
        return v
    outside = run.observation.outside
    if outside:
        return skip(name, f"not judged: the loop trains {len(outside)} tensor(s) outside the model it was handed (e.g. "
                    f"{outside[0]}), and the oracle recomputes gradients through that model alone")
    steps = run.observation.steps
    if len(steps) < needed or any(steps[k - 1].grads is None for k in CAPTURE if k <= needed):
        from mrpc_check.checks.facts.rows import early_stop
        from mrpc_check.checks.verdict import explained_by

        # Too few steps is what an early stop, misaligned groups or oversized micro-batches do: then that is the root.
        return explained_by(battery, fail(name, f"{len(steps)} optimizer steps observed, {needed} needed",
                                          "the optimizer steps too rarely (or not through torch.optim)",
                                          "step a torch.optim optimizer once per group"),
                            "coverage" if early_stop(run) else "grouping")
    empty = [k for k in CAPTURE if k <= needed and not any(g is not None for g in steps[k - 1].grads.values())]
    if empty:
        return fail(name, f"optimizer step {empty[0]} applied no gradient to any tensor it holds",
                    "the optimizer holds no tensor that backward reaches", "build the optimizer from the trained model's parameters")
    unknown = [k for k in CAPTURE if k <= needed and any(r is None for batch in step_rows(run, k) for r in batch)]
    if unknown:
        return fail(name, f"optimizer step {unknown[0]} trained on rows that match no dataset example",
                    "the gradient cannot be recomputed: the inputs were altered", "feed the collator's batches unchanged")
    return None


def last_group_effect(accum: int, n: int = MRPC_TRAIN, batch: int = MRPC_BATCH, drop_last: bool = False) -> tuple[int, list, list, list]:
    """What ``loss / accum`` (or ``accelerator.accumulate``) does at MRPC's size: (optimizer steps per
    epoch, the last group's micro-batch sizes, the weights it gives them, the right weights).
    With ``drop_last`` the incomplete last micro-batch is never fed, so it weighs nothing."""
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch and not drop_last else [])
    groups = [sizes[i : i + accum] for i in range(0, len(sizes), accum)]
    last = groups[-1]
    # Equal weights 1/accum on micro-batch means, against each micro-batch's share of the group's
    # examples: the same when the group is accum full micro-batches, off in a short last group.
    return len(groups), last, [round(1 / accum, 3)] * len(last), [round(s / sum(last), 3) for s in last]


@check("accumulation", oracle="gradient of the big batch, recomputed outside the loop at the captured weights",
       rests_on=("inputs", "grouping", "gradients_cleared"))
def check_accumulation(battery):
    """The gradient of an accumulated step equals the big batch's, scale included, also with an uneven last micro-batch.

    Graded: a wrong gradient in a full group (steps 1 and 2) fails. When only each epoch's last
    group is off, and by exactly what dividing every micro-batch's mean loss by the accumulation
    steps gives (``loss / accum``, ``accelerator.accumulate()``), the check warns: the effect is
    confined to one optimizer step per epoch, and the verdict says its size at the real recipe.
    """
    run = _base(battery)
    accum = run.recipe.grad_accum
    if (v := _ready("accumulation", battery, run, 6)) is not None:
        return v
    tol = tolerance(run)
    figures, idiom_steps = [], []
    # Steps 1, 2: micro-batches [4, 4]; steps 3 and 6 close an epoch with [4, 2] ([4] under drop_last).
    # Without accumulation (declared) they are single batches, the last one short: the scale is still judged.
    for k in (1, 2, 3, 6):
        err, captured, expected, names, micro, record = compare_step(battery, run, k)
        sizes = [len(m) for m in micro]
        figures.append(f"step {k} {sizes}: {err:.1e}")
        if err <= tol:
            continue
        ratio = float(captured @ expected / (expected @ expected))
        full = len(micro) == accum and len(set(sizes)) == 1
        if not full and len(micro) <= accum:
            # The idiom's gradient: each micro-batch's mean gradient divided by accum.
            per_batch = [battery.reference_gradient(record.weights, m, run.train_labels, loop_loss(battery), run) for m in micro]
            idiom = sum(flat_gradient(g, names) for g in per_batch) / accum
            if relative_error(captured, idiom) <= tol:
                idiom_steps.append((k, sizes, relative_error(idiom, expected)))
                continue
        if abs(ratio - accum) < 0.05 * accum:
            bug = f"loss not scaled for accumulation: the step's gradient is {ratio:.2f}x the big batch's"
        elif full:
            bug = (f"the gradient of a full group is {ratio:.3f}x the big batch's (relative error {err:.1e}): "
                   "micro-batches mis-weighted, missed or repeated, or the loss scaled by a wrong factor")
        else:
            bug = "the step's gradient is not the big batch's (micro-batches missed, repeated or mis-weighted)"
        figure = f"step {k}, micro-batches {sizes}: relative error {err:.2e} (tolerance {tol:g})"
        from mrpc_check.checks.verdict import extra_explains

        if (v := extra_explains(battery, "accumulation", "dropout", figure)) is not None:
            return v
        return fail("accumulation", figure, bug,
                    "weight each micro-batch's mean loss by its size / the group's size (or divide the summed loss "
                    "by the group's example count) and call optimizer.step() once per group")
    if idiom_steps:
        from mrpc_check.checks.facts.rows import dropped_tail

        dropped = dropped_tail(run)
        steps, last, used, right = last_group_effect(accum, drop_last=dropped)
        worst = max(e for _, _, e in idiom_steps)
        where = ", ".join(f"step {k} {sizes}" for k, sizes, _ in idiom_steps)
        at = f"At MRPC's {MRPC_TRAIN} training pairs, batch {MRPC_BATCH}, accumulation {accum}" + (", drop_last" if dropped else "")
        if used == right:
            size = (f"{at}: {MRPC_TRAIN // MRPC_BATCH if dropped else steps * accum} micro-batches make {steps} full groups "
                    "per epoch, so no step is affected there (other sizes and batch sizes are)")
        else:
            size = (f"{at}: 1 optimizer step in {steps} per epoch is affected (its micro-batches {last} weighted {used} "
                    f"instead of {right})")
        return warn("accumulation",
                    f"full groups exact; each epoch's last group weighted as loss / {accum}: {where}, relative gradient error "
                    f"up to {worst:.2f}. {size}",
                    "micro-batches weighted equally (loss / grad_accum): each epoch's short last group is mis-weighted",
                    _LIGHTNING_ACCUM_FIX if run.observation.closure_steps else
                    "plain loop: multiply each micro-batch's mean loss by its size / the group's example count instead of "
                    "dividing by grad_accum; under accelerator.accumulate(): count the group's examples first and call "
                    "accelerator.backward(loss * accelerator.gradient_accumulation_steps * len(batch) / group_examples), "
                    "since accelerator.backward divides by gradient_accumulation_steps")
    if not battery.declares("grad_accum"):
        return skip("accumulation", "declared: the loop does not accumulate (adapter.supports has no 'grad_accum'); at "
                    "accumulation 1 each step's gradient equals its batch's, relative error " + ", ".join(figures))
    from mrpc_check.checks.effective import effective_recipe
    from mrpc_check.checks.facts.clip import clipped_steps

    clipped = sorted(clipped_steps(run.observation.steps, effective_recipe(battery).clip) & {1, 2, 3, 6})
    before = f" (steps {', '.join(map(str, clipped))} judged before its clip: the loop clips, see `clipping`)" if clipped else ""
    return ok("accumulation", "gradient equals the big batch's; relative error " + ", ".join(figures) + before)


def _span_residual(captured: torch.Tensor, basis: list) -> tuple[float, torch.Tensor]:
    """Relative distance of ``captured`` from the span of ``basis`` (float64 least squares), and the weights."""
    matrix = torch.stack(basis, 1).double()  # (parameters, micro-batches)
    weights = torch.linalg.lstsq(matrix, captured.double().unsqueeze(1)).solution.squeeze(1)
    fitted = matrix @ weights
    return float((captured.double() - fitted).norm() / captured.double().norm().clamp_min(1e-30)), weights


def _bases(battery, run, k: int, names: list) -> list:
    """Step k's micro-batches' gradients at its weights, one list per weighting a correct loop may use.

    In full precision a gradient scales exactly, so one weighting (by size) spans them all. Under bf16 autocast the
    rounding of a small-gradient step depends on the loss scale before backward (measured: the same 2 rows at scale
    1/3 and 1/2 gave gradients 70 % apart, power-of-two scales identical), so the weighting of the loop's idiom,
    loss / grad_accum (Lightning, Accelerate), is recomputed too: the span must hold for one of them.
    """
    record = run.observation.steps[k - 1]
    micro = step_rows(run, k)
    rows = sum(len(m) for m in micro)
    weightings = [[len(m) / rows for m in micro]]
    if run.observation.autocast is not None and run.recipe.grad_accum > 1:
        weightings.append([1 / run.recipe.grad_accum] * len(micro))
    return [[flat_gradient(battery.reference_gradient(record.weights, m, run.train_labels, loop_loss(battery), run, scale=w), names)
             for m, w in zip(micro, weights)] for weights in weightings]


@check("gradients_cleared", oracle="tensor hooks: .grad when each step's first gradient arrives; span of the step's own "
       "micro-batches' gradients, recomputed at its weights", rests_on=("inputs",))
def check_gradients_cleared(battery):
    """The gradient of step k comes from step k's micro-batches only, however weighted (zero_grad once per step, in the right place).

    Two oracles. Observed: a tensor hook on every parameter reads ``.grad`` when the parameter's
    first gradient of each step arrives, before autograd adds it: anything there but zeros was
    left by an earlier step (exact, so 1 % of a gradient carried over fails). Recomputed: at
    steps 2, 3 and 6 the applied gradient must lie in the span of the gradients of that step's
    own micro-batches; any weighting or scale passes here (that is the accumulation check's
    finding), a gradient cleared after backward and before the step does not.
    """
    from mrpc_check.checks.facts.optimizer import membership_explains

    return membership_explains(battery, _gradients_cleared(battery))


def _gradients_cleared(battery):
    run = _base(battery)
    if (v := _ready("gradients_cleared", battery, run, 6)) is not None:
        return v
    steps = run.observation.steps
    tol = tolerance(run)
    for k in range(2, len(steps) + 1):
        left = run.observation.leftover.get(k, 0.0)
        if left > 0.0:
            carried = left / max(steps[k - 2].grad_norm, 1e-30)
            figure = (f"step {k}'s backward started on gradients of norm {left:.3g} left in .grad "
                      f"({carried:.2g}x step {k - 1}'s applied norm {steps[k - 2].grad_norm:.3g})")
            bug = ("zero_grad missing or misplaced: step {k} applied step {j}'s gradient as well" if abs(carried - 1) < 0.05
                   else "gradients not fully cleared: step {k} carries {c:.2g}x step {j}'s gradient").format(k=k, j=k - 1, c=carried)
            return fail("gradients_cleared", figure, bug,
                        "call optimizer.zero_grad() once per optimizer step, after optimizer.step() (or before the group's first backward)")
    figures = []
    for k in (2, 3, 6):
        record = run.observation.steps[k - 1]
        micro = step_rows(run, k)
        names = [n for n, g in record.grads.items() if g is not None]
        captured = flat_gradient(record.grads, names)
        residual, weights, basis = min((_span_residual(captured, basis) + (basis,) for basis in _bases(battery, run, k, names)),
                                       key=lambda found: found[0])
        figures.append(f"step {k}: {residual:.1e}")
        if residual <= tol:
            continue
        figure = (f"step {k}: {residual:.2e} of the applied gradient lies outside the span of its own "
                  f"{len(micro)} micro-batches' gradients (tolerance {tol:g})")
        from mrpc_check.checks.verdict import extra_explains

        if (v := extra_explains(battery, "gradients_cleared", "dropout", figure)) is not None:
            return v
        if captured.norm() < 1e-3 * sum(basis).norm():
            bug = "gradients cleared after backward and before the step: the optimizer applies nothing"
        elif k > 1 and run.observation.steps[k - 2].grads is not None:
            previous = flat_gradient(run.observation.steps[k - 2].grads, names)
            with_previous, mix = _span_residual(captured, basis + [previous])
            carried = float(mix[-1])
            if with_previous <= tol and abs(carried - 1) < 0.05:
                bug = f"zero_grad missing or misplaced: step {k} applied step {k - 1}'s gradient as well"
            elif with_previous <= tol:
                bug = f"gradients not fully cleared: step {k} carries {carried:.2g}x step {k - 1}'s gradient"
            else:
                bug = f"step {k}'s gradient is not made of its own rows' (gradients cleared in the wrong place)"
        else:
            bug = f"step {k}'s gradient is not made of its own rows' (gradients cleared in the wrong place)"
        return fail("gradients_cleared", figure, bug,
                    "call optimizer.zero_grad() once per optimizer step, after optimizer.step() (or before the group's first backward)")
    return ok("gradients_cleared", "each step's gradient is made of its own micro-batches' (residual " + ", ".join(figures) + ")")
