"""The bundled metric equals scikit-learn; the evaluation loop scores every example once."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from mrpc_check.pipeline.evaluation import METRIC_PATH, evaluate_model, load_metric

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
