"""The evaluation check's oracle: accuracy and F1 from their definitions, equal to scikit-learn's."""

import random

import pytest
from sklearn.metrics import accuracy_score, f1_score

from mrpc_check.checks.evaluation import closed_form_metrics


@pytest.mark.parametrize("seed", range(30))
def test_equals_scikit_learn_on_random_labels(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    truth = [rng.randint(0, 1) for _ in range(n)]
    predictions = [rng.choice([0, 1, 1]) if seed % 3 else 0 for _ in range(n)]  # every third: no positive predicted
    got = closed_form_metrics(predictions, truth)
    assert got["accuracy"] == pytest.approx(accuracy_score(truth, predictions))
    assert got["f1"] == pytest.approx(f1_score(truth, predictions, zero_division=0.0))


def test_boundaries():
    assert closed_form_metrics([1, 1, 0], [1, 1, 0]) == {"accuracy": 1.0, "f1": 1.0}
    assert closed_form_metrics([0, 0], [1, 1]) == {"accuracy": 0.0, "f1": 0.0}  # no true positive: F1 0, not a division by 0
    assert closed_form_metrics([1, 0, 1, 0], [1, 1, 0, 0]) == {"accuracy": 0.5, "f1": 0.5}
