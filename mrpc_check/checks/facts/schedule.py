"""The recipe's schedule in closed form, and what a run's rates say it was sized for.

The linear schedule with warmup as the recipe defines it (:func:`linear_lr`, :func:`expected_steps`,
:func:`warmup_of`), the optimizer steps a loop's own data owes (:func:`fed_steps`), the schedule a run's
observed rates fit (:func:`infer_schedule`; a constant rate, a fractional warmup) and what a mis-sized one was
sized for (:func:`diagnose`); the clipping run's recipe. Read by the schedule, clipping, precision and
2-process families and by the effective recipe.
"""

from __future__ import annotations

import math
from typing import Optional

from mrpc_check.checks.harness import N_TRAIN


CLIP = 1e-3  # far below any real gradient norm here, so clipping binds at every step


def expected_steps(recipe, n_train: int = N_TRAIN, processes: int = 1) -> int:
    """ceil(batches / accumulation) x epochs, batches counted per process."""
    batches = math.ceil(math.ceil(n_train / processes) / recipe.batch_size)
    return math.ceil(batches / recipe.grad_accum) * recipe.epochs


def warmup_of(recipe, total: int) -> int:
    """The recipe's warmup in optimizer steps: ``warmup_steps`` (at most the total), else ceil(ratio x total)."""
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


def _linear(warmup: int, total: int, position: int) -> float:
    """The linear schedule with warmup, as a fraction of the peak, after ``position`` scheduler steps."""
    if position < warmup:
        return position / max(1, warmup)
    return max(0.0, (total - position) / max(1, total - warmup))


def _fits(lrs: list, final: float, peak: float, warmup: int, total: int, stride: int, offset: int = 0) -> bool:
    """Whether a linear schedule sized (warmup, total), at ``offset + stride * k`` at step k, gives ``lrs`` then ``final``."""
    return all(math.isclose(lr, peak * _linear(warmup, total, offset + stride * k), rel_tol=1e-5, abs_tol=1e-9 * peak)
               for k, lr in enumerate(list(lrs) + [final]))


def infer_schedule(lrs: list, final: float, peak: float, strides=(1,), expect: tuple = (None, None)):
    """What a linear schedule must have been sized for to give ``lrs`` (and ``final`` after the last step).

    Returns ``(warmup, total, stride, offset)``: the scheduler stood at ``offset + stride * k`` at
    optimizer step k (0-based), or None when no linear schedule with warmup fits. ``total`` is None
    when the rate never left its warmup (any total above the positions seen fits). Few steps can fit
    several schedules: the one sharing most with ``expect`` (the recipe's warmup and total) wins,
    then one scheduler step per optimizer step.
    """
    if not lrs or peak <= 0:
        return None
    fractions = [lr / peak for lr in lrs] + [final / peak]

    def fits(warmup, total, stride, offset):
        return all(math.isclose(f, _linear(warmup, total if total is not None else 10**9, offset + stride * k),
                                rel_tol=1e-5, abs_tol=1e-9) for k, f in enumerate(fractions))

    found = []
    for stride in dict.fromkeys(strides):
        for offset in range(0, stride + 1):
            positions = [offset + stride * k for k in range(len(fractions))]
            warmups = {0} | ({expect[0]} if expect[0] is not None else set())
            for pos, f in zip(positions, fractions):
                if 0 < f < 1 and pos > 0:
                    warmups.add(round(pos / f))  # a point on the rising line
                elif math.isclose(f, 1.0, rel_tol=1e-6):
                    warmups.add(pos)  # the peak: warmup ended at or before it
            for warmup in sorted(warmups):
                totals = {None} | ({expect[1]} if expect[1] is not None else set())
                for pos, f in zip(positions, fractions):
                    if pos >= warmup and 0 < f < 1:  # a point on the falling line: total - pos = f * (total - warmup)
                        totals.add(round((pos - f * warmup) / (1 - f)))
                    elif pos >= warmup and f == 0:
                        totals.update(range(max(warmup, pos - stride * len(fractions)), pos + 1))
                for total in sorted(totals, key=lambda t: -1 if t is None else t):
                    if (total is None or total > warmup) and fits(warmup, total, stride, offset):
                        found.append((warmup, total, stride, offset))
    if not found:
        return None
    return min(found, key=lambda f: (-(f[0] == expect[0]) - (f[1] == expect[1]), f[2] != 1, f[3], f[0]))


def diagnose(recipe, lrs: list, final: float, total: int, warmup: int, processes: int = 1, micro: int = 0,
             stride: Optional[int] = None) -> tuple[str, str]:
    """(bug, fix) for a schedule whose rates ``lrs`` (then ``final``) are not the closed form, from what it was sized for.

    ``micro``: training micro-batches the process fed over all epochs. ``stride``: the scheduler steps
    observed between two optimizer steps (``LRScheduler.step`` calls counted), when known: the fit
    then uses it alone (an unscaled warmup under a prepared scheduler and a halved warmup stepped
    once give the same rates; the count tells them apart).
    """
    accum = recipe.grad_accum
    fix = ("size the schedule as ceil(len(loader) / grad_accum) x epochs from the loader actually iterated "
           "(after accelerator.prepare) and call scheduler.step() once, after optimizer.step()")
    strides = (stride,) if stride else (1, accum, processes, accum * processes)
    found = infer_schedule(lrs, final, recipe.lr, strides=strides, expect=(warmup, total))
    if found is None:
        peaked = lrs.index(max(lrs)) if lrs else 0
        return ("the rates follow no linear schedule with warmup at the recipe's peak "
                f"(peak observed at step {peaked + 1}, {max(lrs, default=0):.6g})"), fix
    w, t, stride, offset = found
    if stride > 1 and stride == processes and processes > 1:
        # Rates that end at 0 fit several totals; prefer the sizings a loop actually computes.
        unsharded = math.ceil(N_TRAIN / recipe.batch_size)
        for cand_t in (processes * total, math.ceil(unsharded / accum) * recipe.epochs, total):
            for cand_w in (processes * warmup, warmup):
                if cand_t > cand_w and _fits(lrs, final, recipe.lr, cand_w, cand_t, stride, offset):
                    w, t = cand_w, cand_t
                    break
            else:
                continue
            break
        return prepared_scheduler_diagnosis(recipe, w, t, total, warmup, processes, micro)
    if stride > 1:
        return (f"the schedule runs ahead: it advanced {stride} times per optimizer step (sized for {t} steps, warmup {w}): "
                "scheduler stepped per micro-batch", fix)
    if t is None:
        return (f"warmup of {w} optimizer steps, not {warmup}: the rate never reached its peak in {len(lrs)} steps "
                "(a warmup fixed in the loop, or given in another unit)",
                "take the warmup from the recipe (num_warmup_steps=recipe.warmup_steps, or ceil(ratio x total))")
    if w != warmup:
        if w == 0 and warmup > 0:
            return (f"ignores the recipe's warmup (no warmup for {warmup} steps asked): if the loop has no warmup by design, "
                    "declare it (supports without 'warmup')",
                    "pass num_warmup_steps from recipe.warmup_steps / warmup_ratio, or leave 'warmup' out of adapter.supports")
        return (f"warmup of {w} optimizer steps, not {warmup}: warmup miscounted (or given in another unit)",
                "num_warmup_steps = recipe.warmup_steps, or ceil(warmup_ratio x the optimizer steps)")
    epochs = recipe.epochs
    per_epoch = micro // epochs if micro and epochs else 0
    unsharded = math.ceil(N_TRAIN / recipe.batch_size)
    if processes > 1 and per_epoch and t > total and t in (math.ceil(unsharded / accum) * epochs, unsharded * epochs):
        return (f"sized for {t} steps, {total} taken on each of {processes} processes: the schedule was sized before "
                f"accelerator.prepare (from the unsharded loader), and each process iterates 1/{processes} of it, so the "
                "rate never reaches 0", "build the scheduler after prepare, from len(prepared loader) / grad_accum x epochs "
                "(or pass it to prepare, which steps it once per process)")
    if per_epoch and accum > 1 and t == per_epoch * epochs // accum and t != total:
        return (f"sized for {t} steps, {total} taken: `len(loader) * epochs // grad_accum` floors "
                f"({per_epoch} x {epochs} // {accum}); a short last group per epoch still steps",
                "size it as math.ceil(len(loader) / grad_accum) * epochs")
    if per_epoch and accum > 1 and t == per_epoch * epochs:
        return (f"sized for {t} micro-batches, {total} optimizer steps taken: the schedule counts micro-batches, but it "
                "advances once per optimizer step (under accelerator.accumulate() the prepared scheduler too), so the "
                "rate never reaches 0", "size it as math.ceil(len(loader) / grad_accum) * epochs")
    if t > total:
        return (f"the schedule lags: sized for {t} steps, {total} taken, so it never reaches 0", fix)
    return (f"sized for {t} steps, {total} taken: the rate reaches 0 before the end", fix)


def prepared_scheduler_diagnosis(recipe, w: int, t, total: int, warmup: int, processes: int, micro: int) -> tuple[str, str]:
    """(bug, fix) for a scheduler that advances once per process per optimizer step (passed to accelerator.prepare).

    Such a scheduler is right when sized for ``processes x`` the steps each process takes, warmup
    included. What it was sized for (``w``, ``t`` in scheduler steps) is compared with that, and each
    difference is named: a warmup left unscaled, a total counted from the unsharded loader's groups
    when each process's epoch ends in a short group of its own, or a total sized from the prepared
    loader. A scheduler sized right for all processes gives no diagnosis here (its rates pass).
    """
    accum, epochs = recipe.grad_accum, recipe.epochs
    want_total, want_warmup = processes * total, processes * warmup
    per_process = micro // epochs if micro and epochs else 0  # micro-batches one process fed per epoch
    unsharded = math.ceil(N_TRAIN / recipe.batch_size)  # micro-batches per epoch of the loader before prepare
    found = []
    if w != want_warmup and w == warmup and warmup:
        found.append(f"its warmup of {warmup} step{'s' if warmup != 1 else ''} is not multiplied by the {processes} processes, so it ends after "
                     f"{warmup / processes:g} optimizer steps")
    elif w != want_warmup:
        found.append(f"its warmup is {w} scheduler steps ({w / processes:g} optimizer steps), not {warmup} optimizer steps")
    if t is not None and t != want_total:
        if t == math.ceil(unsharded / accum) * epochs and per_process and math.ceil(per_process / accum) * processes != math.ceil(unsharded / accum):
            found.append(f"it is sized for {t} scheduler steps from the unsharded loader's groups (ceil({unsharded} / {accum}) x {epochs}), "
                         f"but each process's epoch of {per_process} micro-batches closes in a short group of its own: "
                         f"{total} optimizer steps per process advance it {want_total} times")
        elif t == total:
            found.append(f"it is sized for the {total} optimizer steps of one process, but advances {processes} times per step")
        else:
            found.append(f"it is sized for {t} scheduler steps; {processes} processes x {total} optimizer steps advance it {want_total} times")
    if not found:
        found.append(f"it advances {processes} times per optimizer step and its rates follow no schedule sized for "
                     f"{want_total} scheduler steps with warmup {want_warmup}")
    return ("a scheduler passed to accelerator.prepare steps once per process (split_batches=False): " + "; ".join(found),
            f"size it for all processes: num_training_steps = {processes} x the steps each process takes (ceil(len(prepared "
            f"loader) / grad_accum) x epochs) and num_warmup_steps = warmup x num_processes; or build it after prepare from "
            "the prepared loader and do not pass it to prepare")


def constant_after_warmup(run) -> Optional[int]:
    """The warmup (in optimizer steps) after which every rate, the final one included, is the peak; None if none such.

    A loop with no lr scheduler, or a schedule-free optimizer (its warmup inside the optimizer, which
    reaches the peak one step earlier than transformers' linear warmup: step k takes (k + 1) / warmup).
    """
    steps = run.observation.steps
    if not steps:
        return None
    lrs = [s.lrs[0] for s in steps] + list(run.observation.final_lrs[:1])
    peak = max(lrs)
    if peak <= 0:
        return None
    first = next(i for i, lr in enumerate(lrs) if math.isclose(lr, peak, rel_tol=1e-6))
    if not all(math.isclose(lr, peak, rel_tol=1e-6) for lr in lrs[first:]) or first == len(steps):
        return None
    # Rising linearly up to the peak, from 0 (k / w, transformers) or one step ahead ((k + 1) / w, schedule-free).
    for lead in (0, 1):
        w = first + lead
        if all(math.isclose(lrs[k], peak * (k + lead) / w, rel_tol=1e-5, abs_tol=1e-12) for k in range(first)):
            return w if first else 0
    return None


def fractional_warmup(lrs: list, final: float, peak: float) -> Optional[tuple]:
    """``(warmup, total)`` when the rates are a linear schedule whose warmup is a fraction of a step, else None.

    ``get_linear_schedule_with_warmup(num_warmup_steps=0.06 * total)`` gives 0 at step 0 (0 / max(1, w)), then
    the decay (total - k) / (total - w) from step 1: two points of the decay give total and w.
    """
    fractions = [lr / peak for lr in lrs] + [final / peak]
    if len(fractions) < 4 or fractions[0] != 0.0 or not 0 < fractions[1] < 1 or not 0 < fractions[2] < fractions[1]:
        return None
    f1, f2 = fractions[1], fractions[2]
    total = (f1 * 2 - f2 * 1) / (f1 - f2)
    warmup = total - (total - 1) / f1
    if not 0 < warmup < 1 or abs(total - round(total)) > 1e-3:
        return None
    total = round(total)
    if all(math.isclose(f, max(0.0, (total - k) / (total - warmup)), rel_tol=1e-5, abs_tol=1e-9)
           for k, f in enumerate(fractions) if k >= 1):
        return warmup, total
    return None


def clip_recipe(battery):
    """The variant run: warmup as a ratio, clipping, and accumulation 4, so that each epoch's 6 micro-batches end
    in a short group of 2 (a schedule sized with `len(loader) * epochs // accum` takes 3 steps for 4)."""
    return battery.base.replace(warmup_steps=0, warmup_ratio=0.5, max_grad_norm=CLIP, grad_accum=4)
