"""Check 4: optimizer steps and the learning rate of each, against the closed form.

Bugs caught: scheduler stepped per micro-batch, schedule sized before ``accelerator.prepare``
or without accumulation (it never reaches 0), warmup ignored or mis-rounded, scheduler stepped
before the optimizer; a warmup fixed in the loop where the recipe has none (an extra, named).
The clipping check (:mod:`mrpc_check.checks.clipping`) reads the same variant run.
Oracle: the closed form of the linear schedule with warmup, evaluated here; the learning
rate and gradient norm each step applies, observed by torch's global optimizer hook.
"""

from __future__ import annotations

import math
from typing import Optional

from mrpc_check.checks.facts.schedule import (CLIP, clip_recipe, constant_after_warmup, diagnose, expected_steps,  # noqa: F401
                                             fed_steps, fractional_warmup, infer_schedule, linear_lr, warmup_of)
from mrpc_check.checks.verdict import Verdict, check, crashed, explained_by, fail, ok, several_models_explain

def self_scheduled(run, recipe, warmup: int) -> Optional[tuple]:
    """(bug, fix) for rates that no lr scheduler made: constant at the peak, or a warmup given as a fraction of a step."""
    obs = run.observation
    lrs = [s.lrs[0] for s in obs.steps]
    final = obs.final_lrs[0] if obs.final_lrs else float("nan")
    fractional = fractional_warmup(lrs, final, recipe.lr) if lrs and recipe.lr > 0 else None
    if fractional is not None:
        w, t = fractional
        return (f"a warmup of {w:.3g} optimizer steps: num_warmup_steps given as a fraction of the total ({w / t:.3g} x {t}) "
                "and not rounded, so the rate is 0 at the first step and then jumps onto the decay",
                f"num_warmup_steps=math.ceil(ratio x total) (an int), from recipe.warmup_steps / warmup_ratio ({warmup} here)")
    w = constant_after_warmup(run)
    if w is None:
        return None
    where = ("inside the optimizer (its own warmup_steps)" if obs.own_schedule else "") if w else ""
    had = f" after a warmup of {w} step{'s' if w != 1 else ''}{' ' + where if where else ''}" if w else ""
    scheduler = ("no lr scheduler (a schedule-free optimizer keeps its rate at the peak)" if obs.own_schedule
                 else "no lr scheduler stepped" if obs.scheduler_calls == 0 else "the scheduler keeps the rate constant")
    return (f"{scheduler}: the rate stays at the peak {recipe.lr:g}{had} instead of decaying linearly to 0",
            "step a linear scheduler once per optimizer step (get_scheduler('linear', optimizer, num_warmup_steps, "
            "num_training_steps)), or declare the choice: adapter.extras = {'schedule': 'constant'}")


def schedule_verdict(name: str, run, processes: int = 1, recipe=None) -> Verdict:
    """The closed form's verdict on ``run`` (judged against ``recipe``, the run's own by default)."""
    recipe = recipe or run.recipe
    steps = run.observation.steps
    total = expected_steps(recipe, processes=processes) if processes > 1 else fed_steps(run)
    micro = len(run.observation.train_forwards())
    if len(steps) != total:
        more = len(steps) > total
        return fail(name, f"{len(steps)} optimizer steps, expected ceil(batches / {recipe.grad_accum}) x {recipe.epochs} = {total}",
                    "optimizer stepped per micro-batch" if more else "steps lost (accumulation groups not closed at epoch end?)",
                    "step once per group of grad_accum micro-batches, and once more for a short last group of an epoch")
    warmup = warmup_of(recipe, total)
    final = run.observation.final_lrs[0] if run.observation.final_lrs else float("nan")
    for k, record in enumerate(steps):
        want = linear_lr(recipe, k, total)
        if not math.isclose(record.lrs[0], want, rel_tol=1e-6, abs_tol=1e-12):
            if processes == 1 and (found := self_scheduled(run, recipe, warmup)) is not None:
                return fail(name, f"step {k + 1} of {total} used lr {record.lrs[0]:.6g}, closed form {want:.6g} "
                            f"(warmup {warmup}, peak {recipe.lr:g})", *found)
            bug, fix = diagnose(recipe, [r.lrs[0] for r in steps], final, total, warmup, processes, micro,
                                run.observation.scheduler_stride())
            return fail(name, f"step {k + 1} of {total} used lr {record.lrs[0]:.6g}, closed form {want:.6g} "
                        f"(warmup {warmup}, peak {recipe.lr:g})", bug, fix)
    if final != 0.0:
        bug, fix = diagnose(recipe, [r.lrs[0] for r in steps], final, total, warmup, processes, micro,
                            run.observation.scheduler_stride())
        return fail(name, f"lr after the last step is {final:.6g}, not 0", bug, fix)
    return ok(name, f"{total} steps, every lr equal to the closed form (warmup {warmup_of(recipe, total)}), final lr 0.0")


@check("schedule", oracle="closed form of the linear schedule; lr observed at each optimizer step")
def check_schedule(battery):
    """Optimizer steps = ceil(batches / accumulation) x epochs; each step's lr is the closed form (warmup as steps and as ratio); ends at 0.

    A mismatch is diagnosed, not only rejected: the warmup, total and scheduler steps per optimizer
    step that reproduce the observed rates are inferred and named (floored total, micro-batches
    counted, per-micro-batch stepping, a fixed or ignored warmup). Where the recipe has no warmup
    and the rates are the closed form with one, that warmup is an extra of the loop's: named, a
    warning unless ``adapter.extras`` declares it.
    """
    declared = battery.caps.extra("warmup_steps")
    if battery.caps.extra("schedule") == "constant":
        return _declared_constant(battery)
    extras = []
    from mrpc_check.checks.observe import first_model, models_in_run

    for run in (battery.base_run(), battery.run("clip", clip_recipe(battery))):
        if (v := crashed("schedule", run)) is not None:
            return v
        run = first_model(run)  # k models one after another (k-fold): each has its own schedule; the first's is judged
        verdict = schedule_verdict("schedule", run)
        if not verdict.passed and (v := several_models_explain(battery, run, "schedule", f"run {run.name!r}: {verdict.figure}")):
            return v  # each model has a schedule of its own, sized for its own rows
        if not verdict.passed:
            fitted = extra_warmup(run)
            if fitted is not None:
                verdict = schedule_verdict("schedule", run, recipe=run.recipe.replace(warmup_steps=fitted))
                if verdict.passed:
                    extras.append((run.name, fitted, len(run.observation.steps)))
                    continue
        if not verdict.passed:
            verdict.figure = f"run {run.name!r}: {verdict.figure}"
            from mrpc_check.checks.facts.rows import early_stop, other_epochs

            stopped = early_stop(run)
            if other_epochs(run):  # a hard-coded epoch count: coverage names it, the step count follows from it
                return explained_by(battery, verdict, "coverage")
            if len(run.observation.steps) != fed_steps(run) or stopped:
                # A step count off is what misaligned groups (or an early stop) do; rates off at the right count are the
                # schedule's own.
                verdict = explained_by(battery, verdict, "coverage" if stopped else "grouping")
            return verdict
    base = battery.base_run()
    first = first_model(base)
    steps = len(first.observation.steps)
    of = f" (the first of {models_in_run(base)['count']} models)" if first is not base else ""
    if extras:
        seen = "; ".join(f"run {name!r}: warmup {w} of {t} steps, then the closed form to 0" for name, w, t in extras)
        if declared is not None and all(w == declared for _, w, _ in extras):
            return Verdict("schedule", "pass", f"{seen}, as declared in adapter.extras", extra=True)
        if declared is not None:
            return fail("schedule", seen, f"declared a warmup of {declared} steps (adapter.extras) but the loop warms up over "
                        f"{extras[0][1]}", "warm up over the declared steps, or correct adapter.extras['warmup_steps']")
        return Verdict("schedule", "warn", seen, f"the loop warms up over {extras[0][1]} optimizer steps though the recipe has no "
                       "warmup (a warmup fixed in the loop)",
                       "take num_warmup_steps from recipe.warmup_steps / warmup_ratio and keep 'warmup' in adapter.supports, "
                       f"or declare the choice: adapter.extras = {{'warmup_steps': {extras[0][1]}}}", extra=True)
    if declared is not None:
        return fail("schedule", f"{steps} steps, every lr the closed form without warmup",
                    f"declared a warmup of {declared} steps (adapter.extras) but the rate starts at its peak",
                    "warm up over the declared steps, or remove 'warmup_steps' from adapter.extras")
    if not battery.declares("warmup"):
        return ok("schedule", f"{steps} steps{of}, every lr the closed form without warmup (warmup declared absent), final lr 0.0")
    return ok("schedule", f"warmup as 2 steps and as ratio 0.5: {steps} steps{of} each, every lr the closed form, final lr 0.0")


def _declared_constant(battery) -> Verdict:
    """A loop that declares no decay (``extras = {'schedule': 'constant'}``): the rate is the peak after the recipe's warmup."""
    figures = []
    for run in (battery.base_run(), battery.run("clip", clip_recipe(battery))):
        if (v := crashed("schedule", run)) is not None:
            return v
        total = fed_steps(run)
        want = warmup_of(run.recipe, total)
        if len(run.observation.steps) != total:
            return explained_by(battery, fail("schedule", f"run {run.name!r}: {len(run.observation.steps)} optimizer steps, expected {total}",
                                              "steps lost or added", "step once per group of grad_accum micro-batches"), "grouping")
        w = constant_after_warmup(run)
        if w is None:
            return fail("schedule", f"run {run.name!r}: rates {', '.join(f'{s.lrs[0]:.3g}' for s in run.observation.steps[:4])}, ...",
                        "declared a constant schedule (adapter.extras) but the rate does not stay at its peak",
                        "remove 'schedule' from adapter.extras, or keep the rate constant after the warmup")
        if w != want:
            return fail("schedule", f"run {run.name!r}: warmup of {w} steps, recipe {want}",
                        f"the rate reaches its peak after {w} steps, not the recipe's warmup of {want}",
                        "pass the recipe's warmup to the optimizer (schedule-free: warmup_steps=recipe.warmup_steps)")
        figures.append(f"run {run.name!r}: warmup {w}, then the peak {run.recipe.lr:g} for {total - w} steps")
    return Verdict("schedule", "pass", "; ".join(figures) + "; no decay, as declared in adapter.extras", extra=True)


def extra_warmup(run) -> Optional[int]:
    """The warmup a run's rates show where its recipe asks for none (the closed form fits with it), else None."""
    recipe = run.recipe
    total = fed_steps(run)
    if warmup_of(recipe, total) != 0 or len(run.observation.steps) != total:
        return None
    lrs = [s.lrs[0] for s in run.observation.steps]
    final = run.observation.final_lrs[0] if run.observation.final_lrs else float("nan")
    found = infer_schedule(lrs, final, recipe.lr, strides=(1,), expect=(None, total))
    if found is None or found[0] == 0 or found[1] != total or found[2] != 1 or found[3] != 0:
        return None
    return found[0]


