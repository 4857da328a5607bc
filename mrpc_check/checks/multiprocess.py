"""Checks 4, 5 and 7 at 2 processes (tier ``distributed``): schedule, accumulation, evaluation.

Run on the observation of every rank (:mod:`mrpc_check.checks.distributed`), once
``process_group`` has shown that the ranks formed one group: each rank's own world size
(torch.distributed, Accelerate's state) and the training rows each fed. Ranks that each ran
alone (``Accelerator()`` on a CPU without ``cpu=True``) make every 2-process verdict meaningless:
``process_group`` fails with one line, and the other 2-process checks are not judged.

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

from mrpc_check.checks.distributed import PROCESSES, RECIPE_2P, TIMEOUT_ENV, distributed_run
from mrpc_check.checks.facts.gradients import TOL, flat_gradient, relative_error
from mrpc_check.checks.facts.schedule import diagnose, expected_steps, linear_lr, warmup_of
from mrpc_check.checks.verdict import Verdict, check, error, fail, ok, skip


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
    if result.get("timed_out"):  # the machine's, not the loop's: a loaded runner can take longer than the limit
        return None, error(name, result["error"], "the 2-process run did not finish in time: not judged (a busy machine, or a "
                           "loop that hangs on 2 processes)", f"raise the limit: --process-timeout SECONDS or {TIMEOUT_ENV}="
                           "SECONDS (pytest: the same environment variable), or run the 2-process checks on an idle machine")
    if "error" in result:
        return None, fail(name, result["error"], "the loop failed on 2 processes", "run it under torchrun --nproc_per_node 2 by hand")
    for rank in result["ranks"]:
        if rank["error"]:
            return None, fail(name, f"rank {rank['rank']}: {rank['error']}", "the loop failed on 2 processes",
                              "run it under torchrun --nproc_per_node 2 by hand")
    if name != "process_group" and alone(result):
        return None, Verdict(name, "skip", f"not judged: the ranks did not form one process group ({alone(result)})",
                             caused_by="process_group")
    return result, None


def alone(result) -> str:
    """What shows that the ranks did not form one group of PROCESSES, or '' when they did.

    Accelerate's state on a rank counts fewer processes (its view wins: it is what the loop's prepare,
    gather and schedule used), or, without Accelerate, torch.distributed's world size is not PROCESSES.
    """
    groups = [rank.get("group") or {} for rank in result["ranks"]]
    accelerate = [g["accelerate"] for g in groups if g.get("accelerate")]
    short = [a for a in accelerate if a["num_processes"] != PROCESSES]
    if short:
        return f"each of the {PROCESSES} ranks ran alone (Accelerator saw {short[0]['num_processes']} process, {short[0]['distributed_type']})"
    sizes = [g.get("world_size", PROCESSES) for g in groups]
    if not accelerate and any(size != PROCESSES for size in sizes):
        where = "torch.distributed was never initialised" if not any(g.get("initialized") for g in groups) else f"world sizes {sizes}"
        return f"each of the {PROCESSES} ranks ran alone ({where})"
    return ""


def _first_epoch_rows(result) -> list:
    """The training rows each rank fed before its first evaluation or its second pass over a row."""
    out = []
    for rank in result["ranks"]:
        seen, rows = set(), []
        for f in rank["forwards"]:
            if not f["grad"]:
                if rows:
                    break
                continue
            batch = [tuple(r) for r in f["rows"] if r and r[0] == "train"]
            if rows and any(r in seen for r in batch):
                break
            rows += batch
            seen.update(batch)
        out.append(rows)
    return out


def _rows_per_rank(result) -> list:
    """The distinct training rows each rank fed in its first epoch (its first optimizer steps' forwards)."""
    out = []
    for rank in result["ranks"]:
        rows = [tuple(r) for f in rank["forwards"] if f["grad"] for r in f["rows"] if r and r[0] == "train"]
        out.append(rows)
    return out


@two_process_check("process_group", oracle="each rank's world size (torch.distributed, Accelerate's state) once the loop ran, "
                   "and the training rows each rank fed")
def check_process_group(battery, result):
    """The 2 ranks formed one process group: each sees world size 2, and they split the training rows between them."""
    why = alone(result)
    first = _first_epoch_rows(result)
    fed = ", ".join(f"rank {i} fed {len(set(r))} distinct training rows in its first epoch" for i, r in enumerate(first))
    if why:
        return fail("process_group", f"{why}; {fed}",
                    f"the ranks never formed one process group: every 2-process verdict would be about {PROCESSES} "
                    "separate single-process runs",
                    "on CPU build Accelerator(cpu=True) (without it, a machine with no GPU runs each rank alone); "
                    "with plain DDP, call torch.distributed.init_process_group('gloo') before wrapping the model")
    n_train = len(set(r for rows in _rows_per_rank(result) for r in rows))
    if n_train and all(len(set(rows)) == n_train for rows in first):
        return fail("process_group", f"one group of {PROCESSES}, but {fed} (of {n_train})",
                    "the training loader is not sharded: every rank trains on every row, each epoch counted "
                    f"{PROCESSES} times", "pass the training DataLoader to accelerator.prepare, or give it a DistributedSampler "
                    "(and call set_epoch)")
    group = result["ranks"][0].get("group", {})
    accelerate = group.get("accelerate")
    how = f"backend {group.get('backend')}" + (f", Accelerate {accelerate['distributed_type']} x {accelerate['num_processes']}"
                                                if accelerate else "")
    return ok("process_group", f"both ranks in one group of {PROCESSES} ({how}); {fed}")


@two_process_check("schedule_2proc", oracle="closed form of the schedule, per process, at 2 processes", rests_on=("process_group", "schedule"))
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
        calls = [step.get("scheduler_calls") for step in steps]
        gaps = {b - a for a, b in zip(calls, calls[1:]) if a is not None and b is not None}
        stride = gaps.pop() if len(gaps) == 1 and gaps != {0} else None  # LRScheduler.step calls between two steps
        # Diagnosed from what this rank observed: sized before prepare, a prepared scheduler stepped once
        # per process, or anything else, each with its own fix.
        for k, lr in enumerate(lrs):
            want = linear_lr(recipe, k, total)
            if not math.isclose(lr, want, rel_tol=1e-6, abs_tol=1e-12):
                return fail("schedule_2proc", f"rank {rank['rank']} step {k + 1} of {total} used lr {lr:.6g}, closed form {want:.6g}",
                            *diagnose(recipe, lrs, final, total, warmup, PROCESSES, micro, stride))
        if final != 0.0:
            return fail("schedule_2proc", f"rank {rank['rank']} ends at lr {final:.6g}, not 0",
                        *diagnose(recipe, lrs, final, total, warmup, PROCESSES, micro, stride))
    return ok("schedule_2proc", f"{PROCESSES} processes x {total} steps, every lr the closed form, final lr 0.0")


@two_process_check("accumulation_2proc", oracle="big batch gradient over both processes' rows, recomputed outside the loop",
                   rests_on=("process_group", "accumulation"))
def check_accumulation_2proc(battery, result):
    """At 2 processes: the first step's gradient equals the big batch's over the rows both processes fed."""
    rows = [tuple(r) for rank in result["ranks"] for f in rank["forwards"] if f["grad"] and f["steps_before"] == 0 for r in f["rows"]]
    names = list(result["grads"])
    if not rows or names == ["none"]:
        return fail("accumulation_2proc", "no optimizer step observed", "the optimizer never stepped", "step a torch.optim optimizer")
    reference = battery.reference_gradient(result["start"], rows, battery.train_labels)
    err = relative_error(flat_gradient(result["grads"], names), flat_gradient(reference, names))
    if err > TOL:
        return fail("accumulation_2proc", f"step 1 over {len(rows)} rows of {PROCESSES} processes: relative error {err:.2e}",
                    "the step's gradient is not the big batch's across processes (loss scaled by the process count, "
                    "or gradients not all-reduced)", "let DDP/Accelerate average gradients and scale each micro-batch by its share of the group")
    return ok("accumulation_2proc", f"step 1: {len(rows)} rows over {PROCESSES} processes, relative error {err:.1e}")


@two_process_check("evaluation_2proc", oracle="the battery's own predictions of the trained model, in dataset order",
                   rests_on=("process_group", "evaluation"))
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
