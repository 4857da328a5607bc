"""The label control's chance test, pinned by closed forms: its limit is z = 3, not looser, not tighter.

The quick tier's twin (CachesEvaluationLabels) reaches the test at z = 4.9; these cases sit just either
side of the limit, so loosening it, or testing the wrong side, turns them red.
"""

import math

import pytest

from mrpc_check.checks.labels import chance_z, control_verdict, permuted_labels


def _agreeing(n: int, agree: int):
    """Balanced truth and balanced predictions that agree on exactly ``agree`` of ``n`` rows (n, agree even)."""
    truth = [1] * (n // 2) + [0] * (n // 2)
    flips = (n - agree) // 2  # swap this many 1s and 0s: the rates stay at one half
    predictions = [0] * flips + [1] * (n // 2 - flips) + [1] * flips + [0] * (n // 2 - flips)
    return predictions, truth


def test_z_is_the_binomial_closed_form():
    predictions, truth = _agreeing(30, 24)
    accuracy, expected, z = chance_z(predictions, truth)
    # Both rates one half: independence agrees half the time, with standard deviation sqrt(1/4 / n).
    assert accuracy == pytest.approx(0.8) and expected == pytest.approx(0.5)
    assert z == pytest.approx((0.8 - 0.5) / math.sqrt(0.25 / 30))


@pytest.mark.parametrize("agree, status", [(24, "fail"), (22, "pass"), (14, "pass")])
def test_the_limit_sits_at_three_sigma(agree, status):
    """24 of 30 is z = 3.29 (a leak), 22 of 30 is z = 2.56 (chance allows it); below chance is no leak."""
    predictions, truth = _agreeing(30, agree)
    verdict = control_verdict(predictions, truth, fit=1.0, trained="test")
    assert verdict.status == status, verdict.message()
    if status == "fail":
        assert "validation labels reach the model" in verdict.bug


def test_a_control_that_learned_nothing_is_not_a_pass():
    predictions, truth = _agreeing(30, 16)
    verdict = control_verdict(predictions, truth, fit=0.5, trained="test")
    assert verdict.status == "fail" and "nothing is learned" in verdict.bug


def test_a_prediction_count_off_fails():
    verdict = control_verdict([1] * 29, [1] * 15 + [0] * 15, fit=1.0, trained="test")
    assert verdict.status == "fail" and "29 predictions for 30" in verdict.figure


def test_permuted_labels_keep_the_rate_and_lose_the_signal():
    labels = [1] * 15 + [0] * 7
    permuted = permuted_labels(labels, seed=3)
    assert sorted(permuted) == sorted(labels)
    p = 15 / 22
    agree = sum(a == b for a, b in zip(permuted, labels)) / 22
    assert abs(agree - (p * p + (1 - p) ** 2)) <= 1 / 22 + 1e-9  # within one row of independence
