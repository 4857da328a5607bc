"""The statistics of every report: majority baseline, degeneracy, confusion, MCC and bootstrap intervals
against scikit-learn and closed forms."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

label_pairs = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.lists(st.integers(0, 1), min_size=n, max_size=n), st.lists(st.integers(0, 1), min_size=n, max_size=n))
)


class TestMajorityBaseline:
    def test_closed_form_for_a_positive_majority(self):
        from mrpc_check.pipeline.stats import majority_baseline

        base = majority_baseline([1] * 279 + [0] * 129)  # MRPC validation's 408 pairs
        assert base["label"] == 1 and base["accuracy"] == pytest.approx(279 / 408)
        assert base["f1"] == pytest.approx(2 * (279 / 408) / (279 / 408 + 1))  # 0.8122
        assert round(base["f1"], 4) == 0.8122 and round(base["accuracy"], 4) == 0.6838

    def test_matches_scikit_learn_on_the_constant_prediction(self):
        from sklearn.metrics import accuracy_score, f1_score

        from mrpc_check.pipeline.stats import majority_baseline

        for labels in ([0, 0, 0, 1, 1], [1, 1, 0], [0, 1]):
            base = majority_baseline(labels)
            constant = [base["label"]] * len(labels)
            assert base["accuracy"] == pytest.approx(accuracy_score(labels, constant))
            assert base["f1"] == pytest.approx(f1_score(labels, constant, zero_division=0.0))

    def test_degenerate_runs_are_named(self):
        from mrpc_check.pipeline.stats import degeneracy, majority_baseline

        base = majority_baseline([1, 1, 1, 0])
        assert "only class 1" in degeneracy([1, 1, 1, 1], {"accuracy": 0.75, "f1": 6 / 7}, base)
        assert "at or below the majority baseline" in degeneracy([1, 1, 0, 1], {"accuracy": 0.5, "f1": 0.67}, base)
        assert degeneracy([1, 1, 1, 0], {"accuracy": 1.0, "f1": 1.0}, base) is None

    def test_report_flags_a_single_class_run(self):
        from mrpc_check.pipeline.report import build_report
        from mrpc_check.pipeline.steplog import TrainResult

        result = TrainResult(epochs=[{"epoch": 1, "accuracy": 0.75, "f1": 6 / 7}], eval_predictions=[1, 1, 1, 1], runtime_s=1.0)
        report = build_report({"model": "m", "loop": "manual"}, "m", "cpu", result, [1, 1, 1, 0])
        assert report["degenerate"]["flag"] and "only class 1" in report["degenerate"]["reason"]
        assert report["metrics"]["validation_baseline"]["accuracy"] == 0.75


class TestConfusionAndMatthews:
    @pytest.mark.filterwarnings("ignore:A single label was found")  # scikit-learn on one-class draws: fine here
    @given(label_pairs)
    def test_equal_scikit_learn(self, pair):
        from sklearn.metrics import confusion_matrix, matthews_corrcoef, precision_score, recall_score

        from mrpc_check.pipeline.stats import confusion, matthews

        predictions, references = pair
        got = confusion(predictions, references)
        assert got["matrix"] == confusion_matrix(references, predictions, labels=[0, 1]).tolist()
        for c, name in enumerate(("not_equivalent", "equivalent")):
            assert got["per_class"][name]["precision"] == pytest.approx(
                precision_score(references, predictions, pos_label=c, zero_division=0))
            assert got["per_class"][name]["recall"] == pytest.approx(recall_score(references, predictions, pos_label=c, zero_division=0))
        assert matthews(predictions, references) == pytest.approx(matthews_corrcoef(references, predictions), abs=1e-12)

    def test_matthews_is_zero_for_one_class_and_minus_one_for_inverted(self):
        from mrpc_check.pipeline.stats import matthews

        assert matthews([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0
        assert matthews([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


class TestBootstrapInterval:
    def test_perfect_predictions_have_a_point_interval(self):
        from mrpc_check.pipeline.stats import bootstrap_interval

        labels = [1, 0, 1, 1, 0, 1, 1, 0] * 10
        got = bootstrap_interval(labels, labels, seed=3)
        assert got["accuracy"] == [1.0, 1.0] and got["f1"] == [1.0, 1.0]

    def test_seeded_contains_the_estimate_and_shrinks_like_one_over_root_n(self):
        from mrpc_check.pipeline.stats import bootstrap_interval

        rng = np.random.default_rng(0)
        labels = (rng.random(400) < 0.68).astype(int)
        predictions = np.where(rng.random(400) < 0.8, labels, 1 - labels)
        a, b = bootstrap_interval(predictions, labels, seed=1), bootstrap_interval(predictions, labels, seed=1)
        assert a == b  # seeded: the same interval every time
        accuracy = float((predictions == labels).mean())
        assert a["accuracy"][0] < accuracy < a["accuracy"][1]
        # Closed form: the accuracy interval is about 2 x 1.96 x sqrt(p (1 - p) / n) wide.
        assert a["accuracy"][1] - a["accuracy"][0] == pytest.approx(2 * 1.96 * np.sqrt(accuracy * (1 - accuracy) / 400), rel=0.15)
        # Metamorphic: the same pairs four times over give an interval half as wide.
        wide = bootstrap_interval(np.tile(predictions, 4), np.tile(labels, 4), seed=1)
        ratio = (wide["f1"][1] - wide["f1"][0]) / (a["f1"][1] - a["f1"][0])
        assert ratio == pytest.approx(0.5, rel=0.15)

    def test_mismatched_lengths_are_refused(self):
        from mrpc_check.pipeline.stats import bootstrap_interval

        with pytest.raises(ValueError, match="as many predictions as labels"):
            bootstrap_interval([1, 0], [1, 0, 1])


class TestAnalyse:
    def test_report_carries_interval_mcc_and_confusion(self):
        from mrpc_check.pipeline.report import build_report
        from mrpc_check.pipeline.steplog import TrainResult

        result = TrainResult(epochs=[{"epoch": 1, "accuracy": 0.75, "f1": 0.8}], eval_predictions=[1, 0, 1, 1], runtime_s=1.0)
        report = build_report({"model": "m", "loop": "manual"}, "m", "cpu", result, [1, 0, 0, 1])
        analysis = report["metrics"]["validation_analysis"]
        assert analysis["confusion"]["matrix"] == [[1, 1], [0, 2]]
        assert analysis["mcc"] == pytest.approx(1 / np.sqrt(3))
        assert analysis["classes_predicted"] == [0, 1]
        assert set(analysis["interval"]) >= {"f1", "accuracy", "level", "resamples", "seed"}
        assert "test" not in report["metrics"] and not report["degenerate"]["flag"]
