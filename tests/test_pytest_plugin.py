"""The pytest plugin, as a user's suite sees it (pytester runs an inner pytest)."""

import pytest

# In-process inner runs drop the modules they imported afterwards, and compiled extensions
# (numpy, torch operator libraries) cannot be imported twice in one process. The light inner runs
# stay in-process with those libraries imported here first; the ones that build models or
# datasets run in a subprocess.
import datasets  # noqa: F401
import torch


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
        suite.makepyfile("def test_data(mrpc_raw):\n    assert False\n")
        result = suite.runpytest_inprocess("-rs")
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*no MRPC data: pass --mrpc-data DIR or set MRPC_DATA*"])

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


class TestAcceptanceFloors:
    def test_floor_at_or_below_the_majority_baseline_is_refused_before_training(self, suite, glue_dir):
        result = suite.runpytest("--pyargs", "mrpc_check.acceptance", "-m", "slow and not gpu", "--mrpc-data", glue_dir,
                                 "--mrpc-min-f1", "0.5", "--mrpc-min-accuracy", "0.5", "--mrpc-model", "minilm")
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(["*at or below this split's majority baseline (F1 0.*, accuracy 0.*): pass floors above it*"])
