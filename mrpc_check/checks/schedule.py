"""Check 4 and clipping: optimizer steps and the learning rate of each, against the closed form.

Bugs caught: scheduler stepped per micro-batch, schedule sized before ``accelerator.prepare``
or without accumulation (it never reaches 0), warmup ignored or mis-rounded, scheduler stepped
before the optimizer, clipping not applied.
Oracle: the closed form of the linear schedule with warmup, evaluated here; the learning
rate and gradient norm each step applies, observed by torch's global optimizer hook.
"""

from __future__ import annotations

import math

from mrpc_check.checks.harness import N_TRAIN
from mrpc_check.checks.verdict import Verdict, check, crashed, fail, ok

CLIP = 1e-3  # far below any real gradient norm here, so clipping binds at every step


def expected_steps(recipe, n_train: int = N_TRAIN, processes: int = 1) -> int:
    """ceil(batches / accumulation) x epochs, batches counted per process."""
    batches = math.ceil(math.ceil(n_train / processes) / recipe.batch_size)
    return math.ceil(batches / recipe.grad_accum) * recipe.epochs


def warmup_of(recipe, total: int) -> int:
    return min(recipe.warmup_steps, total) if recipe.warmup_steps else math.ceil(total * recipe.warmup_ratio)


def linear_lr(recipe, step: int, total: int) -> float:
    """The rate optimizer step ``step`` (0-based) uses: linear warmup from 0, then linear decay to 0."""
    warmup = warmup_of(recipe, total)
    if step < warmup:
        return recipe.lr * step / max(1, warmup)
    return recipe.lr * max(0.0, (total - step) / max(1, total - warmup))


def fed_steps(run) -> int:
    """ceil(micro-batches per epoch / accumulation) x epochs, from the micro-batches the loop really fed.

    The schedule is judged against the loop's own data: a loop that feeds other rows than the
    training set (the label control's finding) or drops some (the seed check's) still owes the
    closed form over the batches it iterates.
    """
    recipe = run.recipe
    fed = len(run.observation.train_forwards())
    if fed and fed % recipe.epochs == 0:
        return math.ceil(fed // recipe.epochs / recipe.grad_accum) * recipe.epochs
    return expected_steps(recipe)


def schedule_verdict(name: str, run, processes: int = 1) -> Verdict:
    recipe = run.recipe
    steps = run.observation.steps
    total = expected_steps(recipe, processes=processes) if processes > 1 else fed_steps(run)
    if len(steps) != total:
        more = len(steps) > total
        return fail(name, f"{len(steps)} optimizer steps, expected ceil(batches / {recipe.grad_accum}) x {recipe.epochs} = {total}",
                    "optimizer stepped per micro-batch" if more else "steps lost (accumulation groups not closed at epoch end?)",
                    "step once per group of grad_accum micro-batches, and once more for a short last group of an epoch")
    warmup = warmup_of(recipe, total)
    lrs = [record.lrs[0] for record in steps]
    for k, record in enumerate(steps):
        want = linear_lr(recipe, k, total)
        if not math.isclose(record.lrs[0], want, rel_tol=1e-6, abs_tol=1e-12):
            # The warmup the loop used: the step at which its rate peaked (the closed form peaks at step `warmup`).
            peaked = lrs.index(max(lrs))
            # "Ahead": higher than the closed form while warming up, lower while decaying.
            ahead = record.lrs[0] > want if k < warmup else record.lrs[0] < want
            other = recipe.replace(warmup_steps=peaked, warmup_ratio=0.0)
            if peaked != warmup and all(math.isclose(lr, linear_lr(other, j, total), rel_tol=1e-6, abs_tol=1e-12)
                                        for j, lr in enumerate(lrs)):
                bug = f"warmup of {peaked} optimizer steps, not {warmup}: warmup miscounted (or given in another unit)"
            elif ahead:
                bug = "the schedule runs ahead: scheduler stepped per micro-batch (or before optimizer.step())"
            else:
                bug = "the schedule lags: sized for more steps than taken, or warmup ignored"
            return fail(name, f"step {k + 1} of {total} used lr {record.lrs[0]:.6g}, closed form {want:.6g} "
                        f"(warmup {warmup}, peak {recipe.lr:g})", bug,
                        "size the schedule as ceil(len(loader) / grad_accum) x epochs from the loader actually iterated "
                        "(after accelerator.prepare) and call scheduler.step() once, after optimizer.step()")
    final = run.observation.final_lrs[0] if run.observation.final_lrs else float("nan")
    if final != 0.0:
        return fail(name, f"lr after the last step is {final:.6g}, not 0",
                    "schedule sized for more steps than the loop takes (e.g. before accelerator.prepare)",
                    "size the schedule from the prepared loader, with accumulation counted")
    return ok(name, f"{total} steps, every lr equal to the closed form (warmup {warmup_of(recipe, total)}), final lr 0.0")


@check("schedule", oracle="closed form of the linear schedule; lr observed at each optimizer step")
def check_schedule(battery):
    """Optimizer steps = ceil(batches / accumulation) x epochs; each step's lr is the closed form (warmup as steps and as ratio); ends at 0."""
    for run in (battery.base_run(), battery.run("clip", clip_recipe(battery))):
        if (v := crashed("schedule", run)) is not None:
            return v
        verdict = schedule_verdict("schedule", run)
        if not verdict.passed:
            verdict.figure = f"run {run.name!r}: {verdict.figure}"
            return verdict
    return ok("schedule", f"warmup as 2 steps and as ratio 0.5: {len(battery.base_run().observation.steps)} steps each, "
              "every lr the closed form, final lr 0.0")


def clip_recipe(battery):
    return battery.base.replace(warmup_steps=0, warmup_ratio=0.5, max_grad_norm=CLIP)


@check("clipping", oracle="gradient norm observed at each optimizer step against max_grad_norm")
def check_clipping(battery):
    """With max_grad_norm set, every step applies gradients of exactly that global norm (it binds here)."""
    run = battery.run("clip", clip_recipe(battery))
    if (v := crashed("clipping", run)) is not None:
        return v
    norms = [s.grad_norm for s in run.observation.steps]
    worst = max((abs(n - CLIP) / CLIP for n in norms), default=float("inf"))
    if norms and worst > 1e-3:
        ratio = sorted(norms)[len(norms) // 2] / CLIP
        if abs(ratio - 1) > 1e-3 and max(abs(n / CLIP - ratio) for n in norms) < 1e-4 * ratio:
            return fail("clipping", f"every global gradient norm at the steps is {ratio:.4g}x max_grad_norm {CLIP:g}",
                        f"clipped to {ratio:.3g}x max_grad_norm, not to max_grad_norm itself",
                        "pass recipe.max_grad_norm unchanged to clip_grad_norm_")
    if not norms or worst > 1e-3:
        high = max(norms, default=0.0) > CLIP * 1.001
        return fail("clipping", f"global gradient norms at the steps {min(norms, default=0):.3g}..{max(norms, default=0):.3g}, max_grad_norm {CLIP:g}",
                    "max_grad_norm not applied" if high else "clipped before the gradients were complete or unscaled",
                    "call clip_grad_norm_(model.parameters(), max_grad_norm) after the last backward of the group "
                    "(after scaler.unscale_ under fp16), right before optimizer.step()")
    return ok("clipping", f"{len(norms)} steps, every global gradient norm within {worst:.1e} of max_grad_norm {CLIP:g}")
