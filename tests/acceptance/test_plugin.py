"""The pytest plugin, as a user's suite sees it (pytester runs an inner pytest)."""

from pathlib import Path

import pytest

# In-process inner runs drop the modules they imported afterwards, and compiled extensions
# (numpy, torch operator libraries) cannot be imported twice in one process. The light inner runs
# stay in-process with those libraries imported here first; the ones that build models or
# datasets run in a subprocess.
import datasets  # noqa: F401
import torch
import torch.distributed.fsdp  # noqa: F401  (save_pretrained imports it lazily, possibly after an inner run)


@pytest.fixture(scope="module", autouse=True)
def _models_saved_before_inner_runs(tiny_model_dir):
    """save_pretrained imports parts of torch lazily; after an in-process inner run dropped them, that fails."""


@pytest.fixture
def suite(pytester):
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    return pytester


class TestOptions:
    def test_thresholds_default_and_override(self, suite):
        suite.makepyfile(
            """
            def test_floors(mrpc_min_f1, mrpc_min_accuracy, mrpc_model):
                assert (mrpc_min_f1, mrpc_min_accuracy, mrpc_model) == (0.9, 0.78, "my/ckpt")
            """
        )
        suite.runpytest("--mrpc-min-f1=0.9", "--mrpc-model=my/ckpt").assert_outcomes(passed=1)
        suite.runpytest().assert_outcomes(failed=1)  # defaults 0.85 / minilm do not match

    def test_behaviour_thresholds_default_and_override(self, suite):
        suite.makepyfile(
            """
            def test_suite(mrpc_behaviour):
                from mrpc_check.acceptance.behaviour import Threshold

                t = mrpc_behaviour.thresholds
                assert (t["symmetry"], t["negation"], t["identity"], mrpc_behaviour.margin) == (
                    Threshold(0.3), None, Threshold(0.05), 0.2)
                assert t["word_order"] == Threshold(yardstick="overlap", points=0.25)
            """
        )
        given = ("--mrpc-behaviour-symmetry=0.3", "--mrpc-behaviour-margin=0.2", "--mrpc-behaviour-word-order=overlap-25%")
        suite.runpytest(*given).assert_outcomes(passed=1)
        suite.runpytest(*given, "--mrpc-behaviour-negation=0.5").assert_outcomes(failed=1)
        result = suite.runpytest("--mrpc-behaviour-entity-swap=lots")
        assert result.ret != 0
        result.stdout.fnmatch_lines(["*a behaviour threshold is a failure rate in [[]0, 1[]] (0.15), a yardstick less some points*"
                                     "or 'none'; got 'lots'*"])

    def test_options_listed_in_one_group(self, suite):
        result = suite.runpytest("--help")
        result.stdout.fnmatch_lines(["*MRPC fine-tuning checks*", "*--mrpc-data=MRPC_DATA*", "*--mrpc-min-f1=*"])


class TestMarkers:
    def test_markers_are_registered_under_strict_markers(self, suite):
        suite.makepyfile(
            """
            import pytest

            @pytest.mark.slow
            @pytest.mark.distributed
            def test_ok():
                pass

            @pytest.mark.not_a_marker
            def test_bad():
                pass
            """
        )
        result = suite.runpytest()
        result.stdout.fnmatch_lines(["*'not_a_marker' not found in `markers` configuration option*"])
        assert result.ret != 0

    def test_gpu_tests_skip_with_reason_without_cuda(self, suite, monkeypatch):

        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        suite.makepyfile(
            """
            import pytest

            @pytest.mark.gpu
            def test_needs_cuda():
                raise AssertionError("must not run")

            def test_cpu():
                pass
            """
        )
        result = suite.runpytest_inprocess("-rs")
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines(["*needs CUDA*pytest -m gpu*"])


class TestFixtures:
    def test_missing_data_skips_with_the_fix(self, suite, monkeypatch):
        monkeypatch.delenv("MRPC_DATA", raising=False)
        monkeypatch.setattr("mrpc_check.pipeline.config.SHARED_DATA", "no-such-shared-folder")  # nothing beside the checkout
        # Inside a broader run (a test that needs no data); alone, it is a usage error (tests/checks/test_pytest_route.py).
        suite.makepyfile("def test_data(mrpc_raw):\n    assert False\n\ndef test_other():\n    pass\n")
        result = suite.runpytest_inprocess("-rs")
        result.assert_outcomes(skipped=1, passed=1)
        result.stdout.fnmatch_lines(["*no MRPC data: pass --mrpc-data DIR or set MRPC_DATA*"])

    @pytest.mark.integration
    def test_data_option_loads_the_users_folder(self, suite):
        folder = suite.mkdir("glue")
        header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        (folder / "train.tsv").write_text(header + "1\t1\t2\tA .\tA .\n0\t3\t4\tB .\tC .\n")
        (folder / "dev.tsv").write_text(header + "1\t5\t6\tD .\tD .\n")
        suite.makepyfile(
            """
            def test_data(mrpc_raw):
                assert (len(mrpc_raw["train"]), len(mrpc_raw["validation"])) == (2, 1)
            """
        )
        suite.runpytest_subprocess(f"--mrpc-data={folder}").assert_outcomes(passed=1)

    @pytest.mark.integration
    def test_tiny_model_factory_is_seeded(self, suite):
        suite.makepyfile(
            """
            import torch

            def test_same_seed_same_weights(tiny_model_factory):
                a, b, c = tiny_model_factory(seed=1), tiny_model_factory(seed=1), tiny_model_factory(seed=2)
                assert torch.equal(a.classifier.weight, b.classifier.weight)
                assert not torch.equal(a.classifier.weight, c.classifier.weight)
            """
        )
        suite.runpytest_subprocess().assert_outcomes(passed=1)


class TestReport:
    def test_mrpc_record_appends_json_lines(self, suite, tmp_path):
        report = tmp_path / "figures.jsonl"
        suite.makepyfile(
            """
            def test_one(mrpc_record):
                mrpc_record({"loop": "manual", "f1": 0.9})
                mrpc_record({"loop": "accelerate", "f1": 0.8})
            """
        )
        suite.runpytest_inprocess(f"--mrpc-report={report}").assert_outcomes(passed=1)
        import json

        assert [json.loads(line)["loop"] for line in report.read_text().splitlines()] == ["manual", "accelerate"]


    def test_the_battery_route_prints_and_records_the_effective_recipe(self, suite, tmp_path):
        junit = tmp_path / "junit.xml"
        result = suite.runpytest_inprocess("--pyargs", "mrpc_check.checks", "--mrpc-loop", "mrpc_check.checks.broken:ClipsWhenRecipeHasNone",
                                           "-k", "clipping or effective_recipe", f"--junitxml={junit}")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["*MrpcCheckWarning: clipping: WARN: the loop clips at norm 0.5*", "*mrpc_check effective recipe*", "ClipsWhenRecipeHasNone: effective recipe*",
                                     "*+ clipping*clips at global norm 0.5*[[]recipe: none[]]*"])
        assert 'name="mrpc_effective_recipe"' in junit.read_text()


class TestAcceptanceFloors:
    def test_floor_at_or_below_the_majority_baseline_is_refused_before_training(self, suite, glue_dir):
        result = suite.runpytest("--pyargs", "mrpc_check.acceptance", "-m", "slow and not gpu", "--mrpc-data", glue_dir,
                                 "-k", "reaches_the_floor", "--mrpc-loops", "manual,accelerate",
                                 "--mrpc-min-f1", "0.5", "--mrpc-min-accuracy", "0.5", "--mrpc-model", "minilm")
        result.assert_outcomes(failed=2, skipped=1)  # test_your_loop_reaches_the_floor: no --mrpc-loop adapter given
        result.stdout.fnmatch_lines(["*--min-f1 0.5 (baseline f1 0.7857) and --min-accuracy 0.5 (baseline accuracy 0.6471) are at or "
                                     "below the validation majority baseline*pass floors above it*"])

    def test_the_second_loop_is_held_to_the_first_unless_asked_to_train_in_full(self, suite, glue_dir):
        result = suite.runpytest("--pyargs", "mrpc_check.acceptance", "-m", "slow and not gpu", "-k", "reaches_the_floor and accelerate",
                                 "--mrpc-data", glue_dir, "-rs")
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*--mrpc-loops manual: the accelerate loop is held to the manual loop step by step*"])

    def test_your_loop_is_fine_tuned_and_judged_with_mrpc_loop(self, suite, glue_dir, tiny_model_dir):
        loop = f"{Path(__file__).resolve().parents[2] / 'examples' / 'my_loop.py'}:adapter"
        result = suite.runpytest_inprocess("--pyargs", "mrpc_check.acceptance", "-m", "slow and not gpu", "-k", "your_loop",
                                           "--mrpc-loop", loop, "--mrpc-data", glue_dir, "--mrpc-model", tiny_model_dir,
                                           "--mrpc-min-f1", "0.99", "--mrpc-min-accuracy", "0.99")
        # Trained (3 epochs of the walkthrough recipe on the synthetic pairs), then judged: a tiny model fails the floors.
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*validation f1 * < floor 0.99*"])
        assert '"loop": "' + loop in result.stdout.str()

    def test_a_loop_list_it_does_not_know_is_a_usage_error(self, suite):
        result = suite.runpytest("--mrpc-loops", "manual,deepspeed")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--mrpc-loops 'manual,deepspeed': give manual, accelerate or manual,accelerate*"])

    def test_a_checkpoint_nothing_judged_fails_the_session(self, suite, glue_dir, tiny_model_dir):
        """-m 'not slow' deselects the checkpoint test: that is no green run, and one line says what judges it."""
        result = suite.runpytest_inprocess("--pyargs", "mrpc_check.acceptance", "-m", "not slow", "--mrpc-checkpoint", tiny_model_dir,
                                           "--mrpc-data", glue_dir, "-p", "no:randomly")
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines([f"mrpc_check: --mrpc-checkpoint {tiny_model_dir} was given but no test judged it*run pytest "
                                     f"--pyargs mrpc_check.acceptance --mrpc-checkpoint {tiny_model_dir} --mrpc-data {glue_dir}"])

    def test_slow_with_a_checkpoint_judges_it(self, suite, glue_dir, tiny_model_dir):
        result = suite.runpytest_inprocess("--pyargs", "mrpc_check.acceptance", "-m", "slow and not gpu", "--mrpc-checkpoint",
                                           tiny_model_dir, "--mrpc-data", glue_dir, "--mrpc-min-f1", "0.99", "--mrpc-min-accuracy", "0.99")
        # Judged twice (a random tiny head fails the floors and the behaviour tests); the fine-tuning tests skip.
        result.assert_outcomes(failed=2, skipped=4)
        assert "no test judged it" not in result.stdout.str()

    @pytest.mark.integration
    def test_checkpoint_as_is_skips_without_one_and_names_the_flag(self, suite, glue_dir):
        result = suite.runpytest_subprocess("--pyargs", "mrpc_check.acceptance", "-k", "checkpoint_as_is", "--mrpc-data", glue_dir, "-rs")
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*pass --mrpc-checkpoint DIR*"])

    @pytest.mark.integration
    def test_a_pretrained_model_is_not_judged_as_a_fine_tuned_one(self, suite, glue_dir, tiny_model_factory, mrpc_tokenizer, tmp_path):
        folder = tmp_path / "pretrained"
        tiny_model_factory(seed=0).bert.save_pretrained(folder)
        mrpc_tokenizer.save_pretrained(folder)
        result = suite.runpytest_subprocess("--pyargs", "mrpc_check.acceptance", "--mrpc-checkpoint", str(folder),
                                            "--mrpc-data", glue_dir, "-m", "not gpu")
        # Refused by both checkpoint tests (scores, behaviour); the fine-tuning tests (2 floors, 1 loop agreement,
        # 1 user loop) skip: a checkpoint is judged as it is.
        result.assert_outcomes(failed=2, skipped=4)
        result.stdout.fnmatch_lines(["*no trained classification head*"])

    @pytest.mark.integration
    def test_a_model_that_knows_the_answers_passes_in_seconds(self, suite, glue_dir, tiny_model_dir, tmp_path):
        """A model fine-tuned on the validation pairs themselves predicts them all: every rule must pass."""
        import shutil
        import subprocess
        import sys

        memo = tmp_path / "memo"
        memo.mkdir()
        for name in ("train.tsv", "dev.tsv"):
            shutil.copy(f"{glue_dir}/dev.tsv", memo / name)
        trained = subprocess.run([sys.executable, "-m", "mrpc_check", "train", "--model", tiny_model_dir, "--data", str(memo),
                                  "--epochs", "40", "--lr", "2e-3", "--batch-size", "4", "--output-dir", str(tmp_path / "run"),
                                  "--min-f1", "0.999", "--min-accuracy", "0.999"], capture_output=True, text=True, timeout=300)
        assert trained.returncode == 0, trained.stderr[-1500:]
        result = suite.runpytest_subprocess("--pyargs", "mrpc_check.acceptance", "-k", "checkpoint_as_is", "-s",
                                            "--mrpc-checkpoint", str(tmp_path / "run" / "model"), "--mrpc-data", str(memo),
                                            "--mrpc-min-f1", "0.9", "--mrpc-min-accuracy", "0.9", "--mrpc-floor-on", "lower")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(['*"split": "validation", "accuracy": 1.0, "f1": 1.0, "f1_95": [[]1.0, 1.0[]]*'])


class TestSeedSweep:
    def test_seeds_become_parametrized_tests(self, suite):
        suite.makepyfile("def test_run(mrpc_seed):\n    pass\n")
        suite.runpytest_inprocess("--mrpc-seeds", "3", "--collect-only", "-q").stdout.fnmatch_lines(
            ["*test_run[[]seed42[]]", "*test_run[[]seed43[]]", "*test_run[[]seed44[]]"])
        suite.runpytest_inprocess("--mrpc-seeds", "5-6").assert_outcomes(passed=2)
        result = suite.runpytest_inprocess("--mrpc-seeds", "2,2")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*given twice*"])

    RUNS = """
        import pytest

        F1 = {F1}

        @pytest.mark.parametrize("seed", sorted(F1))
        def test_seed(request, seed):
            run = {{"loop": "manual", "seed": seed, "f1": F1[seed], "accuracy": 0.8, "degenerate": None,
                    "interval": {{"f1": [F1[seed] - 0.03, F1[seed] + 0.03], "accuracy": [0.76, 0.84]}},
                    "baseline": {{"f1": 0.8122, "accuracy": 0.6838}}}}
            request.node.user_properties.append(("mrpc_run", run))
        """

    @pytest.mark.parametrize("f1, verdict, code", [({1: 0.80, 2: 0.86, 3: 0.88}, "PASS", 0),
                                                   ({1: 0.80, 2: 0.84, 3: 0.88}, "FAIL: median validation f1 0.8400 < floor 0.85", 1)])
    def test_the_median_of_the_seeds_is_judged_once_at_the_end(self, suite, f1, verdict, code):
        suite.makepyfile(self.RUNS.format(F1=f1))
        result = suite.runpytest_inprocess()
        result.assert_outcomes(passed=3)  # each seed alone was sane: the verdict is the sweep's
        assert result.ret == code
        result.stdout.fnmatch_lines(["*mrpc_check seed sweep*", "*rule: no run degenerate, and median F1 >= 0.85*", f"{verdict}*"])

    @pytest.mark.integration
    def test_the_verdict_gathers_seeds_run_on_xdist_workers(self, suite):
        suite.makepyfile(self.RUNS.format(F1={1: 0.80, 2: 0.84, 3: 0.88, 4: 0.83}))
        result = suite.runpytest_subprocess("-n", "2", "-p", "xdist")
        assert result.ret == 1
        result.stdout.fnmatch_lines(["*median validation f1 0.8350 < floor 0.85*"])
        assert result.stdout.str().count("mrpc_check seed sweep") == 1
