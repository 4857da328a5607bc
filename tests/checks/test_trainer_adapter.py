"""The generic adapter for a user's Trainer (or subclass): plain Trainer, and a subclass that fixes accumulation."""

import pytest

from mrpc_check.checks.verdict import REGISTRY


@pytest.fixture(scope="module")
def user_trainers(bert):
    from transformers import Trainer

    from mrpc_check.checks.adapters import trainer_adapter
    from mrpc_check.checks.harness import Battery
    from mrpc_check.pipeline.train_trainer import example_mean_trainer

    batteries = {"plain": Battery(trainer_adapter(Trainer), bert), "subclass": Battery(trainer_adapter(example_mean_trainer(Trainer)), bert)}
    yield batteries
    for battery in batteries.values():
        battery.close()


@pytest.mark.parametrize("check_name", ["inputs", "modes", "schedule", "evaluation", "seed"])
@pytest.mark.parametrize("which", ["plain", "subclass"])
def test_user_trainer_passes_loop_checks(user_trainers, which, check_name):
    verdict = REGISTRY[check_name].run(user_trainers[which])
    assert verdict.passed, verdict.message()


def test_plain_trainer_accumulation_is_flagged_and_the_subclass_is_not(user_trainers):
    """Stock Trainer's accumulated gradient is not the big batch's on BERT classification (scale on 5.x,
    short-last-micro-batch weighting on 4.57); weighting each micro-batch by its share of the group fixes it."""
    from packaging.version import Version
    from transformers import __version__ as transformers_version

    # 4.57 mis-weights only each epoch's last group (its short last micro-batch): a warning by the
    # battery's severity rule. 5.x scales every group's gradient wrong: a failure.
    expected = "warn" if Version(transformers_version) < Version("5") else "fail"
    verdict = REGISTRY["accumulation"].run(user_trainers["plain"])
    assert verdict.status == expected, verdict.message()
    verdict = REGISTRY["accumulation"].run(user_trainers["subclass"])
    assert verdict.status == "pass", verdict.message()
