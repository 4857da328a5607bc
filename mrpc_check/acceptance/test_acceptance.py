"""Acceptance tests: is a fine-tuned model good on real MRPC, and how sure are we?

Shipped inside the package so that users run them against their own model or data. Two kinds:

* **fine-tune, then judge** (``-m slow``): the walkthrough recipe trains ``--mrpc-model`` (a
  *pretrained* starting point, MiniLM by default) for 3 epochs with the manual loop, minutes
  per run, and the floors judge it. The Accelerate loop is held to the manual loop step by step
  on the same pretrained model and real data (the first 30 optimizer steps: losses, learning
  rates, weights and validation predictions), which the fast tier proves on tiny models too:
  one full run instead of two computing the same thing. ``--mrpc-loops manual,accelerate``
  trains both in full; ``--mrpc-loop file.py:adapter`` fine-tunes your own loop (the adapter
  ``verify`` judges) with the same recipe, judged by the same floors;
* **judge as it is** (``--mrpc-checkpoint DIR``): an already fine-tuned model is scored,
  untouched, in seconds; the fine-tuning tests then skip.

Every verdict refuses floors at or below the loaded split's majority baseline (before any
work), asserts a Matthews correlation above 0 and both classes predicted, reports the
bootstrap 95 % interval, and with ``--mrpc-floor-on lower`` applies the floors to its lower end.
``--mrpc-seeds N`` runs each loop over N seeds as separate tests (``-n N`` spreads them over
pytest-xdist workers); then each seed must only be sane, and the floors apply to the median
(or every seed, ``--mrpc-sweep-rule all``), judged once at the end of the session.

    pytest --pyargs mrpc_check.acceptance -m slow --mrpc-data DIR                   MiniLM, F1 >= 0.85, acc >= 0.78
    pytest --pyargs mrpc_check.acceptance -m slow --mrpc-seeds 5 -n 5 --mrpc-data DIR
    pytest --pyargs mrpc_check.acceptance --mrpc-checkpoint runs/a/model --mrpc-data DIR

This project's suite collects them through tests/acceptance/test_acceptance.py.
"""

import json
from pathlib import Path

import pytest

from mrpc_check.pipeline.config import make_config
from mrpc_check.errors import ConfigError
from mrpc_check.acceptance.floors import refuse_at_baseline
from mrpc_check.acceptance.user_loop import is_user_loop, train_any
from mrpc_check.pipeline.run import run_training
from mrpc_check.testing import reset_accelerate


def refuse_floor_at_baseline(raw, floors, split="validation"):
    """A floor at or below what always answering the majority class scores proves nothing: refuse it before any work."""
    from mrpc_check.pipeline.stats import majority_baseline

    try:
        refuse_at_baseline(floors, majority_baseline(raw[split]["label"]), split)
    except ConfigError as exc:
        pytest.fail(str(exc), pytrace=False)


def fine_tune(tmp_path, source, model, loop, record, seed=42, **overrides):
    reset_accelerate()
    folder = tmp_path / (loop if not is_user_loop(loop) else "user-loop")
    cfg = make_config(model=model, data=source, loop=loop, seed=seed, output_dir=str(folder), **overrides)
    report = train_any(cfg)
    m = report["metrics"]
    interval = m["validation_analysis"]["interval"]
    figures = {"loop": loop, "model": model, "seed": cfg.seed, "device": report["device"]["type"],
               "mixed_precision": cfg.mixed_precision, "transformers": report["versions"]["transformers"],
               **m["validation"], "f1_95": interval["f1"], "accuracy_95": interval["accuracy"],
               "mcc": m["validation_analysis"]["mcc"], "train_s": round(report["train"]["runtime_s"], 1),
               "baseline_accuracy": m["validation_baseline"]["accuracy"], "baseline_f1": m["validation_baseline"]["f1"],
               "degenerate": report["degenerate"]["reason"]}
    if "test" in m:
        figures.update({"test_accuracy": m["test"]["accuracy"], "test_f1": m["test"]["f1"]})
    print(json.dumps(figures))
    record(figures)
    return report


def assert_verdict(report, floors, sweep_run=None):
    """Judge one run. Alone, it must clear the floors; as one seed of a sweep (``sweep_run`` is the
    test's ``request``), it must be sane and is handed to the plugin, which judges the sweep's median."""
    from mrpc_check.acceptance.sweep import run_entry

    judged = floors.judge_report(report, apply_floors=sweep_run is None)
    if sweep_run is not None:
        entry = run_entry(report, report["config"]["seed"], Path(report["config"]["output_dir"]))
        sweep_run.node.user_properties.append(
            # Grouped by loop, device and precision: a CPU fp32 sweep and a GPU bf16 one are judged apart.
            ("mrpc_run", {**entry, "loop": f"{report['config']['loop']} ({report['device']['type']}, "
                                           f"{report['config']['mixed_precision'].replace('no', 'fp32')})",
                          "baseline": report["metrics"]["validation_baseline"]}))
    assert judged["passed"], "; ".join(judged["failures"])
    assert report["train"]["final_lr"] == 0.0  # the walkthrough's linear schedule ends at 0


def judge_behaviour(model_dir, dataset, suite, record, label):
    """The behaviour tests of a model folder on one split: recorded, then any thresholded failure fails."""
    from mrpc_check.acceptance.behaviour import failure_lines, format_table, model_behaviour

    result = model_behaviour(str(model_dir), dataset, suite, name=f"model {label}")
    print(format_table(result))
    record({"behaviour_of": label, **{t["name"]: t["failure_rate"] for t in result["tests"]}})
    failures = list(failure_lines(result))
    assert not failures, "; ".join(failures)
    return result


def _sweep(request):
    """The test's request when --mrpc-seeds asks for several seeds (the run is one seed of a sweep), else None."""
    from mrpc_check.acceptance.plugin import seeds_from

    return request if len(seeds_from(request.config.getoption("--mrpc-seeds"))) > 1 else None


def _skip_when_judging_a_checkpoint(pytestconfig):
    if pytestconfig.getoption("--mrpc-checkpoint"):
        pytest.skip("--mrpc-checkpoint given: judging that model as it is, not fine-tuning --mrpc-model")


def _skip_unless_trained_in_full(config, loop):
    from mrpc_check.acceptance.plugin import loops_from

    if loop not in loops_from(config.getoption("--mrpc-loops")):
        pytest.skip(f"--mrpc-loops {config.getoption('--mrpc-loops')}: the {loop} loop is held to the manual loop step by step "
                    f"(test_the_loops_agree_on_the_real_model); add it to --mrpc-loops to train it in full too")


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["manual", "accelerate"])
def test_walkthrough_recipe_reaches_the_floor(request, tmp_path, mrpc_raw, mrpc_data_source, mrpc_model, mrpc_floors,
                                               mrpc_seed, mrpc_record, mrpc_behaviour, loop):
    _skip_when_judging_a_checkpoint(request.config)
    _skip_unless_trained_in_full(request.config, loop)
    refuse_floor_at_baseline(mrpc_raw, mrpc_floors)
    report = fine_tune(tmp_path, mrpc_data_source, mrpc_model, loop, mrpc_record, seed=mrpc_seed, device="cpu")
    assert report["config"]["batch_size"] == 8 and report["config"]["lr"] == 5e-5 and report["config"]["epochs"] == 3
    assert_verdict(report, mrpc_floors, _sweep(request))
    # What the model learned, beside its score: the behaviour suite on validation (thresholds from
    # the reference model; --mrpc-behaviour-* to change them).
    judge_behaviour(tmp_path / loop / "model", mrpc_raw["validation"], mrpc_behaviour, mrpc_record, f"{loop} seed {mrpc_seed}")


@pytest.mark.slow
def test_your_loop_reaches_the_floor(request, tmp_path, mrpc_raw, mrpc_data_source, mrpc_model, mrpc_floors, mrpc_seed,
                                     mrpc_record, mrpc_behaviour):
    """``--mrpc-loop file.py:adapter``: your loop fine-tunes --mrpc-model with the walkthrough recipe on real MRPC, judged
    by the floors and the behaviour suite as the built-in loops are."""
    _skip_when_judging_a_checkpoint(request.config)
    loop = request.config.getoption("--mrpc-loop")
    if not loop:
        pytest.skip("no --mrpc-loop: pass --mrpc-loop file.py:adapter to fine-tune your own loop")
    if not is_user_loop(loop):
        pytest.skip(f"--mrpc-loop {loop}: a built-in loop (test_walkthrough_recipe_reaches_the_floor trains it); "
                    "pass --mrpc-loop file.py:adapter to fine-tune your own")
    if ".py:" in loop:
        where, _, attr = loop.rpartition(":")
        loop = f"{Path(where).expanduser().resolve()}:{attr}"
    refuse_floor_at_baseline(mrpc_raw, mrpc_floors)
    report = fine_tune(tmp_path, mrpc_data_source, mrpc_model, loop, mrpc_record, seed=mrpc_seed, device="cpu")
    assert_verdict(report, mrpc_floors, _sweep(request))
    judge_behaviour(tmp_path / "user-loop" / "model", mrpc_raw["validation"], mrpc_behaviour, mrpc_record, f"{loop} seed {mrpc_seed}")


# Optimizer steps the two loops are compared over (the first 30 of an epoch's 459 on MRPC): about
# a minute for both, long enough for a divergence in scaling, scheduling or stepping to show.
AGREEMENT_STEPS = 30


@pytest.mark.slow
def test_the_loops_agree_on_the_real_model(request, tmp_path, mrpc_data_source, mrpc_model):
    """The Accelerate loop computes what the manual loop computes, on the pretrained model and real
    data at the walkthrough recipe: same per-step losses and learning rates, same weights, same
    validation predictions after AGREEMENT_STEPS steps. With the manual loop's full run clearing
    the floors, this stands in for a second full run."""
    import torch
    from safetensors.torch import load_file

    _skip_when_judging_a_checkpoint(request.config)
    reports = {}
    for loop in ("manual", "accelerate"):
        reset_accelerate()
        cfg = make_config(model=mrpc_model, data=mrpc_data_source, loop=loop, seed=42, device="cpu", epochs=1,
                          max_train_samples=AGREEMENT_STEPS * 8, output_dir=str(tmp_path / loop))
        assert (cfg.batch_size, cfg.lr, cfg.scheduler, cfg.grad_accum) == (8, 5e-5, "linear", 1)  # the walkthrough's recipe
        reports[loop] = run_training(cfg)
    manual, accelerate = reports["manual"], reports["accelerate"]
    # AGREEMENT_STEPS on MRPC; fewer on a user's training split smaller than 30 batches.
    steps = -(-manual["train"]["samples"] // 8)
    assert manual["train"]["optimizer_steps"] == accelerate["train"]["optimizer_steps"] == steps > 0
    torch.testing.assert_close(accelerate["history"]["loss"], manual["history"]["loss"], rtol=1e-5, atol=1e-6)
    assert accelerate["history"]["lr"] == manual["history"]["lr"]
    assert accelerate["metrics"]["validation"] == manual["metrics"]["validation"]
    weights = {loop: load_file(str(tmp_path / loop / "model" / "model.safetensors")) for loop in reports}
    for name, tensor in weights["manual"].items():
        torch.testing.assert_close(weights["accelerate"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.parametrize("loop", ["manual", "accelerate"])
def test_walkthrough_recipe_on_cuda_bf16(request, tmp_path, mrpc_raw, mrpc_data_source, mrpc_model, mrpc_floors,
                                         mrpc_seed, mrpc_device, mrpc_record, loop):
    _skip_when_judging_a_checkpoint(request.config)
    refuse_floor_at_baseline(mrpc_raw, mrpc_floors)
    report = fine_tune(tmp_path, mrpc_data_source, mrpc_model, loop, mrpc_record, seed=mrpc_seed, device=mrpc_device,
                       mixed_precision="bf16")
    assert report["device"]["type"] == "cuda"
    assert_verdict(report, mrpc_floors, _sweep(request))


@pytest.mark.slow  # acceptance, like the fine-tuning tests: `-m slow --mrpc-checkpoint DIR` judges the checkpoint
def test_checkpoint_as_is(request, mrpc_checkpoint, mrpc_raw, mrpc_data_source, mrpc_floors, mrpc_record):
    """An already fine-tuned model, scored untouched: floors, baseline, interval, and the test split when labelled."""
    from mrpc_check.pipeline.run import labelled_test_split, run_evaluation

    refuse_floor_at_baseline(mrpc_raw, mrpc_floors)
    scored = {"validation": run_evaluation(mrpc_checkpoint, mrpc_data_source, "validation", floors=mrpc_floors)}
    if labelled_test_split(mrpc_raw):  # the floors judge validation; test is reported, and bounded by --mrpc-max-gap
        scored["test"] = run_evaluation(mrpc_checkpoint, mrpc_data_source, "test")
    for split, result in scored.items():
        figures = {"checkpoint": mrpc_checkpoint, "split": split, "accuracy": result["accuracy"], "f1": result["f1"],
                   "f1_95": result["analysis"]["interval"]["f1"], "accuracy_95": result["analysis"]["interval"]["accuracy"],
                   "mcc": result["analysis"]["mcc"], "baseline_accuracy": result["baseline"]["accuracy"],
                   "baseline_f1": result["baseline"]["f1"], "degenerate": result["degenerate"]}
        print(json.dumps(figures))
        mrpc_record(figures)
    request.node.user_properties.append(("mrpc_checkpoint_judged", mrpc_checkpoint))  # the plugin's vacuous-green guard
    failures = scored["validation"]["floors"]["failures"]
    if "test" in scored:
        from mrpc_check.acceptance.floors import judge_gap

        failures += judge_gap(scored["validation"], scored["test"], mrpc_floors)
    assert not failures, "; ".join(failures)


@pytest.mark.slow  # beside test_checkpoint_as_is: `-m slow --mrpc-checkpoint DIR` runs both
def test_checkpoint_behaviour(mrpc_checkpoint, mrpc_raw, mrpc_behaviour, mrpc_record):
    """What an already fine-tuned model learned: the behaviour suite on validation, and on test when labelled."""
    from mrpc_check.pipeline.run import labelled_test_split

    for split in ("validation", "test") if labelled_test_split(mrpc_raw) else ("validation",):
        judge_behaviour(mrpc_checkpoint, mrpc_raw[split], mrpc_behaviour, mrpc_record, f"{mrpc_checkpoint} on {split}")
