"""The 2-process schedule diagnoses, each on rates built with exactly one difference (or two) from the right sizing.

A scheduler passed to ``accelerator.prepare`` advances once per process per optimizer step, so at 2
processes it is right when sized for 2 x the steps each process takes, warmup included. The rates
below are those of such a scheduler sized some other way; each diagnosis must name what differs,
and never tell the user to do what the loop already does. The scheduler steps between two optimizer
steps are observed (``LRScheduler.step`` calls counted): an unscaled warmup of 2 under a prepared
scheduler and a warmup of 1 stepped once give the same rates, and only that count tells them apart.
"""

import pytest

from mrpc_check.checks.distributed import PROCESSES, RECIPE_2P
from mrpc_check.checks.facts.schedule import _linear, diagnose, expected_steps, warmup_of

RECIPE = RECIPE_2P.replace(warmup_steps=2)
TOTAL = expected_steps(RECIPE, processes=PROCESSES)  # 4: 3 micro-batches per process and epoch -> 2 steps
WARMUP = warmup_of(RECIPE, TOTAL)
MICRO = 6  # micro-batches one process feeds over the 2 epochs


def prepared(warmup: int, total: int, stride: int = PROCESSES):
    """Rates at each optimizer step, and after the last, of a scheduler sized (warmup, total) stepping ``stride`` per step."""
    rates = [RECIPE.lr * _linear(warmup, total, stride * k) for k in range(TOTAL + 1)]
    return rates[:-1], rates[-1]


def said(warmup, total, stride=PROCESSES):
    lrs, final = prepared(warmup, total, stride)
    return diagnose(RECIPE, lrs, final, TOTAL, WARMUP, PROCESSES, MICRO, stride)  # the LRScheduler.step calls counted


def test_the_right_sizing_gives_the_closed_form():
    lrs, final = prepared(PROCESSES * WARMUP, PROCESSES * TOTAL)
    assert lrs == pytest.approx([RECIPE.lr * _linear(WARMUP, TOTAL, k) for k in range(TOTAL)]) and final == 0


def test_an_unscaled_warmup_alone_is_named_alone():
    bug, fix = said(WARMUP, PROCESSES * TOTAL)
    assert "warmup of 2 steps is not multiplied by the 2 processes" in bug
    assert "sized for" not in bug and "before accelerator.prepare" not in bug
    assert "num_warmup_steps = warmup x num_processes" in fix


def test_a_total_from_the_unsharded_groups_alone_is_named_alone():
    bug, _ = said(PROCESSES * WARMUP, 6)  # ceil(6 unsharded micro-batches / 2) x 2 epochs
    assert "sized for 6 scheduler steps from the unsharded loader's groups" in bug and "short group of its own" in bug
    assert "warmup" not in bug


def test_both_differences_are_named():
    bug, _ = said(WARMUP, 6)
    assert "not multiplied by the 2 processes" in bug and "unsharded loader's groups" in bug


def test_a_scheduler_sized_from_the_prepared_loader_and_prepared_too_names_both_differences():
    bug, _ = said(WARMUP, TOTAL)  # the broken twin PreparedSchedulerSizedAfterPrepare: warmup and total of one process
    assert "sized for the 4 optimizer steps of one process, but advances 2 times per step" in bug
    assert "not multiplied by the 2 processes" in bug


def test_a_schedule_not_passed_to_prepare_but_sized_before_it_keeps_its_diagnosis():
    bug, fix = said(WARMUP, 6, stride=1)
    assert "sized before accelerator.prepare" in bug and "build the scheduler after prepare" in fix
