"""Acceptance tests: fine-tune a pretrained checkpoint on real MRPC with the walkthrough recipe.

Shipped inside the package so that users run them against their own checkpoint or data:

    pytest --pyargs mrpc_check.acceptance -m slow --mrpc-data DIR                  MiniLM, F1 >= 0.85, acc >= 0.78
    pytest --pyargs mrpc_check.acceptance -m slow --mrpc-model CKPT --mrpc-min-f1 0.88 --mrpc-data DIR

This project's suite collects them through tests/test_acceptance.py. The floors sit well
above the majority-class baseline (F1 0.812, accuracy 0.684).
"""

import json

import pytest

from mrpc_check.config import make_config
from mrpc_check.pipeline import run_training
from mrpc_check.testing import reset_accelerate


def refuse_floor_at_baseline(source, min_f1, min_accuracy):
    """A floor at or below what always answering the majority class scores proves nothing: refuse it before training."""
    from mrpc_check.data import load_mrpc
    from mrpc_check.evaluation import majority_baseline

    base = majority_baseline(load_mrpc(source)["validation"]["label"])
    if min_f1 <= base["f1"] or min_accuracy <= base["accuracy"]:
        pytest.fail(f"--mrpc-min-f1 {min_f1} / --mrpc-min-accuracy {min_accuracy} is at or below this split's majority baseline "
                    f"(F1 {base['f1']:.4f}, accuracy {base['accuracy']:.4f}): pass floors above it", pytrace=False)


def fine_tune(tmp_path, source, model, loop, record, **overrides):
    reset_accelerate()
    cfg = make_config(model=model, data=source, loop=loop, output_dir=str(tmp_path / loop), **overrides)
    report = run_training(cfg)
    figures = {"loop": loop, "model": model, "seed": cfg.seed, "device": report["device"]["type"],
               "mixed_precision": cfg.mixed_precision, "transformers": report["versions"]["transformers"],
               **report["metrics"]["validation"], "train_s": round(report["train"]["runtime_s"], 1),
               "baseline_accuracy": report["metrics"]["validation_baseline"]["accuracy"],
               "baseline_f1": report["metrics"]["validation_baseline"]["f1"], "degenerate": report["degenerate"]["reason"]}
    print(json.dumps(figures))
    record(figures)
    return report


def assert_floors(report, min_f1, min_accuracy):
    assert not report["degenerate"]["flag"], f"degenerate run: {report['degenerate']['reason']}"
    val = report["metrics"]["validation"]
    assert val["f1"] >= min_f1, f"validation F1 {val['f1']:.4f} < floor {min_f1}"
    assert val["accuracy"] >= min_accuracy, f"validation accuracy {val['accuracy']:.4f} < floor {min_accuracy}"
    assert report["train"]["final_lr"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["manual", "accelerate"])
def test_walkthrough_recipe_reaches_the_floor(tmp_path, mrpc_data_source, mrpc_model, mrpc_min_f1, mrpc_min_accuracy, mrpc_record, loop):
    refuse_floor_at_baseline(mrpc_data_source, mrpc_min_f1, mrpc_min_accuracy)
    report = fine_tune(tmp_path, mrpc_data_source, mrpc_model, loop, mrpc_record, device="cpu")
    assert report["config"]["batch_size"] == 8 and report["config"]["lr"] == 5e-5 and report["config"]["epochs"] == 3
    assert_floors(report, mrpc_min_f1, mrpc_min_accuracy)


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.parametrize("loop", ["manual", "accelerate"])
def test_walkthrough_recipe_on_cuda_bf16(tmp_path, mrpc_data_source, mrpc_model, mrpc_min_f1, mrpc_min_accuracy, mrpc_record, loop):
    refuse_floor_at_baseline(mrpc_data_source, mrpc_min_f1, mrpc_min_accuracy)
    report = fine_tune(tmp_path, mrpc_data_source, mrpc_model, loop, mrpc_record, device="cuda", mixed_precision="bf16")
    assert report["device"]["type"] == "cuda"
    assert_floors(report, mrpc_min_f1, mrpc_min_accuracy)
