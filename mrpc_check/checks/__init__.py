"""mrpc_check.checks: a battery of named checks that proves a fine-tuning loop right or names its bug.

A loop is reached through an adapter (:mod:`mrpc_check.checks.contract`); the battery trains a
tiny model through it while hooks watch the forwards and optimizer steps
(:mod:`mrpc_check.checks.observe`), and each check compares what it saw with its own oracle:

=================  ====================================================================
inputs, modes      forward hooks (:mod:`.inputs`)
padding            metamorphic: padded to 64, same losses and weights (:mod:`.padding`)
schedule, clipping closed form of the schedule; norms at each step (:mod:`.schedule`)
accumulation,      the big batch's gradient recomputed outside the loop
gradients_cleared  (:mod:`.gradients`)
evaluation         rows seen, the battery's own predictions, scikit-learn (:mod:`.evaluation`)
seed               orders and losses across seeds and epochs (:mod:`.seed`)
label_control      permuted labels give chance agreement (:mod:`.labels`)
resume             killed and resumed equals uninterrupted (:mod:`.resume`)
mixed_precision    fp16 skip and clip, gpu (:mod:`.precision`)
=================  ====================================================================

Users run it as ``mrpc-check verify --loop package.module:adapter`` or
``pytest --pyargs mrpc_check.checks --mrpc-loop package.module:adapter``. :mod:`.broken`
holds a correct plain loop and one broken twin per classic bug.
"""

from mrpc_check.checks.adapters import trainer_adapter
from mrpc_check.checks.battery import check_names, format_table, run_battery, to_json
from mrpc_check.checks.contract import AdapterError, LoopOutput, Recipe, load_adapter
from mrpc_check.checks.harness import Arch, Battery
from mrpc_check.checks.verdict import REGISTRY, Verdict

__all__ = [
    "AdapterError",
    "Arch",
    "Battery",
    "LoopOutput",
    "REGISTRY",
    "Recipe",
    "Verdict",
    "check_names",
    "format_table",
    "load_adapter",
    "run_battery",
    "to_json",
    "trainer_adapter",
]
