"""Checks 5-6: the gradient each optimizer step applies, recomputed outside the loop.

At the first optimizer steps the battery copies the gradients and the weights the step
starts from (optimizer pre-hook), reads which rows the step's micro-batches held (forward
hooks), and recomputes the gradient of the mean cross-entropy over exactly those rows at
exactly those weights, one unpadded example at a time, on its own copy of the model.

Bugs caught: loss not scaled for accumulation, micro-batches weighted equally when the last
one is short, ``zero_grad`` missing or misplaced, gradients of one step leaking into the next.
Oracle: the big batch's gradient, computed independently of the loop's code.
"""

from __future__ import annotations

import torch

from mrpc_check.checks.harness import CAPTURE
from mrpc_check.checks.verdict import check, crashed, fail, ok

TOL = 1e-3  # relative L2 error; fp32 reassociation between padded batches and single examples is ~1e-6 here


def _flat(grads: dict, names) -> torch.Tensor:
    return torch.cat([grads[n].reshape(-1).float() if grads.get(n) is not None else torch.zeros(0) for n in names])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def step_rows(run, k: int) -> list:
    """Micro-batches (lists of rows) of optimizer step ``k`` (1-based), in the order they ran."""
    return [f.rows for f in run.observation.train_forwards() if f.steps_before == k - 1]


def compare_step(battery, run, k: int):
    """(relative error, captured flat gradient, reference flat gradient, names) of optimizer step k."""
    record = run.observation.steps[k - 1]
    micro = step_rows(run, k)
    rows = [r for batch in micro for r in batch]
    names = [n for n, g in record.grads.items() if g is not None]
    reference = battery.reference_gradient(record.weights, rows, run.train_labels)
    captured, expected = _flat(record.grads, names), _flat(reference, names)
    return _rel(captured, expected), captured, expected, names, micro, record


def _base(battery):
    return battery.base_run()


def _ready(name, battery, run, needed: int):
    if (v := crashed(name, run)) is not None:
        return v
    steps = run.observation.steps
    if len(steps) < needed or any(steps[k - 1].grads is None for k in CAPTURE if k <= needed):
        return fail(name, f"{len(steps)} optimizer steps observed, {needed} needed",
                    "the optimizer steps too rarely (or not through torch.optim)", "step a torch.optim optimizer once per group")
    return None


@check("accumulation", oracle="gradient of the big batch, recomputed outside the loop at the captured weights")
def check_accumulation(battery):
    """The gradient of an accumulated step equals the big batch's, scale included, also with an uneven last micro-batch."""
    run = _base(battery)
    accum = run.recipe.grad_accum
    if (v := _ready("accumulation", battery, run, 6)) is not None:
        return v
    figures = []
    for k in (1, 3, 6):  # step 1: micro-batches [4, 4]; steps 3 and 6 close an epoch with [4, 2]
        err, captured, expected, names, micro, _ = compare_step(battery, run, k)
        sizes = [len(m) for m in micro]
        # The usual mistake, micro-batch means averaged with equal weights: when the loop's gradient
        # is nearer to that than to the big batch's, it made it, however small both errors are.
        per_batch = [battery.reference_gradient(run.observation.steps[k - 1].weights, m, run.train_labels) for m in micro]
        equal = sum(_flat(g, names) for g in per_batch) / len(micro)
        err_equal = _rel(captured, equal) if len(set(sizes)) > 1 else float("inf")
        figures.append(f"step {k} {sizes}: {err:.1e}" + (f" (equal weights would be {_rel(equal, expected):.1e})" if err_equal != float("inf") else ""))
        if err <= TOL and err_equal >= err:
            continue
        ratio = float(captured @ expected / (expected @ expected))
        if abs(ratio - accum) < 0.05 * accum:
            bug = f"loss not scaled for accumulation: the step's gradient is {ratio:.2f}x the big batch's"
        elif err_equal < err:
            bug = "micro-batches weighted equally (loss / grad_accum): the short last one counts as much as a full one"
        else:
            bug = "the step's gradient is not the big batch's (micro-batches missed, repeated or mis-weighted)"
        return fail("accumulation", f"step {k}, micro-batches {sizes}: relative error {err:.2e} (tolerance {TOL:g}), "
                    f"to equal micro-batch weights {err_equal:.2e}", bug,
                    "weight each micro-batch's mean loss by its size / the group's size (or divide the summed loss "
                    "by the group's example count) and call optimizer.step() once per group")
    return ok("accumulation", "gradient equals the big batch's; relative error " + ", ".join(figures))


@check("gradients_cleared", oracle="gradient of step k's rows alone, recomputed at step k's weights")
def check_gradients_cleared(battery):
    """The gradient of step k depends on step k's micro-batches only (zero_grad once per step, in the right place)."""
    run = _base(battery)
    if (v := _ready("gradients_cleared", battery, run, 2)) is not None:
        return v
    err, captured, expected, names, micro, _ = compare_step(battery, run, 2)
    if err <= TOL:
        return ok("gradients_cleared", f"step 2's gradient is its own rows' ({err:.1e} relative error)")
    previous = _flat(run.observation.steps[0].grads, names)
    if _rel(captured - previous, expected) <= TOL:
        bug = "zero_grad missing or misplaced: step 2 applied step 1's gradient as well"
    elif _rel(captured, expected) > 0.99 and captured.norm() < 1e-3 * expected.norm():
        bug = "gradients cleared after backward and before the step: the optimizer applies nothing"
    else:
        bug = "step 2's gradient is not its own rows' (gradients cleared in the wrong place)"
    return fail("gradients_cleared", f"step 2: relative error {err:.2e} against its own rows' gradient", bug,
                "call optimizer.zero_grad() once per optimizer step, after optimizer.step() (or before the group's first backward)")
