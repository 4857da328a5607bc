"""mrpc_check.checks: a battery of named checks that proves a fine-tuning loop right or names its bug.

A loop is reached through an adapter (:mod:`mrpc_check.checks.contract`), which declares the recipe
features it implements (``adapter.supports``; all by default); the battery trains a
tiny model through it while hooks watch the forwards and optimizer steps
(:mod:`mrpc_check.checks.observe`), and each check compares what it saw with its own oracle:

=================  ====================================================================
inputs, modes      forward hooks (:mod:`.inputs`)
padding            metamorphic: padded to 64, same losses and weights (:mod:`.padding`)
coverage           every training row once per epoch; drop_last graded (:mod:`.coverage`)
grouping           the micro-batches each optimizer step closed (:mod:`.grouping`)
schedule           closed form of the schedule, mismatches diagnosed (:mod:`.schedule`)
clipping           norms at each step; a fixed clip from raw vs applied gradients (:mod:`.clipping`)
optimizer          param groups against the model's parameters and the recipe (:mod:`.optimizer`)
loss, frozen,      extras the recipe never asked for: label smoothing or class weights, tensors
dropout,           frozen by the loop, dropout set for training, weights moved outside the
outside_updates    optimizer (:mod:`.extras`; a fixed clip is ``clipping``'s, a fixed warmup ``schedule``'s)
accumulation,      the big batch's gradient recomputed outside the loop
gradients_cleared  (:mod:`.gradients`)
evaluation         rows seen, the battery's own predictions, scikit-learn (:mod:`.evaluation`)
seed               orders and losses across seeds and epochs (:mod:`.seed`)
label_control      permuted labels give chance agreement (:mod:`.labels`)
resume             killed and resumed equals uninterrupted (:mod:`.resume`)
mixed_precision    fp16 skip and clip, gpu (:mod:`.precision`)
=================  ====================================================================

After the verdicts comes the effective recipe (:mod:`.effective`): what the loop did on the base run,
inferred from the observation, beside the recipe, every extra marked.

Users run it as ``mrpc-check verify --loop package.module:adapter`` or
``pytest --pyargs mrpc_check.checks --mrpc-loop package.module:adapter``. :mod:`.twins`
holds the correct loops and one broken twin per classic bug.
"""

from mrpc_check.checks.adapters import lightning_adapter, trainer_adapter
from mrpc_check.checks.battery import check_names, format_table, run_battery, to_json
from mrpc_check.checks.contract import FEATURES, AdapterError, Capabilities, LoopOutput, Recipe, capabilities, load_adapter
from mrpc_check.checks.harness import Arch, Battery
from mrpc_check.checks.verdict import REGISTRY, Verdict

__all__ = [
    "AdapterError",
    "Arch",
    "Battery",
    "Capabilities",
    "FEATURES",
    "LoopOutput",
    "REGISTRY",
    "Recipe",
    "Verdict",
    "capabilities",
    "check_names",
    "format_table",
    "lightning_adapter",
    "load_adapter",
    "run_battery",
    "to_json",
    "trainer_adapter",
]
