"""Check 8: the seed decides the run, and every epoch is a fresh shuffle of every training row.

Oracles: the sequence of training rows the model received (forward hooks) and its losses;
the battery fills the global generators with a fresh random state before every run, so a
loop that does not seed from ``recipe.seed`` cannot look deterministic by accident.

Bugs caught: seed ignored, unseeded shuffling or dropout, ``set_epoch`` not called on the
sampler (every epoch replays the first order). Rows dropped or repeated within an epoch are the
coverage check's (:mod:`~mrpc_check.checks.coverage`): a dropped tail is not the seed's fault.
"""

from __future__ import annotations

from mrpc_check.checks.facts.rows import epoch_rows
from mrpc_check.checks.harness import max_weight_difference
from mrpc_check.checks.verdict import check, crashed, fail, ok

TOL = 1e-6  # same seed: same losses to this, and bitwise-equal data order


@check("seed", oracle="training rows and losses observed across runs with the same and another seed")
def check_seed(battery):
    """Same seed: same data order, losses and weights; another seed: another order; each epoch a new shuffle."""
    base = battery.base_run()
    same = battery.run("same_seed", share=False)  # a real second run, not the base one again
    other = battery.run("other_seed", battery.base.replace(seed=battery.base.seed + 1))
    for run in (base, same, other):
        if (v := crashed("seed", run)) is not None:
            return v
    # Training rows only, epoch by epoch as fed: validation rows in training are the label control's finding.
    epochs = epoch_rows(base)
    if len(epochs) > 1 and all(e == epochs[0] for e in epochs[1:]):
        return fail("seed", f"all {len(epochs)} epochs fed the rows in the same order",
                    "epoch not set on the sampler: every epoch replays the first shuffle",
                    "call sampler.set_epoch(epoch) (or loader.set_epoch) at the start of every epoch")
    a, b = base.observation.train_losses(), same.observation.train_losses()
    if base.observation.train_rows() != same.observation.train_rows():
        return fail("seed", "two runs with the same seed fed the rows in different orders",
                    "data order not seeded from recipe.seed", "seed the sampler or generator of the training loader from the seed")
    diff = max((abs(x - y) for x, y in zip(a, b) if x is not None and y is not None), default=0.0)
    weights = max_weight_difference(base.model, same.model)
    if len(a) != len(b) or diff > TOL or weights > TOL:
        return fail("seed", f"same seed: loss difference {diff:.1e}, weight difference {weights:.1e}",
                    "the run is not a function of the seed (unseeded dropout, initialisation or sampling)",
                    "seed torch, numpy and random from recipe.seed at the start (transformers.set_seed)")
    if other.observation.train_rows() == base.observation.train_rows():
        return fail("seed", f"seeds {battery.base.seed} and {battery.base.seed + 1} fed the rows in the same order",
                    "seed ignored: the data order does not depend on recipe.seed",
                    "build the sampler/generator from recipe.seed, not a constant")
    return ok("seed", f"same seed: same order, loss difference {diff:.1e}, weight difference {weights:.1e}; "
              f"another seed: another order; {len(epochs)} epochs, each a new shuffle")
