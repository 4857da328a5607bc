"""Seed sweeps: seed parsing, the spread and its verdict, resumption, the process pool."""

import json
import os
import subprocess
import sys

import pytest

from mrpc_check.acceptance import sweep
from mrpc_check.pipeline.config import make_config
from mrpc_check.errors import ConfigError
from mrpc_check.acceptance.floors import Floors


def run(seed, f1, accuracy, degenerate=None, low=None):
    low = f1 - 0.03 if low is None else low
    return {"seed": seed, "f1": f1, "accuracy": accuracy, "degenerate": degenerate,
            "interval": {"f1": [low, f1 + 0.03], "accuracy": [accuracy - 0.04, accuracy + 0.04]}}


class TestParseSeeds:
    @pytest.mark.parametrize("text, seeds", [("1,2,3", [1, 2, 3]), ("1-3,10", [1, 2, 3, 10]), (" 7 ", [7]), ("3,1", [3, 1])])
    def test_lists_and_ranges(self, text, seeds):
        assert sweep.parse_seeds(text) == seeds

    @pytest.mark.parametrize("text, pattern", [("", "names no seed"), ("a,b", "integers and ranges"), ("5-1", "backwards"),
                                               ("1,2,1", "given twice")])
    def test_bad_lists_name_the_fix(self, text, pattern):
        with pytest.raises(ConfigError, match=pattern):
            sweep.parse_seeds(text)


class TestSummarise:
    RUNS = [run(1, 0.80, 0.74), run(2, 0.86, 0.80), run(3, 0.88, 0.82), run(4, 0.90, 0.85), run(5, 0.84, 0.79)]

    def test_median_quartiles_and_extremes(self):
        s = sweep.summarise(self.RUNS, Floors(min_f1=0.85, min_accuracy=0.78))
        f1 = s["validation"]["f1"]
        # Sorted F1 0.80 0.84 0.86 0.88 0.90: quartiles fall on the 2nd and 4th values exactly.
        assert (f1["median"], f1["q1"], f1["q3"], f1["min"], f1["max"]) == pytest.approx((0.86, 0.84, 0.88, 0.80, 0.90))
        assert f1["iqr"] == pytest.approx(0.04)
        assert s["validation"]["accuracy"]["median"] == pytest.approx(0.80)
        assert s["passed"] and s["degenerate_rate"] == 0 and "median F1 >= 0.85" in s["rule"]

    def test_rule_all_names_the_seeds_below_the_floor(self):
        s = sweep.summarise(self.RUNS, Floors(min_f1=0.85, min_accuracy=0.78), rule="all")
        assert not s["passed"] and "f1 below floor 0.85 for seed 1, 5" in s["failures"][0].replace("validation ", "")

    def test_one_degenerate_seed_fails_a_sweep_whose_median_clears(self):
        runs = self.RUNS[:4] + [run(5, 0.81, 0.68, degenerate="predicts only class 1")]
        s = sweep.summarise(runs, Floors(min_f1=0.85, min_accuracy=0.78))
        assert not s["passed"] and s["degenerate_rate"] == pytest.approx(0.2) and s["failures"] == ["degenerate run(s): seed 5"]

    def test_the_validation_test_gap_per_seed(self):
        runs = [{**r, "test": {"f1": r["f1"] - 0.01 * r["seed"], "accuracy": r["accuracy"]}} for r in self.RUNS]
        s = sweep.summarise(runs, Floors(min_f1=0.85, min_accuracy=0.78, max_gap=0.035))
        assert s["failures"] == ["|validation F1 - test F1| > --max-gap 0.035 for seed 4, 5"]
        assert s["test"]["f1"]["median"] == pytest.approx(0.84)  # test F1 0.79 0.84 0.85 0.86 0.79

    def test_floor_on_the_lower_bounds(self):
        s = sweep.summarise(self.RUNS, Floors(min_f1=0.85, min_accuracy=0.78, on="lower"))
        assert not s["passed"] and "median validation f1 0.8300 < floor 0.85" in s["failures"]


@pytest.fixture
def tiny_cfg(tiny_model_dir, raw_dir):
    return make_config(model=tiny_model_dir, data=raw_dir, epochs=1, max_train_samples=16)


class TestRunSweep:
    def test_killed_sweep_resumes_without_redoing_finished_seeds(self, tmp_path, tiny_cfg, monkeypatch):
        real, calls = sweep._one_run, []

        def counting(cfg_dict, stop_at=None):
            calls.append(cfg_dict["seed"])
            if stop_at is not None and cfg_dict["seed"] == stop_at:
                raise KeyboardInterrupt  # a kill between seeds
            return real(cfg_dict)

        floors = Floors(min_f1=0.9, min_accuracy=0.9)
        monkeypatch.setattr(sweep, "_one_run", lambda d: counting(d, stop_at=2))
        with pytest.raises(KeyboardInterrupt):
            sweep.run_sweep(tiny_cfg, [1, 2, 3], tmp_path, floors, progress=False)
        saved = json.loads((tmp_path / "sweep.json").read_text())
        assert [r["seed"] for r in saved["runs"]] == [1] and not saved["complete"]
        monkeypatch.setattr(sweep, "_one_run", counting)
        result = sweep.run_sweep(tiny_cfg, [1, 2, 3], tmp_path, floors, progress=False)
        assert calls == [1, 2, 2, 3]  # seed 1 read back, not redone
        assert [r["seed"] for r in result["runs"]] == [1, 2, 3] and result["complete"]
        assert result["runs"][0] == saved["runs"][0]
        assert "test" in result["summary"]  # the raw MSR data carries a labelled test split
        assert (tmp_path / "sweep.png").is_file() or "matplotlib" not in sys.modules
        assert result["summary"]["runs"] == 3 and result["baseline"]["examples"] == 17

    def test_a_seed_folder_from_another_recipe_is_refused(self, tmp_path, tiny_cfg):
        floors = Floors(min_f1=0.9, min_accuracy=0.9)
        sweep.run_sweep(tiny_cfg, [1], tmp_path, floors, progress=False)
        other = make_config(tiny_cfg, lr=1e-3)
        with pytest.raises(ConfigError, match="another recipe.*--overwrite"):
            sweep.run_sweep(other, [1], tmp_path, floors, progress=False)
        assert sweep.run_sweep(other, [1], tmp_path, floors, overwrite=True, progress=False)["config"]["lr"] == 1e-3

    def test_floor_at_the_baseline_is_refused_before_any_run(self, tmp_path, tiny_cfg):
        with pytest.raises(ConfigError, match="majority baseline"):
            sweep.run_sweep(tiny_cfg, [1, 2], tmp_path / "s", Floors(min_f1=0.5, min_accuracy=0.9), progress=False)
        assert not (tmp_path / "s").exists()

    @pytest.mark.integration
    def test_jobs_give_the_runs_one_process_gives(self, tmp_path, tiny_model_dir, raw_dir):
        """The process pool changes where seeds run, not what they compute (same predictions, so same scores)."""
        args = ["--model", tiny_model_dir, "--data", raw_dir, "--epochs", "1", "--max-train-samples", "16",
                "--min-f1", "0.9", "--min-accuracy", "0.9"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        pooled = subprocess.run([sys.executable, "-m", "mrpc_check", "sweep", "--seeds", "1,2", "--jobs", "2",
                                 "--output-dir", str(tmp_path / "pool"), *args], capture_output=True, text=True, env=env, timeout=300)
        assert pooled.returncode in (0, 1), pooled.stderr[-2000:]
        assert "rule: no run degenerate" in pooled.stdout and ("PASS" in pooled.stdout) == (pooled.returncode == 0)
        cfg = make_config(model=tiny_model_dir, data=raw_dir, epochs=1, max_train_samples=16)
        alone = sweep.run_sweep(cfg, [1, 2], tmp_path / "alone", Floors(0.9, 0.9), progress=False)
        pool = json.loads((tmp_path / "pool" / "sweep.json").read_text())
        for a, b in zip(alone["runs"], pool["runs"]):
            assert (a["seed"], a["f1"], a["accuracy"], a.get("test")) == (b["seed"], b["f1"], b["accuracy"], b.get("test"))


@pytest.mark.integration
def test_a_seed_stopped_by_sigterm_resumes_from_its_checkpoint(tmp_path, tiny_cfg, monkeypatch):
    import signal

    import torch

    import mrpc_check.pipeline.run as pipeline
    from mrpc_check.pipeline.checkpoint import checkpoints_in
    from mrpc_check.errors import Preempted

    cfg = make_config(tiny_cfg, batch_size=4)  # 4 optimizer steps per seed
    floors = Floors(min_f1=0.9, min_accuracy=0.9)
    real_load = pipeline.load_model

    def load_then_signal_in_seed_2(*a, **k):
        model = real_load(*a, **k)
        if torch.initial_seed() == 2:  # the pipeline seeds torch with the run's seed just before loading
            calls = {"n": 0}

            def hook(module, inputs, output):
                calls["n"] += 1
                if calls["n"] == 2:  # during step 2: the run must finish it, checkpoint it and stop
                    os.kill(os.getpid(), signal.SIGTERM)

            model.classifier.register_forward_hook(hook)
        return model

    monkeypatch.setattr(pipeline, "load_model", load_then_signal_in_seed_2)
    with pytest.raises(Preempted):
        sweep.run_sweep(cfg, [1, 2], tmp_path / "s", floors, progress=False)
    assert [p.name for p in checkpoints_in(tmp_path / "s" / "seed-2")] == ["step-00000002"]
    forwards = []

    def load_and_count(*a, **k):
        model = real_load(*a, **k)
        forwards.append(0)
        model.classifier.register_forward_hook(lambda m, i, o: forwards.__setitem__(-1, forwards[-1] + 1))
        return model

    monkeypatch.setattr(pipeline, "load_model", load_and_count)
    resumed = sweep.run_sweep(cfg, [1, 2], tmp_path / "s", floors, progress=False)
    fresh = sweep.run_sweep(cfg, [2], tmp_path / "fresh", floors, progress=False)
    assert len(forwards) == 2 and forwards[0] == forwards[1] - 2  # seed 1 read back; seed 2 skipped its 2 trained steps
    a, b = (json.loads(open(r["report"]).read()) for r in (resumed["runs"][1], fresh["runs"][0]))
    assert a["history"] == b["history"] and a["metrics"]["validation"] == b["metrics"]["validation"]


def test_the_ray_engine_without_ray_names_the_extra(tmp_path, tiny_model_dir, raw_dir, monkeypatch, capsys):
    from mrpc_check.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed: `import ray` raises ImportError
    code = main(["sweep", "--seeds", "1,2", "--engine", "ray", "--model", tiny_model_dir, "--data", raw_dir,
                 "--output-dir", str(tmp_path / "s"), "--min-f1", "0.9", "--min-accuracy", "0.9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "mrpc_check[ray]" in err[0], err
    assert not (tmp_path / "s").exists()  # refused before any run


def test_a_retried_task_whose_report_is_written_reads_it_back(tmp_path, tiny_cfg, monkeypatch):
    """A worker that died after writing report.json but before returning: the retry must not train again."""
    import dataclasses

    import mrpc_check.pipeline.run as pipeline

    first = sweep.run_sweep(tiny_cfg, [1], tmp_path, Floors(0.9, 0.9), progress=False)
    monkeypatch.setattr(pipeline, "run_training", lambda *a, **k: pytest.fail("trained again"))
    retry = dataclasses.replace(tiny_cfg, seed=1, output_dir=str(sweep.seed_dir(tmp_path, 1)), overwrite=False)
    assert sweep._one_run(retry.to_dict()) == first["runs"][0]


class TestTwoSweepsOnOneFolder:
    def test_a_second_sweep_merges_by_seed_and_a_different_recipe_is_refused(self, tmp_path, tiny_cfg):
        floors = Floors(min_f1=0.9, min_accuracy=0.9)
        first = sweep.run_sweep(tiny_cfg, [1], tmp_path, floors, progress=False)
        second = sweep.run_sweep(tiny_cfg, [2], tmp_path, floors, progress=False)
        saved = json.loads((tmp_path / "sweep.json").read_text())
        assert [r["seed"] for r in saved["runs"]] == [2, 1] and saved["seeds"] == [2, 1] and saved["merged_seeds"] == [1]
        assert saved["runs"][1] == first["runs"][0] and second["summary"]["runs"] == 2
        with pytest.raises(ConfigError, match="sweep.json.*summarises a sweep of another recipe.*--overwrite"):
            sweep.run_sweep(make_config(tiny_cfg, lr=1e-3), [3], tmp_path, floors, progress=False)

    @pytest.mark.integration
    def test_two_sweeps_started_together_keep_every_result(self, tmp_path, tiny_model_dir, raw_dir):
        """seed 1 and seed 2 on one --output-dir, a moment apart (the local engine): both in sweep.json, and said."""
        args = ["--model", tiny_model_dir, "--data", raw_dir, "--epochs", "1", "--max-train-samples", "16",
                "--min-f1", "0.9", "--min-accuracy", "0.9", "--output-dir", str(tmp_path)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        sweeps = [subprocess.Popen([sys.executable, "-m", "mrpc_check", "sweep", "--seeds", seed, *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env) for seed in ("1", "2")]
        outputs = [p.communicate(timeout=300) for p in sweeps]
        for p, (out, err) in zip(sweeps, outputs):
            assert p.returncode in (0, 1), err[-2000:]
        saved = json.loads((tmp_path / "sweep.json").read_text())
        assert sorted(r["seed"] for r in saved["runs"]) == [1, 2] and saved["summary"]["runs"] == 2
        assert all((tmp_path / f"seed-{s}" / "report.json").is_file() for s in (1, 2))
        assert any("another sweep is running on" in out for out, _ in outputs), outputs


class TestBadFiles:
    def test_a_truncated_sweep_json_is_one_line_naming_it(self, tmp_path, tiny_model_dir, raw_dir, capsys):
        from mrpc_check.cli import main

        (tmp_path / "sweep.json").write_text('{"config": {"model": "x"}, "runs": [{"seed": 1, "f1"')
        code = main(["sweep", "--seeds", "1", "--model", tiny_model_dir, "--data", raw_dir, "--output-dir", str(tmp_path),
                     "--min-f1", "0.9", "--min-accuracy", "0.9"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "sweep.json' is not a readable sweep summary" in err[0] and "delete it" in err[0], err
        assert not (tmp_path / "seed-1").exists()  # refused before any run

    def test_a_truncated_report_read_back_on_a_retry_is_one_line(self, tmp_path, tiny_cfg):
        import dataclasses

        sweep.run_sweep(tiny_cfg, [1], tmp_path, Floors(0.9, 0.9), progress=False)
        report = sweep.seed_dir(tmp_path, 1) / "report.json"
        report.write_text(report.read_text()[:200])
        retry = dataclasses.replace(tiny_cfg, seed=1, output_dir=str(sweep.seed_dir(tmp_path, 1)), overwrite=False)
        with pytest.raises(ConfigError, match="report.json' is not a readable run report.*--overwrite"):
            sweep._one_run(retry.to_dict())


class TestGrid:
    def test_points_are_the_product_typed_as_the_recipe(self):
        points = sweep.parse_grid(["lr=2e-5,5e-5", "batch-size=16,32", "group_by_length=true"])
        assert points == [{"lr": 2e-5, "batch_size": 16, "group_by_length": True}, {"lr": 2e-5, "batch_size": 32, "group_by_length": True},
                          {"lr": 5e-5, "batch_size": 16, "group_by_length": True}, {"lr": 5e-5, "batch_size": 32, "group_by_length": True}]
        assert sweep.point_name({"model": "runs/a b", "lr": 2e-5}) == "model=runs_a_b,lr=2e-05"

    @pytest.mark.parametrize("spec, pattern", [
        (["lrr=1e-5"], "not a recipe setting \\(did you mean 'lr'"), (["lr"], "KEY=V1,V2"), (["lr="], "KEY=V1,V2"),
        (["epochs=two"], "'two' is not a int"), (["seed=1,2"], "per run"), (["lr=1e-5", "lr=2e-5"], "given twice"),
        (["lr=1e-5,1e-5"], "given twice"), (["fp16=yes"], "not a recipe setting")])
    def test_bad_grids_name_the_fix(self, spec, pattern):
        with pytest.raises(ConfigError, match=pattern):
            sweep.parse_grid(spec)

    def test_a_grid_is_one_sweep_per_point_and_one_verdict(self, tmp_path, tiny_model_dir, raw_dir, capsys):
        from mrpc_check.cli import main

        code = main(["sweep", "--seeds", "1", "--grid", "lr=1e-4,3e-4", "--model", tiny_model_dir, "--data", raw_dir,
                     "--epochs", "1", "--max-train-samples", "16", "--output-dir", str(tmp_path), "--min-f1", "0.9",
                     "--min-accuracy", "0.9"])
        grid = json.loads((tmp_path / "grid.json").read_text())
        assert [p["point"] for p in grid["points"]] == [{"lr": 1e-4}, {"lr": 3e-4}] and grid["complete"]
        for point in grid["points"]:
            saved = json.loads((tmp_path / sweep.point_name(point["point"]) / "sweep.json").read_text())
            assert saved["config"]["lr"] == point["point"]["lr"] and saved["summary"] == point["summary"]
        assert code == (0 if grid["passed"] else 1) and not grid["passed"]  # floors of 0.9 on a tiny model: FAIL
        out = capsys.readouterr().out
        assert "lr=0.0001" in out and "lr=0.0003" in out and "grid.json" in out

    def test_a_bad_value_stops_the_grid_before_any_run(self, tmp_path, tiny_cfg):
        with pytest.raises(ConfigError):
            sweep.run_grid(tiny_cfg, [{"lr": 1e-4}, {"epochs": -1}], [1], tmp_path / "g", Floors(0.9, 0.9))
        assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("keep", ["none", "best", "all"])
def test_keep_models_keeps_what_it_says(tmp_path, tiny_cfg, keep):
    options = sweep.EngineOptions(keep_models=keep, progress=False)
    result = sweep.run_sweep(tiny_cfg, [1, 2], tmp_path, Floors(0.9, 0.9), options=options)
    on_disk = sorted(s for s in (1, 2) if (sweep.seed_dir(tmp_path, s) / "model").is_dir())
    best = max(result["runs"], key=lambda r: r["f1"])["seed"]
    assert on_disk == {"none": [], "best": [best], "all": [1, 2]}[keep]
    assert sorted(map(int, result["models"])) == on_disk and result["keep_models"] == keep
    assert all((sweep.seed_dir(tmp_path, s) / "report.json").is_file() for s in (1, 2))  # reports always stay
