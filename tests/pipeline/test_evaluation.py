"""The bundled metric equals scikit-learn; the evaluation loop scores every example once."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from mrpc_check.evaluation import METRIC_PATH, evaluate_model, load_metric

label_pairs = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.lists(st.integers(0, 1), min_size=n, max_size=n), st.lists(st.integers(0, 1), min_size=n, max_size=n))
)


@pytest.fixture(scope="module")
def metric():
    return load_metric()


class TestMetricModule:
    def test_loaded_from_the_package_not_the_hub(self, metric):
        assert METRIC_PATH.is_dir() and (METRIC_PATH / "mrpc.py").is_file()
        assert metric.name == "mrpc"

    @given(pair=label_pairs)
    def test_equals_sklearn_at_once(self, metric, pair):
        preds, refs = pair
        got = metric.compute(predictions=preds, references=refs)
        assert got["accuracy"] == accuracy_score(refs, preds)
        assert got["f1"] == f1_score(refs, preds, zero_division=0.0)

    @given(pair=label_pairs, chunk=st.integers(min_value=1, max_value=50))
    def test_streamed_through_add_batch_equals_at_once(self, metric, pair, chunk):
        preds, refs = pair
        for i in range(0, len(preds), chunk):
            metric.add_batch(predictions=torch.tensor(preds[i : i + chunk]), references=np.array(refs[i : i + chunk]))
        assert metric.compute() == metric.compute(predictions=preds, references=refs)

    def test_known_values(self, metric):
        # 4 examples: TP=2, FP=1, FN=1, TN=0 -> accuracy 0.5, precision = recall = 2/3, F1 2/3
        got = metric.compute(predictions=[1, 1, 1, 0], references=[1, 1, 0, 1])
        assert got == pytest.approx({"accuracy": 0.5, "f1": 2 / 3})


class TestEvaluateModel:
    def test_matches_predictions_computed_by_hand(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        model = tiny_model_factory(seed=2)
        data = tiny_tokenized["validation"]
        _, loader = loaders(data, 8, eval_dataset=data, eval_batch_size=3)  # 20 = 6 x 3 + 2
        got = evaluate_model(model, loader, metric)
        model.eval()
        preds, refs = [], []
        with torch.no_grad():
            for batch in loaders(data, 8, eval_dataset=data, eval_batch_size=1)[1]:
                preds.append(int(model(**batch).logits.argmax(-1)))
                refs.append(int(batch["labels"]))
        assert len(refs) == 20
        assert got == pytest.approx({"accuracy": accuracy_score(refs, preds), "f1": f1_score(refs, preds, zero_division=0.0)})

    def test_restores_training_mode(self, tiny_model_factory, tiny_tokenized, loaders, metric):
        model = tiny_model_factory().train()
        evaluate_model(model, loaders(tiny_tokenized["validation"], 8)[1], metric)
        assert model.training

    def test_progress_bar_only_when_asked(self, tiny_model_factory, tiny_tokenized, loaders, metric, capsys):
        model = tiny_model_factory()
        loader = loaders(tiny_tokenized["validation"], 8)[1]
        evaluate_model(model, loader, metric)
        assert "evaluate" not in capsys.readouterr().err
        evaluate_model(model, loader, metric, progress=True)
        assert "evaluate:   0%|          | 0/3" in capsys.readouterr().err  # 3 batches; the bar clears itself when done


class TestMajorityBaseline:
    def test_closed_form_for_a_positive_majority(self):
        from mrpc_check.evaluation import majority_baseline

        base = majority_baseline([1] * 279 + [0] * 129)  # MRPC validation's 408 pairs
        assert base["label"] == 1 and base["accuracy"] == pytest.approx(279 / 408)
        assert base["f1"] == pytest.approx(2 * (279 / 408) / (279 / 408 + 1))  # 0.8122
        assert round(base["f1"], 4) == 0.8122 and round(base["accuracy"], 4) == 0.6838

    def test_matches_scikit_learn_on_the_constant_prediction(self):
        from sklearn.metrics import accuracy_score, f1_score

        from mrpc_check.evaluation import majority_baseline

        for labels in ([0, 0, 0, 1, 1], [1, 1, 0], [0, 1]):
            base = majority_baseline(labels)
            constant = [base["label"]] * len(labels)
            assert base["accuracy"] == pytest.approx(accuracy_score(labels, constant))
            assert base["f1"] == pytest.approx(f1_score(labels, constant, zero_division=0.0))

    def test_degenerate_runs_are_named(self):
        from mrpc_check.evaluation import degeneracy, majority_baseline

        base = majority_baseline([1, 1, 1, 0])
        assert "only class 1" in degeneracy([1, 1, 1, 1], {"accuracy": 0.75, "f1": 6 / 7}, base)
        assert "at or below the majority baseline" in degeneracy([1, 1, 0, 1], {"accuracy": 0.5, "f1": 0.67}, base)
        assert degeneracy([1, 1, 1, 0], {"accuracy": 1.0, "f1": 1.0}, base) is None

    def test_report_flags_a_single_class_run(self):
        from mrpc_check.report import build_report
        from mrpc_check.steplog import TrainResult

        result = TrainResult(epochs=[{"epoch": 1, "accuracy": 0.75, "f1": 6 / 7}], eval_predictions=[1, 1, 1, 1], runtime_s=1.0)
        report = build_report({"model": "m", "loop": "manual"}, "m", "cpu", result, [1, 1, 1, 0])
        assert report["degenerate"]["flag"] and "only class 1" in report["degenerate"]["reason"]
        assert report["metrics"]["validation_baseline"]["accuracy"] == 0.75


class TestConfusionAndMatthews:
    @pytest.mark.filterwarnings("ignore:A single label was found")  # scikit-learn on one-class draws: fine here
    @given(label_pairs)
    def test_equal_scikit_learn(self, pair):
        from sklearn.metrics import confusion_matrix, matthews_corrcoef, precision_score, recall_score

        from mrpc_check.evaluation import confusion, matthews

        predictions, references = pair
        got = confusion(predictions, references)
        assert got["matrix"] == confusion_matrix(references, predictions, labels=[0, 1]).tolist()
        for c, name in enumerate(("not_equivalent", "equivalent")):
            assert got["per_class"][name]["precision"] == pytest.approx(
                precision_score(references, predictions, pos_label=c, zero_division=0))
            assert got["per_class"][name]["recall"] == pytest.approx(recall_score(references, predictions, pos_label=c, zero_division=0))
        assert matthews(predictions, references) == pytest.approx(matthews_corrcoef(references, predictions), abs=1e-12)

    def test_matthews_is_zero_for_one_class_and_minus_one_for_inverted(self):
        from mrpc_check.evaluation import matthews

        assert matthews([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0
        assert matthews([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


class TestBootstrapInterval:
    def test_perfect_predictions_have_a_point_interval(self):
        from mrpc_check.evaluation import bootstrap_interval

        labels = [1, 0, 1, 1, 0, 1, 1, 0] * 10
        got = bootstrap_interval(labels, labels, seed=3)
        assert got["accuracy"] == [1.0, 1.0] and got["f1"] == [1.0, 1.0]

    def test_seeded_contains_the_estimate_and_shrinks_like_one_over_root_n(self):
        from mrpc_check.evaluation import bootstrap_interval

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
        from mrpc_check.evaluation import bootstrap_interval

        with pytest.raises(ValueError, match="as many predictions as labels"):
            bootstrap_interval([1, 0], [1, 0, 1])


class TestAnalyse:
    def test_report_carries_interval_mcc_and_confusion(self):
        from mrpc_check.report import build_report
        from mrpc_check.steplog import TrainResult

        result = TrainResult(epochs=[{"epoch": 1, "accuracy": 0.75, "f1": 0.8}], eval_predictions=[1, 0, 1, 1], runtime_s=1.0)
        report = build_report({"model": "m", "loop": "manual"}, "m", "cpu", result, [1, 0, 0, 1])
        analysis = report["metrics"]["validation_analysis"]
        assert analysis["confusion"]["matrix"] == [[1, 1], [0, 2]]
        assert analysis["mcc"] == pytest.approx(1 / np.sqrt(3))
        assert analysis["classes_predicted"] == [0, 1]
        assert set(analysis["interval"]) >= {"f1", "accuracy", "level", "resamples", "seed"}
        assert "test" not in report["metrics"] and not report["degenerate"]["flag"]
