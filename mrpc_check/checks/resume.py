"""Check 10: a run killed after optimizer step k and resumed ends bitwise equal to an uninterrupted one.

The recipe has accumulation 2 and length-grouped batches (for loops that group). The kill is
an exception raised from the optimizer hook as step k + 1 begins, after the loop saved step
k's checkpoint. Oracles: the rows the resumed run feeds (forward hooks) must be exactly the
uninterrupted run's rows after step k; its final weights must equal the uninterrupted run's.

Bugs caught: resume skipping the wrong number of batches (optimizer steps counted as
batches), replaying epoch 0's order or another shuffle (named as its own root cause even where grouping
fails: no grouping bug does that), RNG or optimizer state not restored.
"""

from __future__ import annotations

from collections import Counter

from mrpc_check.checks.harness import max_weight_difference
from mrpc_check.checks.verdict import Verdict, check, crashed, fail, ok, skip

KILL_AFTER = 2  # mid-epoch: 4 of the 6 micro-batches of epoch 1 are done


@check("resume", oracle="the uninterrupted run's rows and final weights", rests_on=("grouping", "gradients_cleared"))
def check_resume(battery):
    """Killed after step k (accumulation 2, length-grouped), resumed: same rows after k, bitwise-equal weights."""
    if not battery.resumable:
        return skip("resume", f"{battery.name} does not declare resumable = True")
    recipe = battery.base.replace(group_by_length=True)
    full = battery.run("resume_full", recipe.replace(checkpoint_dir=battery.workdir("full")))
    if (v := crashed("resume", full)) is not None:
        return v
    folder = battery.workdir("killed")
    killed = battery.run("resume_killed", recipe.replace(checkpoint_dir=folder), interrupt_after=KILL_AFTER)
    if killed.error is None:
        return fail("resume", "the run was not interrupted", "fewer optimizer steps than expected", "see the schedule check")
    resumed = battery.run("resume_rest", recipe.replace(checkpoint_dir=folder, resume=True))
    if (v := crashed("resume", resumed)) is not None:
        return v
    expected = [r for f in full.observation.train_forwards() if f.steps_before >= KILL_AFTER for r in f.rows]
    got = resumed.observation.train_rows()
    if got != expected:
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        n = len(full.train_labels)  # rows per epoch: the last epoch is whole in both runs
        last_epoch_reshuffled = (min(len(got), len(expected)) >= n and got[-n:] != expected[-n:]
                                 and Counter(got[-n:]) == Counter(expected[-n:]))
        if len(got) == len(expected) or last_epoch_reshuffled:
            # The right number of rows from another order, or a whole later epoch in another order: the resumed run's
            # shuffle is not the one the uninterrupted run drew. No skip count does that, so it stays a root cause
            # whatever the grouping check finds (a skip count a grouping bug moved is grouping's consequence).
            where = f"first difference at row {first + 1}" if len(got) == len(expected) else "its last epoch in another order"
            return Verdict("resume", "fail", f"the resumed run fed {len(got)} rows after step {KILL_AFTER} (the uninterrupted "
                           f"run {len(expected)}) from another shuffle: {where}",
                           "resume replays another shuffle: the generator state restored is not the one the uninterrupted "
                           "run's shuffle drew from (saved before an evaluation whose loader draws from the global "
                           "generator, or not saved at all)",
                           "save the state the next shuffle draws from with the data position (after any evaluation), or give "
                           "the training loader its own generator seeded by (seed, epoch)", own_root=True)
        return fail("resume", f"resumed run fed {len(got)} rows, the uninterrupted run {len(expected)} after step {KILL_AFTER}; "
                    f"first difference at row {first + 1}",
                    "resume skipping the wrong batches (optimizer steps counted as micro-batches?)",
                    "store the number of micro-batches done in the epoch and skip exactly those, in the same order")
    differ = [n for (n, p), q in zip(full.model.named_parameters(), resumed.model.parameters()) if not p.detach().equal(q.detach())]
    if differ:
        worst = max_weight_difference(full.model, resumed.model)
        figure = f"{len(differ)} parameter tensors differ after resuming (largest difference {worst:.1e})"
        from mrpc_check.checks.verdict import extra_explains

        # Under dropout a resumed run is bit-equal only if every draw of the RNG replays (a loader's iterator draws too).
        if (v := extra_explains(battery, "resume", "dropout", figure)) is not None:
            return v
        return fail("resume", figure,
                    "state not restored on resume (optimizer, scheduler or RNG)",
                    "save and restore model, optimizer, scheduler and RNG states with the data position")
    return ok("resume", f"killed after step {KILL_AFTER}, resumed: the same {len(got)} rows as the uninterrupted run, bitwise-equal weights")
