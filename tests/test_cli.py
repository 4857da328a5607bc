"""`mrpc-check` end to end on a tiny model, and every bad input: one line, exit 2, nothing lost."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mrpc_check.cli import main
from mrpc_check.testing import GLUE_HEADER as HEADER


def train(tmp_path, model, data, *extra):
    out = tmp_path / "run"
    return main(["train", "--model", model, "--data", data, "--epochs", "2", "--lr", "1e-3", "--output-dir", str(out), *extra]), out


class TestTrain:
    @pytest.mark.parametrize("loop", ["manual", "accelerate", "trainer"])
    def test_writes_report_model_and_curves(self, tmp_path, tiny_model_dir, glue_dir, capsys, loop, draws_curves):
        rc, out = train(tmp_path, tiny_model_dir, glue_dir, "--loop", loop)
        assert rc == 0
        printed = capsys.readouterr().out
        assert "epoch 1: validation accuracy" in printed and "epoch 2: validation accuracy" in printed
        report = json.loads((out / "report.json").read_text())
        val = report["metrics"]["validation"]
        assert isinstance(val["accuracy"], float) and isinstance(val["f1"], float)
        assert [e["epoch"] for e in report["metrics"]["validation_per_epoch"]] == [1, 2]
        assert report["metrics"]["validation_per_epoch"][-1]["f1"] == val["f1"]
        assert set(report["versions"]) == {"python", "torch", "transformers", "datasets", "evaluate", "accelerate"}
        assert report["config"]["loop"] == loop and report["device"]["type"] == "cpu"
        train_info = report["train"]
        assert train_info["samples"] == 80 and train_info["samples_per_s"] > 0 and train_info["real_tokens_per_s"] > 0
        assert train_info["final_lr"] == 0.0 and train_info["optimizer_steps"] == 10
        # Loss and lr per optimizer step for every loop (the curves show them), whatever --log-every says.
        assert len(report["history"]["loss"]) == len(report["history"]["lr"]) == 10
        assert sorted(p.name for p in out.iterdir()) == ["curves.png", "model", "report.json"]  # nothing else left behind
        assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "tokenizer.json").is_file()
        assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_evaluate_reproduces_the_reported_metrics(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        rc, out = train(tmp_path, tiny_model_dir, glue_dir)
        assert rc == 0
        capsys.readouterr()
        metrics_file = tmp_path / "metrics.json"
        assert main(["evaluate", "--model", str(out / "model"), "--data", glue_dir, "--output", str(metrics_file)]) == 0
        printed = json.loads(capsys.readouterr().out)
        report = json.loads((out / "report.json").read_text())
        assert printed == json.loads(metrics_file.read_text())
        assert printed["examples"] == 17
        assert printed["accuracy"] == report["metrics"]["validation"]["accuracy"]
        assert printed["f1"] == report["metrics"]["validation"]["f1"]

    def test_inspect_shows_shapes_and_a_fresh_loss(self, tiny_model_dir, glue_dir, capsys):
        assert main(["inspect", "--model", tiny_model_dir, "--data", glue_dir]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["splits"]["train"]["rows"] == 40 and info["splits"]["test"]["labels"] == {"unlabelled": 1}
        assert info["batch"]["input_ids"][0] == 8 and info["batch"]["labels"] == [8]
        assert info["logits_shape"] == [8, 2]
        assert abs(info["loss"] - info["ln2"]) < 0.1

    def test_real_data_smoke(self, tmp_path, tiny_model_dir, mrpc_data_source, capsys):
        rc, out = train(tmp_path, tiny_model_dir, mrpc_data_source, "--epochs", "1", "--max-train-samples", "32")
        assert rc == 0
        report = json.loads((out / "report.json").read_text())
        assert report["train"]["samples"] == 32


def expect_one_line_error(capsys, argv, pattern):
    import re

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    # Progress bars of the stages that ran before the failure may precede it; the error is one line, last.
    last = err.splitlines()[-1]
    assert err.count("mrpc-check: error: ") == 1 and last.startswith("mrpc-check: error: ") and "Traceback" not in err
    assert re.search(pattern, last), last


class TestBadInput:
    def test_missing_data_folder(self, tmp_path, tiny_model_dir, capsys):
        expect_one_line_error(capsys, ["train", "--model", tiny_model_dir, "--data", str(tmp_path / "nope"), "--output-dir", str(tmp_path / "o")], "does not exist: pass --data")

    def test_folder_with_neither_layout(self, tmp_path, tiny_model_dir, capsys):
        (tmp_path / "empty").mkdir()
        expect_one_line_error(capsys, ["train", "--model", tiny_model_dir, "--data", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "o")], "neither MRPC layout")

    def test_bad_row_names_file_and_line(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        bad = tmp_path / "bad"
        bad.mkdir()
        for name in ("train.tsv", "dev.tsv"):
            (bad / name).write_text((Path(glue_dir) / name).read_text())
        with open(bad / "dev.tsv", "a") as fh:
            fh.write("1\t9\tbroken row\n")
        expect_one_line_error(capsys, ["train", "--model", tiny_model_dir, "--data", str(bad), "--output-dir", str(tmp_path / "o")], r"dev\.tsv:19: expected 5")

    def test_model_not_on_disk_nor_reachable_offline(self, tmp_path, glue_dir, capsys):
        expect_one_line_error(capsys, ["train", "--model", "nobody/no-such-model", "--data", glue_dir, "--output-dir", str(tmp_path / "o")], "--model minilm")

    def test_model_folder_without_weights(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        folder = tmp_path / "noweights"
        folder.mkdir()
        for f in Path(tiny_model_dir).iterdir():
            if not f.name.endswith(".safetensors"):
                (folder / f.name).write_bytes(f.read_bytes())
        expect_one_line_error(capsys, ["train", "--model", str(folder), "--data", glue_dir, "--output-dir", str(tmp_path / "o")], "no weights")

    @pytest.mark.parametrize("flag,value", [("--batch-size", "0"), ("--epochs", "-1"), ("--lr", "0"), ("--lr", "-5e-5")])
    def test_non_positive_numbers(self, tmp_path, tiny_model_dir, glue_dir, capsys, flag, value):
        expect_one_line_error(capsys, ["train", "--model", tiny_model_dir, "--data", glue_dir, f"{flag}={value}", "--output-dir", str(tmp_path / "o")], flag)

    @pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU-only refusal")
    def test_fp16_and_cuda_without_a_gpu(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        base = ["train", "--model", tiny_model_dir, "--data", glue_dir, "--output-dir", str(tmp_path / "o")]
        expect_one_line_error(capsys, [*base, "--mixed-precision", "fp16"], "fp16 needs a CUDA device")
        expect_one_line_error(capsys, [*base, "--device", "cuda"], "no CUDA device")

    def test_output_folder_not_writable(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        blocker = tmp_path / "file"
        blocker.write_text("a file where a folder should be")
        expect_one_line_error(capsys, ["train", "--model", tiny_model_dir, "--data", glue_dir, "--output-dir", str(blocker / "run")], "not writable")

    def test_finished_run_is_refused_and_kept(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        out = tmp_path / "done"
        out.mkdir()
        (out / "report.json").write_text('{"precious": true}')
        expect_one_line_error(capsys, ["train", "--model", tiny_model_dir, "--data", glue_dir, "--output-dir", str(out)], "--overwrite")
        assert (out / "report.json").read_text() == '{"precious": true}'

    @pytest.mark.parametrize("case,pattern", [
        ("label", r"dev\.tsv:3: label '7' is not 0 or 1"),
        ("empty", r"split 'validation' .* is empty"),
        ("dev_id", r"dev id pair\(s\) not in msr_paraphrase_train\.txt"),
    ])
    def test_bad_labels_empty_split_unknown_dev_id(self, tmp_path, tiny_model_dir, capsys, case, pattern):
        folder = tmp_path / case
        folder.mkdir()
        rows = ["1\t1\t2\tA b .\tA b .", "0\t3\t4\tC d .\tE f ."]
        if case == "dev_id":
            (folder / "msr_paraphrase_train.txt").write_text("\n".join([HEADER, *rows]) + "\n")
            (folder / "dev_ids.tsv").write_text("3\t4\n98\t99\n")
        else:
            dev = {"label": [rows[0], "7\t5\t6\tG .\tH ."], "empty": []}[case]
            (folder / "train.tsv").write_text("\n".join([HEADER, *rows]) + "\n")
            (folder / "dev.tsv").write_text("\n".join([HEADER, *dev]) + "\n")
        expect_one_line_error(capsys, ["train", "--model", tiny_model_dir, "--data", str(folder), "--output-dir", str(tmp_path / "o")], pattern)

    def test_checkpoint_with_another_number_of_labels(self, tmp_path, tiny_model_factory, mrpc_tokenizer, glue_dir, capsys):
        folder = tmp_path / "three"
        tiny_model_factory(num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2}).save_pretrained(folder)
        mrpc_tokenizer.save_pretrained(folder)
        expect_one_line_error(capsys, ["train", "--model", str(folder), "--data", glue_dir, "--output-dir", str(tmp_path / "o")], "head of another size")

    def test_unlabelled_test_split(self, tiny_model_dir, glue_dir, capsys):
        expect_one_line_error(capsys, ["evaluate", "--model", tiny_model_dir, "--data", glue_dir, "--split", "test"], "no labels")

    @pytest.mark.integration
    def test_as_a_process_no_traceback(self, tmp_path):
        proc = subprocess.run([sys.executable, "-m", "mrpc_check", "train", "--data", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr and proc.stderr.count("mrpc-check: error:") == 1


class TestInputsThatMustWork:
    def test_crlf_bom_empty_unicode_and_overlong_sentences_train(self, tmp_path, tiny_model_dir, capsys):
        folder = tmp_path / "odd"
        folder.mkdir()
        # Far past max_length. (Not thousands of words: the tokenizer's longest_first pair truncation
        # slows down quadratically with length: ~16 s for 6 pairs of 2,000 words.)
        long = " ".join(["paraphrase"] * 300)
        rows = ["1\t1\t2\t\tÇa va ? — “oui” 東京 🙂", "0\t3\t4\tnaïve café\t", f"1\t5\t6\t{long}\t{long}", "0\t7\t8\tA b .\tC d ."] * 3
        for name in ("train.tsv", "dev.tsv"):
            text = "\r\n".join([HEADER, *rows]) + "\r\n"
            (folder / name).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        out = tmp_path / "run"
        assert main(["train", "--model", tiny_model_dir, "--data", str(folder), "--epochs", "1", "--max-length", "64", "--output-dir", str(out)]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["train"]["samples"] == 12
        assert 0.0 <= report["metrics"]["validation"]["accuracy"] <= 1.0


class TestFastPreset:
    @pytest.mark.parametrize("native", [True, False])
    def test_fast_sets_the_preset_and_explicit_flags_win(self, monkeypatch, capsys, native):
        import mrpc_check.pipeline.config as config
        from mrpc_check.cli import _config_from, build_parser

        monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: native)
        cfg = _config_from(build_parser().parse_args(["train", "--fast", "--lr", "3e-5", "--device", "cpu"]))
        assert cfg.lr == 3e-5
        assert all(getattr(cfg, k) == v for k, v in config.FAST_PRESET.items() if k not in ("lr", "mixed_precision"))
        # bf16 only where the CPU multiplies it natively; elsewhere fp32, and one line says why.
        assert cfg.mixed_precision == ("bf16" if native else "no")
        said = capsys.readouterr().err.strip().splitlines()
        assert len(said) == 1 and said[0].startswith("--fast: ")  # one line says what --fast changed
        assert "--dropout 0.0" in said[0] and "--freeze-layers" in said[0] and "--lr" not in said[0]  # not what the user set
        assert ("no native bf16" in said[0]) == (not native)
        forced = _config_from(build_parser().parse_args(["train", "--fast", "--device", "cpu", "--mixed-precision", "bf16"]))
        assert forced.mixed_precision == "bf16"
        plain = _config_from(build_parser().parse_args(["train"]))
        assert (plain.batch_size, plain.lr, plain.group_by_length, plain.mixed_precision) == (8, 5e-5, False, "no")


class TestAcceptanceFlags:
    def test_a_floor_at_the_majority_baseline_is_refused_before_training(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        rc, out = train(tmp_path, tiny_model_dir, glue_dir, "--min-f1", "0.5")
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1
        # 11 of the 17 dev pairs are "equivalent"; only the F1 floor is at the baseline, so only it is named
        assert err.endswith("--min-f1 0.5 (baseline f1 0.7857) is at or below the validation majority baseline (always class 1, "
                            "17 examples): a model that ignores its input passes; pass a floor above it")
        assert not (out / "report.json").exists() and not (out / "model").exists()

    def test_below_the_floors_exits_1_after_writing_the_results(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        rc, out = train(tmp_path, tiny_model_dir, glue_dir, "--min-f1", "0.99", "--min-accuracy", "0.99")
        err = capsys.readouterr().err
        report = json.loads((out / "report.json").read_text())
        assert rc == 1 and (out / "model" / "model.safetensors").is_file()
        assert report["floors"]["passed"] is False and report["floors"]["min_f1"] == 0.99
        assert all(f in err for f in report["floors"]["failures"]) and "below the floors" in err
        analysis = report["metrics"]["validation_analysis"]
        assert sum(map(sum, analysis["confusion"]["matrix"])) == 17
        low, high = analysis["interval"]["f1"]
        assert low <= report["metrics"]["validation"]["f1"] <= high

    def test_labelled_test_split_is_scored_and_its_gap_bounded(self, tmp_path, tiny_model_dir, raw_dir, capsys):
        rc, out = train(tmp_path, tiny_model_dir, raw_dir, "--min-f1", "0.99", "--min-accuracy", "0.99", "--max-gap", "0")
        report = json.loads((out / "report.json").read_text())
        m = report["metrics"]
        assert m["test_baseline"]["examples"] == 23 and sum(map(sum, m["test_analysis"]["confusion"]["matrix"])) == 23
        assert m["validation_test_gap"]["f1"] == pytest.approx(m["validation"]["f1"] - m["test"]["f1"])
        gap_failed = any("--max-gap 0" in f for f in report["floors"]["failures"])
        assert rc == 1 and gap_failed == (m["validation_test_gap"]["f1"] != 0)
        capsys.readouterr()
        # The saved model, reloaded by `evaluate`, scores the test split as the run did in memory.
        assert main(["evaluate", "--model", str(out / "model"), "--data", raw_dir, "--split", "test"]) == 0
        scored = json.loads(capsys.readouterr().out)
        assert (scored["accuracy"], scored["f1"]) == (m["test"]["accuracy"], m["test"]["f1"])
        assert scored["analysis"]["confusion"] == m["test_analysis"]["confusion"]

    def test_evaluate_refuses_a_model_without_a_trained_head(self, tmp_path, tiny_model_factory, mrpc_tokenizer, glue_dir, capsys):
        folder = tmp_path / "pretrained"
        tiny_model_factory(seed=0).bert.save_pretrained(folder)  # the encoder alone, as a pretrained checkpoint ships
        mrpc_tokenizer.save_pretrained(folder)
        assert main(["evaluate", "--model", str(folder), "--data", glue_dir]) == 2
        err = capsys.readouterr().err.strip()
        assert "no trained classification head" in err.splitlines()[-1] and "fine-tune it first" in err.splitlines()[-1]
        assert "LOAD REPORT" not in err  # transformers' multi-line table is replaced by our one line

    def test_evaluate_refuses_a_headless_model_before_tokenizing(self, tmp_path, tiny_model_factory, mrpc_tokenizer, glue_dir,
                                                                 capsys, monkeypatch):
        import mrpc_check.pipeline.run as pipeline

        folder = tmp_path / "pretrained"
        tiny_model_factory(seed=0).bert.save_pretrained(folder)
        mrpc_tokenizer.save_pretrained(folder)
        tokenized = []
        monkeypatch.setattr(pipeline, "tokenize_dataset", lambda *a, **k: tokenized.append(a) or pytest.fail("tokenized first"))
        assert main(["evaluate", "--model", str(folder), "--data", glue_dir]) == 2
        assert not tokenized and "no trained classification head" in capsys.readouterr().err

    def test_evaluate_says_a_degenerate_model_on_one_line(self, tmp_path, tiny_model_factory, mrpc_tokenizer, glue_dir, capsys):
        import torch

        model = tiny_model_factory(seed=0)
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor([-5.0, 5.0]))  # always "equivalent"
        folder = tmp_path / "always-1"
        model.save_pretrained(folder)
        mrpc_tokenizer.save_pretrained(folder)
        assert main(["evaluate", "--model", str(folder), "--data", glue_dir]) == 0  # no floors: said, not failed
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == "mrpc-check: warning: degenerate model on validation: predicts only class 1 on all 17 validation examples"
        assert main(["evaluate", "--model", str(folder), "--data", glue_dir, "--min-f1", "0.9"]) == 1
        assert "degenerate" in capsys.readouterr().err

    def test_evaluate_judges_the_floors(self, tiny_model_dir, glue_dir, capsys):
        assert main(["evaluate", "--model", tiny_model_dir, "--data", glue_dir, "--min-f1", "0.95"]) == 1
        printed = json.loads(capsys.readouterr().out)
        assert printed["floors"]["passed"] is False and printed["baseline"]["examples"] == 17

    @pytest.mark.parametrize("flags, pattern", [(["--seeds", "3-1"], "runs backwards"), (["--seeds", "1", "--jobs", "0"], "--jobs"),
                                                (["--seeds", "1", "--min-f1", "0.6"], "majority baseline")])
    def test_sweep_bad_input_is_one_line(self, tmp_path, tiny_model_dir, glue_dir, capsys, flags, pattern):
        rc = main(["sweep", "--model", tiny_model_dir, "--data", glue_dir, "--output-dir", str(tmp_path / "s"), *flags])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and pattern in err


class TestHubWithoutNetwork:
    @pytest.mark.parametrize("model, data, said", [("someone/some-model", "glue", "model 'someone/some-model' is not a local folder"),
                                                   ("tiny", "hub", "could not load nyu-mll/glue/mrpc")])
    @pytest.mark.integration
    def test_an_unreachable_hub_fails_in_seconds_with_one_line(self, tmp_path, tiny_model_dir, glue_dir, model, data, said):
        import os
        import time

        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there: the connection is refused
        env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache
        args = ["--model", tiny_model_dir if model == "tiny" else model, "--data", glue_dir if data == "glue" else data]
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "mrpc_check", "train", *args, "--output-dir", str(tmp_path / "run")],
                              capture_output=True, text=True, env=env, timeout=120)
        elapsed = time.monotonic() - started
        lines = [line for line in done.stderr.splitlines() if line.strip() and "it/s]" not in line and "examples/s]" not in line]
        assert done.returncode == 2 and lines == [lines[-1]] and said in lines[-1] and "unreachable" in lines[-1], done.stderr[-2000:]
        # Interpreter and imports take ~7 s here; the retry loop this replaces added 27-50 s on top.
        assert "Retry" not in done.stderr and elapsed < 30
        assert not (tmp_path / "run").exists()


class TestConfigFile:
    def test_a_reports_config_reruns_the_same_run(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        rc, first = train(tmp_path, tiny_model_dir, glue_dir, "--seed", "5", "--grad-accum", "2", "--warmup-ratio", "0.1")
        assert rc == 0
        again = tmp_path / "again"
        assert main(["train", "--config", str(first / "report.json"), "--output-dir", str(again)]) == 0
        a, b = (json.loads((d / "report.json").read_text()) for d in (first, again))
        assert {**a["config"], "output_dir": None} == {**b["config"], "output_dir": None}
        assert a["metrics"]["validation"] == b["metrics"]["validation"] and a["history"] == b["history"]
        assert b["run"]["command"] == f"mrpc-check train --config {first / 'report.json'} --output-dir {again}"

    def test_toml_flags_win_and_print_config_trains_nothing(self, tmp_path, capsys):
        recipe = tmp_path / "recipe.toml"
        recipe.write_text('lr = 0.0002\nepochs = 7\nmodel = "minilm"\nmax_grad_norm = 1.0\n')
        assert main(["train", "--config", str(recipe), "--epochs", "2", "--print-config", "--output-dir", str(tmp_path / "o")]) == 0
        cfg = json.loads(capsys.readouterr().out)
        assert (cfg["lr"], cfg["epochs"], cfg["model"], cfg["max_grad_norm"]) == (0.0002, 2, "minilm", 1.0)
        assert not (tmp_path / "o").exists()

    @pytest.mark.parametrize("text, name, pattern", [('{"lrr": 1}', "c.json", "unknown key.*lrr"), ("{oops", "c.json", "not valid JSON"),
                                                     ("lr = ", "c.toml", "not valid TOML"), ('{"lr": "fast"}', "c.json", "--lr must be float"),
                                                     ("[1, 2]", "c.json", "expected a table")])
    def test_bad_files_are_one_line(self, tmp_path, capsys, text, name, pattern):
        path = tmp_path / name
        path.write_text(text)
        expect_one_line_error(capsys, ["train", "--config", str(path), "--output-dir", str(tmp_path / "o")], pattern)

    def test_every_train_flag_says_what_it_does_and_its_default(self):
        from mrpc_check.cli import build_parser

        train_parser = build_parser().recipe_parsers["train"]
        for action in train_parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and len(action.help) > 15, action.option_strings
                assert "[" in action.help or action.dest == "print_config", action.option_strings  # [default]


class TestReportProvenance:
    def test_when_how_and_from_what_with_normalised_paths(self, tmp_path, tiny_model_dir, glue_dir, monkeypatch):
        monkeypatch.chdir(tmp_path)
        roundabout = f"{glue_dir}/../{Path(glue_dir).name}"  # the same folder, the way a relative path often names it
        assert main(["train", "--model", tiny_model_dir, "--data", roundabout, "--epochs", "1", "--output-dir", "out"]) == 0
        report = json.loads((tmp_path / "out" / "report.json").read_text())
        assert report["config"]["data"] == str(Path(glue_dir).resolve()) and ".." not in report["config"]["data"]
        assert report["config"]["output_dir"] == str(tmp_path / "out")
        run = report["run"]
        assert run["command"].startswith("mrpc-check train --model") and run["mrpc_check"] == __import__("mrpc_check").__version__
        assert run["timestamp"].endswith("+00:00") and (run["git_commit"] is None or len(run["git_commit"]) == 40)


class TestFloorFlags:
    @pytest.mark.parametrize("argv, expected", [
        (["train"], None),
        (["train", "--floor-on", "lower"], (0.85, 0.78, "lower", None)),  # asking for interval floors turns floors on
        (["train", "--min-f1", "0.88"], (0.88, 0.78, "point", None)),
        (["evaluate", "--model", "m", "--max-gap", "0.05"], (0.85, 0.78, "point", 0.05)),
        (["sweep", "--seeds", "1"], (0.85, 0.78, "point", None)),  # a sweep is always judged
    ])
    def test_which_floors_a_command_line_sets(self, argv, expected):
        from mrpc_check.cli import _floors_from, build_parser

        floors = _floors_from(build_parser().parse_args(argv), required=argv[0] == "sweep")
        assert (None if floors is None else (floors.min_f1, floors.min_accuracy, floors.on, floors.max_gap)) == expected
