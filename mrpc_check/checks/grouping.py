"""Check: each optimizer step closes one group of ``grad_accum`` consecutive micro-batches of one epoch.

Oracle: which micro-batches ran before each optimizer step (forward hooks: the steps taken before
every training forward; optimizer pre-hook), against the groups the recipe defines: per epoch,
micro-batches 1..a, a+1..2a, ..., and a short last group when the epoch's count is not a multiple
of ``a``. Nothing is recomputed: the groups are read off the order of events.

Bugs caught: micro-batches of other than ``recipe.batch_size`` rows (a loader built from the whole batch
before it is cut for accumulation: grad_accum x the rows in each), ``grad_accum`` ignored (one step per micro-batch), the classic off-by-one
``if step % accum == 0`` on a 0-based step (the first step of every epoch takes one micro-batch,
and without ``drop_last`` the epoch's last micro-batch leaks into the next epoch's first step),
groups that span epochs, micro-batches whose gradient is never applied.
"""

from __future__ import annotations

from mrpc_check.checks.facts.rows import expected_groups, observed_groups  # noqa: F401  (importable here too)
from mrpc_check.checks.verdict import Verdict, check, crashed, fail, ok, skip

FIX = ("close a group when (step + 1) % grad_accum == 0 or step + 1 == len(loader), step counted from 0 within the "
       "epoch (or use accelerator.accumulate()), and zero the gradients after each optimizer step")


def batch_size_problem(run) -> tuple | None:
    """(figure, bug, fix) when the micro-batches are not recipe.batch_size rows (the largest of them), else None.

    A loader built from the whole batch before it is cut for accumulation feeds grad_accum x the rows in every
    micro-batch: the step count, the groups and the gradients then all differ, and this is the one cause.
    """
    recipe = run.recipe
    sizes = [f.shape[0] for f in run.observation.train_forwards() if f.shape]
    n_train = len(run.train_labels)
    want = min(recipe.batch_size, n_train)
    if not sizes or max(sizes) == want:
        return None
    largest, accum = max(sizes), recipe.grad_accum
    figure = f"micro-batches of up to {largest} rows, recipe.batch_size {recipe.batch_size}"
    fix = ("build the training loader with batch_size=recipe.batch_size (one micro-batch) and accumulate grad_accum of "
           "them per optimizer step")
    if accum > 1 and largest == min(recipe.batch_size * accum, n_train):
        return (figure, f"every micro-batch holds the whole batch ({largest} rows = batch_size {recipe.batch_size} x grad_accum "
                f"{accum}): the loader was built before the batch was cut for accumulation, so each optimizer step "
                f"takes {accum}x the recipe's rows and there are {accum}x fewer steps", fix)
    if accum > 1 and largest * accum == recipe.batch_size:
        return (figure, f"the micro-batch is batch_size / grad_accum ({largest} rows): recipe.batch_size is already the "
                "micro-batch", fix)
    return figure, f"the loop feeds micro-batches of {largest} rows, not recipe.batch_size {recipe.batch_size}", fix


def grouping_verdict(name: str, run, declared: bool = True) -> Verdict:
    accum = run.recipe.grad_accum
    if (problem := batch_size_problem(run)) is not None:
        return fail(name, *problem)
    groups, trailing = observed_groups(run)
    expected = expected_groups(run)
    micro = sum(len(g) for g in groups) + len(trailing)
    if groups == expected:
        if not declared:
            return skip(name, f"declared: the loop does not accumulate (supports has no 'grad_accum'); run at accumulation 1, "
                        f"each of the {len(groups)} optimizer steps took one micro-batch")
        return ok(name, f"{len(groups)} optimizer steps, each closing a group of up to {accum} consecutive micro-batches "
                  "of one epoch (a short last group per epoch)")
    sizes = [len(g) for g in groups]
    if accum > 1 and groups and all(s == 1 for s in sizes) and not trailing:
        return fail(name, f"{len(groups)} optimizer steps for {micro} micro-batches at accumulation {accum}",
                    f"ignores recipe.grad_accum ({len(groups)} optimizer steps for {micro} micro-batches at accumulation {accum}): "
                    "if the loop does not accumulate by design, declare it (supports without 'grad_accum'); "
                    "otherwise it steps once per micro-batch",
                    f"either set adapter.supports to the features the loop has, leaving out 'grad_accum', or step the "
                    f"optimizer once per {accum} micro-batches")
    # Per epoch, the sizes of the groups that start in it: what the user can compare with the loader.
    per_epoch = {}
    for g in groups:
        if g:
            per_epoch.setdefault(g[0][0], []).append(len(g))
    crossing = [k + 1 for k, g in enumerate(groups) if len({e for e, _ in g}) > 1]
    first_short = [k + 1 for k, g in enumerate(groups) if g and g[0][1] == 0 and len(g) == 1 and accum > 1]
    layout = "; ".join(f"epoch {e + 1}: {sizes}" for e, sizes in sorted(per_epoch.items()))
    want = "; ".join(f"epoch {e + 1}: {[len(g) for g in expected if g[0][0] == e]}" for e in sorted({g[0][0] for g in expected}))
    figure = f"micro-batches per optimizer step {layout} (expected {want})"
    if trailing:
        figure += f"; {len(trailing)} micro-batch(es) after the last step never applied"
    if first_short:
        leak = (f"; step {crossing[0]} held the previous epoch's last micro-batch and this epoch's first"
                if crossing else "")
        return fail(name, figure,
                    f"groups closed at the wrong boundary: the first optimizer step of every epoch (steps "
                    f"{', '.join(map(str, first_short[:4]))}) took one micro-batch{leak}: `if step % grad_accum == 0` "
                    "on a 0-based step is true at step 0",
                    FIX)
    if crossing:
        return fail(name, figure, f"a group spans two epochs (step {crossing[0]}): the epoch's last micro-batches are not "
                    "stepped before the next epoch starts", FIX)
    if trailing:
        return fail(name, figure, "the last micro-batches' gradients are never applied (no optimizer step after them)", FIX)
    return fail(name, figure, "optimizer steps close groups at the wrong boundaries", FIX)


@check("grouping", oracle="forward hooks and optimizer pre-hook: the micro-batches each optimizer step closed, "
       "against the recipe's groups")
def check_grouping(battery):
    """Each optimizer step closes grad_accum consecutive micro-batches of one epoch (a short last group per epoch)."""
    run = battery.base_run()
    if (v := crashed("grouping", run)) is not None:
        return v
    if not run.observation.steps:
        return fail("grouping", "no optimizer step observed", "the optimizer never stepped",
                    "call optimizer.step() on a torch.optim optimizer")
    verdict = grouping_verdict("grouping", run, battery.declares("grad_accum"))
    from mrpc_check.checks.facts.rows import other_epochs

    if other_epochs(run):  # another number of whole epochs than the recipe's: the groups are read against the wrong epochs
        from mrpc_check.checks.verdict import explained_by

        return explained_by(battery, verdict, "coverage")
    return verdict
