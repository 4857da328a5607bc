"""Check: every training row exactly once per epoch (the dropped tail, repeats and extra data).

Oracle: the rows each training forward held (forward hooks, rows recognised by their token ids),
split into the epochs the loop fed (:func:`~mrpc_check.checks.observe.training_epochs`).

Bugs caught: rows repeated within an epoch, extra (unknown) rows, rows never fed; graded: exactly
the incomplete last batch of every epoch left out (fewer rows than a batch) is
``DataLoader(drop_last=True)``, a warning whose size is given at MRPC's recipe; any other row left
out, a full batch or a single row, is a failure; a run that breaks out inside an epoch and trains nothing after
(an early stop) is named as such, with the step it stopped at and the rows it left out. Validation rows among the training rows are the
label control's finding, not this one's.
"""

from __future__ import annotations

from collections import Counter

from mrpc_check.checks.facts.rows import (EARLY_FIX, EPOCHS_FIX, dropped_tail, early_stop, epoch_rows, held_out,  # noqa: F401
                                          other_epochs)
from mrpc_check.checks.harness import MRPC_BATCH, MRPC_TRAIN, N_TRAIN
from mrpc_check.checks.verdict import Verdict, check, crashed, explained_by, fail, ok, several_models_explain, warn


@check("coverage", oracle="forward hooks: the training rows of every epoch, as fed")
def check_coverage(battery):
    """Each epoch feeds every training row exactly once; a dropped incomplete last batch (drop_last) warns."""
    run = battery.base_run()
    if (v := crashed("coverage", run)) is not None:
        return v
    epochs = epoch_rows(run)
    if not epochs:
        return fail("coverage", "no training row was fed", "the loop never trained", "iterate the training loader")
    if (v := several_models_explain(battery, run, "coverage", "each model is fed its own rows")) is not None:
        return v
    if (v := _held_out_verdict(battery, run, epochs)) is not None:
        return v
    if (bug := other_epochs(run)) is not None:
        return fail("coverage", f"whole epochs fed, each every trained row once ({len(run.observation.train_rows())} rows in all)",
                    bug, EPOCHS_FIX)
    batch = run.recipe.batch_size
    for i, rows in enumerate(epochs):
        counts = Counter(rows)
        unknown = counts.pop(None, 0)
        repeated = sum(c - 1 for c in counts.values())
        missing = N_TRAIN - len(counts)
        figure = (f"epoch {i + 1} of {len(epochs)} fed {len(rows)} rows, {len(counts)} distinct, of {N_TRAIN} training rows"
                  + (f", {unknown} unknown" if unknown else ""))
        if unknown:
            return fail("coverage", figure, "extra data: rows that are in no split were trained on",
                        "train on train_dataset as given (no augmentation or concatenation in the loop)")
        if repeated:
            return fail("coverage", f"{figure}: {repeated} fed twice or more", "training rows repeated within an epoch",
                        "iterate the training loader once per epoch, with one sampler (no replacement, no second pass)")
        if missing and (stopped := early_stop(run)) is not None:
            return fail("coverage", f"{figure}: {missing} never fed", stopped, EARLY_FIX)
        if missing and not dropped_tail(run):
            # A loop that counts its steps wrong (misaligned groups) and stops at max_train_steps cuts its
            # last epoch short: that is the grouping's bug, seen here. Any other row left out is this check's:
            # only the incomplete last batch of every epoch, and nothing else, is drop_last (a warning below).
            return explained_by(battery, fail("coverage", f"{figure}: {missing} never fed (a batch is {batch})",
                                              "training rows dropped within an epoch",
                                              "iterate the whole training loader every epoch (no early break, no max-steps "
                                              "cut inside an epoch)"), "grouping")
    if dropped_tail(run):
        left = N_TRAIN % batch
        changing = len({frozenset(set(range(N_TRAIN)) - {r[1] for r in rows}) for rows in epochs}) > 1
        mrpc_left = MRPC_TRAIN % MRPC_BATCH
        return warn("coverage",
                    f"every epoch fed {N_TRAIN - left} of {N_TRAIN} rows: the incomplete last batch ({left} rows) left out"
                    f"{', other rows each epoch (shuffled)' if changing else ', the same rows every epoch'}. At MRPC's "
                    f"{MRPC_TRAIN} training pairs, batch {MRPC_BATCH}: {mrpc_left} rows never trained on per epoch "
                    f"({mrpc_left / MRPC_TRAIN:.2%}), {'changing each epoch when shuffled' if changing else 'the same ones'}",
                    "DataLoader(drop_last=True): the incomplete last batch of every epoch is skipped",
                    "drop drop_last=True from the training DataLoader (a short last batch is harmless with loss weighting), "
                    "or accept the loss of fewer than one batch of rows per epoch")
    return ok("coverage", f"{len(epochs)} epochs, each fed all {N_TRAIN} training rows exactly once")


def _held_out_verdict(battery, run, epochs):
    """A validation split carved out of the training rows (never trained on, evaluated during training): the loop's
    design, named and declarable (``extras = {'held_out': share}``); None when the run does not hold rows out."""
    held = held_out(run)
    if not held:
        return None
    kept = set(range(N_TRAIN)) - {r[1] for r in held}
    if not all(len(rows) == len(set(rows)) and {r[1] for r in rows if r is not None} == kept and None not in rows for rows in epochs):
        return None  # other rows missing or repeated too: judged as usual below
    figure = (f"{len(held)} of {N_TRAIN} training rows ({len(held) / N_TRAIN:.0%}) never trained on in any of {len(epochs)} "
              "epoch(s), and evaluated in eval mode during training")
    declared = battery.caps.extra("held_out")
    if declared is not None and abs(declared * N_TRAIN - len(held)) <= 1:
        return Verdict("coverage", "pass", f"{figure}; a held-out share of {declared:g}, as declared in adapter.extras", extra=True)
    if declared is not None:
        return fail("coverage", figure, f"declared a held-out share of {declared:g} (adapter.extras) but the loop holds out "
                    f"{len(held) / N_TRAIN:.2f}", "hold out the declared share, or correct adapter.extras['held_out']")
    return Verdict("coverage", "warn", figure,
                   "the loop holds part of the training rows out as its own validation split (early stopping's or model "
                   "selection's): the model trains on fewer rows than the recipe's",
                   "train on every row of train_dataset, or declare the choice: adapter.extras = "
                   f"{{'held_out': {round(len(held) / N_TRAIN, 2):g}}}", extra=True)
