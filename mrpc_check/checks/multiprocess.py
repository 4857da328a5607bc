"""Checks 4, 5 and 7 at 2 processes (tier ``distributed``): schedule, accumulation, evaluation.

Run on the observation of every rank (:mod:`mrpc_check.checks.distributed`):

* ``schedule_2proc``: each process takes ceil(batches per process / accumulation) x epochs
  optimizer steps, each at the closed-form rate, ending at exactly 0 (a schedule sized before
  ``accelerator.prepare`` counts the unsharded loader and ends halfway);
* ``accumulation_2proc``: the gradient of the first step, after DDP's all-reduce, equals the
  big batch's over the rows *both* processes fed, recomputed outside the loop;
* ``evaluation_2proc``: the gathered predictions are one per validation example, in dataset
  order, equal to the trained model's own (``gather`` instead of ``gather_for_metrics``
  returns the padding duplicates of the uneven last batch too).
"""

from __future__ import annotations

import math

from mrpc_check.checks.distributed import PROCESSES, RECIPE_2P, distributed_run
from mrpc_check.checks.gradients import TOL, _flat, _rel
from mrpc_check.checks.schedule import diagnose, expected_steps, linear_lr, warmup_of
from mrpc_check.checks.verdict import check, fail, ok, skip


def two_process_check(name: str, oracle: str, rests_on: tuple = ()):
    """Register ``fn(battery, result) -> Verdict``, called only when the 2-process run is usable."""

    def register(fn):
        def run(battery):
            result, verdict = _two(name, battery)
            return verdict or fn(battery, result)

        run.__doc__ = fn.__doc__
        return check(name, tier="distributed", oracle=oracle, rests_on=rests_on)(run)

    return register


def _two(name: str, battery):
    """(result, None) when the 2-process run is usable, else (None, verdict)."""
    if not battery.caps.distributed:
        return None, skip(name, f"{battery.name} does not declare distributed = True")
    if not battery.spec:
        return None, skip(name, "the adapter was not loaded by spec (package.module:adapter), so other processes cannot import it")
    result = distributed_run(battery)
    if "error" in result:
        return None, fail(name, result["error"], "the loop failed on 2 processes", "run it under torchrun --nproc_per_node 2 by hand")
    for rank in result["ranks"]:
        if rank["error"]:
            return None, fail(name, f"rank {rank['rank']}: {rank['error']}", "the loop failed on 2 processes",
                              "run it under torchrun --nproc_per_node 2 by hand")
    return result, None


@two_process_check("schedule_2proc", oracle="closed form of the schedule, per process, at 2 processes", rests_on=("schedule",))
def check_schedule_2proc(battery, result):
    """At 2 processes: ceil(batches per process / accumulation) x epochs steps per process, closed-form lrs, final lr 0."""
    recipe = battery.caps.neutral(RECIPE_2P)
    total = expected_steps(recipe, processes=PROCESSES)
    warmup = warmup_of(recipe, total)
    for rank in result["ranks"]:
        steps = rank["steps"]
        if len(steps) != total:
            return fail("schedule_2proc", f"rank {rank['rank']} took {len(steps)} optimizer steps, expected {total}",
                        "optimizer steps miscounted across processes", "step once per accumulation group of the prepared loader")
        lrs = [step["lrs"][0] for step in steps]
        final = rank["final_lrs"][0] if rank["final_lrs"] else float("nan")
        micro = sum(1 for f in rank["forwards"] if f["grad"])
        # Diagnosed from what this rank observed: sized before prepare, a prepared scheduler stepped once
        # per process, or anything else, each with its own fix.
        for k, lr in enumerate(lrs):
            want = linear_lr(recipe, k, total)
            if not math.isclose(lr, want, rel_tol=1e-6, abs_tol=1e-12):
                return fail("schedule_2proc", f"rank {rank['rank']} step {k + 1} of {total} used lr {lr:.6g}, closed form {want:.6g}",
                            *diagnose(recipe, lrs, final, total, warmup, PROCESSES, micro))
        if final != 0.0:
            return fail("schedule_2proc", f"rank {rank['rank']} ends at lr {final:.6g}, not 0", *diagnose(recipe, lrs, final, total, warmup, PROCESSES, micro))
    return ok("schedule_2proc", f"{PROCESSES} processes x {total} steps, every lr the closed form, final lr 0.0")


@two_process_check("accumulation_2proc", oracle="big batch gradient over both processes' rows, recomputed outside the loop",
                   rests_on=("accumulation",))
def check_accumulation_2proc(battery, result):
    """At 2 processes: the first step's gradient equals the big batch's over the rows both processes fed."""
    rows = [tuple(r) for rank in result["ranks"] for f in rank["forwards"] if f["grad"] and f["steps_before"] == 0 for r in f["rows"]]
    names = list(result["grads"])
    if not rows or names == ["none"]:
        return fail("accumulation_2proc", "no optimizer step observed", "the optimizer never stepped", "step a torch.optim optimizer")
    reference = battery.reference_gradient(result["start"], rows, battery.train_labels)
    err = _rel(_flat(result["grads"], names), _flat(reference, names))
    if err > TOL:
        return fail("accumulation_2proc", f"step 1 over {len(rows)} rows of {PROCESSES} processes: relative error {err:.2e}",
                    "the step's gradient is not the big batch's across processes (loss scaled by the process count, "
                    "or gradients not all-reduced)", "let DDP/Accelerate average gradients and scale each micro-batch by its share of the group")
    return ok("accumulation_2proc", f"step 1: {len(rows)} rows over {PROCESSES} processes, relative error {err:.1e}")


@two_process_check("evaluation_2proc", oracle="the battery's own predictions of the trained model, in dataset order",
                   rests_on=("evaluation",))
def check_evaluation_2proc(battery, result):
    """At 2 processes with an uneven last batch: one gathered prediction per validation example, in order, the model's own."""
    import torch

    n_eval = len(battery.eval_labels)
    predictions = result["ranks"][0]["predictions"]
    if len(predictions) != n_eval:
        return fail("evaluation_2proc", f"{len(predictions)} gathered predictions for {n_eval} validation examples",
                    "gather instead of gather_for_metrics: the uneven last batch's padding duplicates are scored",
                    "gather predictions with accelerator.gather_for_metrics")
    model = battery.arch.make_model(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(result["weights"][name])
    reference = battery.reference_predictions(model)
    mismatches = sum(a != b for a, b in zip(predictions, reference))
    if mismatches:
        return fail("evaluation_2proc", f"{mismatches} of {n_eval} gathered predictions differ from the trained model's own",
                    "predictions gathered out of dataset order", "evaluate with an unshuffled loader and gather_for_metrics")
    return ok("evaluation_2proc", f"{n_eval} gathered predictions over {PROCESSES} processes, in order, equal to the trained model's")
