"""Which rows a run fed and evaluated: epochs, groups, evaluation passes, an early stop, a dropped tail.

Read off the forward hooks' row identities (:mod:`mrpc_check.checks.observe`); read by the coverage, grouping,
evaluation, seed, gradient and label-control families and by the effective recipe.
"""

from __future__ import annotations

from typing import Optional

from mrpc_check.checks.harness import N_TRAIN
from mrpc_check.checks.observe import training_epochs


def epoch_rows(run) -> list:
    """The training-split rows (and unknown rows, as None) each epoch fed, in order."""
    return [[r for f in epoch for r in f.rows if r is None or r[0] == "train"]
            for epoch in training_epochs(run.observation, run.recipe.epochs)]


def dropped_tail(run, n_train: int = N_TRAIN) -> bool:
    """Whether the run left out the incomplete last batch of every epoch, and nothing else (``drop_last``)."""
    batch = run.recipe.batch_size
    epochs = epoch_rows(run)
    if not epochs or n_train % batch == 0:
        return False
    return all(len(rows) == len(set(rows)) == n_train - n_train % batch and None not in rows for rows in epochs)


def held_out(run) -> set:
    """Training rows the run never trained on but evaluated: a validation split carved out of the training set (early
    stopping's, model selection's), else an empty set. Only when the rows left out are exactly the ones evaluated:
    a loop that drops rows and scores its training accuracy is not holding out."""
    obs = run.observation
    fed = {r for f in obs.train_forwards() for r in f.rows if r is not None}
    evaluated = {r for f in obs.eval_forwards() for r in f.rows if r is not None and r[0] == "train"}
    never = {("train", i) for i in range(len(run.train_labels))} - fed
    return never if never and evaluated == never else set()


def whole_epochs(run) -> Optional[int]:
    """How many whole epochs the run fed: its row stream cut by the training rows (less a held-out split), each piece
    every such row once; None when the stream is not whole epochs (rows dropped, repeated, unknown)."""
    fed = run.observation.train_rows()
    distinct = set(fed)
    if not fed or distinct != {("train", i) for i in range(len(run.train_labels))} - held_out(run) or len(fed) % len(distinct):
        return None  # not every row it trains on, every epoch (an early stop, rows dropped or repeated, unknown rows)
    n = len(distinct)
    pieces = [fed[i : i + n] for i in range(0, len(fed), n)]
    return len(pieces) if all(len(set(p)) == n for p in pieces) else None


EPOCHS_FIX = "loop over range(recipe.epochs) and size the schedule from it"


def other_epochs(run) -> Optional[str]:
    """The bug when the run fed whole epochs, but not recipe.epochs of them (a hard-coded epoch count), else None."""
    k = whole_epochs(run)
    if k is None or k == run.recipe.epochs:
        return None
    return f"the loop trains {k} epochs where the recipe asks for {run.recipe.epochs}: its epoch count does not come from recipe.epochs"


EARLY_FIX = ("stop only at an epoch boundary, on a validation metric, with a patience counter reset at every improvement; "
             "or remove the early stop (the recipe trains every row every epoch)")


def early_stop(run, n_train: Optional[int] = None) -> Optional[str]:
    """A description of where the run stopped when it broke out inside an epoch and trained nothing after, else None.

    Read off what was fed: every epoch before the last one complete, the last one cut short, fewer optimizer
    steps than the recipe's, and no training forward after the cut: a patience counter, a loss threshold or a
    step budget that breaks out mid-epoch. (A loop that repeats or loses rows elsewhere is not an early stop.)
    """
    import math

    recipe = run.recipe
    n = n_train if n_train is not None else len(run.train_labels)
    steps = len(run.observation.steps)
    total = math.ceil(math.ceil(n / recipe.batch_size) / recipe.grad_accum) * recipe.epochs  # the recipe's optimizer steps
    fed = run.observation.train_rows()
    # Cut the stream of rows by the epoch's size, not by the epoch splitter (it would share a cut-short run out evenly).
    epochs = [fed[i : i + n] for i in range(0, len(fed), n)]
    if not epochs or steps >= total or len(epochs) > recipe.epochs:
        return None
    *full, last = epochs
    if any(len(rows) != n or len(set(rows)) != n or None in rows for rows in full):
        return None
    if not 0 < len(last) < n or len(set(last)) != len(last) or None in last:
        return None
    later = recipe.epochs - len(epochs)
    return (f"the loop stopped early: after optimizer step {steps} of {total}, inside epoch {len(epochs)} of {recipe.epochs} "
            f"({len(last)} of its {n} rows fed, {n - len(last)} left out" + (f", {later} later epoch(s) never run" if later else "")
            + "): an early stop (a patience counter, a loss threshold, a step budget) breaks out mid-epoch")


def observed_groups(run) -> tuple[list, list]:
    """([micro-batches of each optimizer step, as (epoch, index) pairs], [micro-batches after the last step])."""
    epochs = training_epochs(run.observation, run.recipe.epochs)
    where = {}
    for e, forwards in enumerate(epochs):
        for i, f in enumerate(forwards):
            where[id(f)] = (e, i)
    groups = [[] for _ in run.observation.steps]
    trailing = []
    for f in run.observation.train_forwards():
        k = f.steps_before
        (groups[k] if k < len(groups) else trailing).append(where[id(f)])
    return groups, trailing


def expected_groups(run) -> list:
    accum = run.recipe.grad_accum
    sizes = [len(e) for e in training_epochs(run.observation, run.recipe.epochs)]
    return [[(e, j) for j in range(i, min(i + accum, n))] for e, n in enumerate(sizes) for i in range(0, n, accum)]


def eval_passes(run) -> list:
    """Evaluation forwards grouped into passes: the forwards between two optimizer steps (a sanity check left out)."""
    passes = _all_passes(run)
    return passes[1:] if _is_sanity_check(run, passes) else passes


def scored_passes(run, held: set) -> tuple[list, int]:
    """The evaluation passes less the forwards over ``held`` (the loop's own held-out training rows: its model
    selection, not an evaluation on the train split), and how many passes held such forwards."""
    passes = eval_passes(run)
    if not held:
        return passes, 0
    selection = sum(any(set(f.rows) <= held for f in p) for p in passes)
    return [kept for kept in ([f for f in p if not set(f.rows) <= held] for p in passes) if kept], selection


def sanity_rows(run) -> int:
    """Rows of a sanity check before training (Lightning's ``num_sanity_val_steps``), 0 when there is none."""
    passes = _all_passes(run)
    return sum(len(f.rows) for f in passes[0]) if _is_sanity_check(run, passes) else 0


def _all_passes(run) -> list:
    """Evaluation forwards between two optimizer steps, split where the rows start over: after the last step a
    Lightning loop validates, then predicts (two passes over the same rows, not one that sees each row twice)."""
    groups: dict[int, list] = {}
    for f in run.observation.eval_forwards():
        groups.setdefault(f.steps_before, []).append(f)
    passes = []
    for k in sorted(groups):
        start, current, seen = None, [], set()
        for f in groups[k]:
            first = f.rows[0] if f.rows else None
            if start is None:
                start = first
            elif first is not None and first == start and start in seen:
                passes.append(current)
                current, seen = [], set()
            current.append(f)
            seen.update(f.rows)
        passes.append(current)
    return passes


def _is_sanity_check(run, passes) -> bool:
    """The first pass is a look at the first validation batches before any training forward (Lightning's sanity check,
    2 batches by default): validation rows 0..k-1 in order, fewer than a later pass holds. Nothing is predicted from it,
    so it is no evaluation pass; a full evaluation before training (a baseline) is one and stays judged."""
    if len(passes) < 2:
        return False
    forwards = run.observation.forwards
    first_train = next((i for i, f in enumerate(forwards) if f.grad_enabled), len(forwards))
    rows = [r for f in passes[0] for r in f.rows]
    last = next(i for i, f in enumerate(forwards) if f is passes[0][-1])
    return (last < first_train and rows == [("validation", i) for i in range(len(rows))]
            and len(rows) < max(sum(len(f.rows) for f in p) for p in passes[1:]))
