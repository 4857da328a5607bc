"""The acceptance rules: floors refused at the baseline, point or interval floors, MCC, gap."""

import pytest

from mrpc_check.errors import ConfigError
from mrpc_check.pipeline.stats import analyse, majority_baseline
from mrpc_check.acceptance.floors import Floors, judge, judge_gap, refuse_at_baseline

# 20 validation pairs, 14 "equivalent" (70 %): always answering 1 scores accuracy 0.7, F1 14/17.
LABELS = [1] * 14 + [0] * 6


def scored(predictions, labels=LABELS):
    analysis = analyse(predictions, labels)
    (tn, fp), (fn, tp) = analysis["confusion"]["matrix"]
    return {"accuracy": (tp + tn) / len(labels), "f1": 2 * tp / (2 * tp + fp + fn)}, analysis


class TestFloors:
    @pytest.mark.parametrize("kwargs, pattern", [({"on": "upper"}, "--floor-on"), ({"min_f1": 0.0}, "--min-f1"),
                                                 ({"min_accuracy": 1.5}, "--min-accuracy"), ({"max_gap": -0.1}, "--max-gap")])
    def test_bad_values_name_the_flag(self, kwargs, pattern):
        with pytest.raises(ConfigError, match=pattern):
            Floors(**kwargs)


class TestRefuseAtBaseline:
    def test_floor_at_or_below_the_baseline_is_refused_with_the_numbers(self):
        base = majority_baseline(LABELS)
        assert (base["accuracy"], base["f1"]) == (pytest.approx(0.7), pytest.approx(14 / 17))
        with pytest.raises(ConfigError, match=r"^--min-f1 0.82 \(baseline f1 0.8235\) is at or below the validation majority "
                                              r"baseline \(always class 1, 20 examples\)"):
            refuse_at_baseline(Floors(min_f1=0.82, min_accuracy=0.9), base)
        with pytest.raises(ConfigError, match=r"^--min-accuracy 0.7 \(baseline accuracy 0.7000\) is at or below"):
            refuse_at_baseline(Floors(min_f1=0.9, min_accuracy=0.7), base)  # exactly at the baseline: only that floor named
        refuse_at_baseline(Floors(min_f1=0.83, min_accuracy=0.71), base)  # just above: accepted


# A split where "not equivalent" is the majority (a user's subset, a balanced resample gone the other
# way): 14 of 20 pairs are class 0. Always answering 0 scores accuracy 0.7 and F1 0 (no true positive).
CLASS0 = [0] * 14 + [1] * 6
TIE = [0, 1] * 10


class TestMajorityClassZero:
    def test_the_baseline_is_the_majority_class_not_class_1(self):
        base = majority_baseline(CLASS0)
        assert base == {"label": 0, "accuracy": pytest.approx(0.7), "f1": 0.0, "examples": 20}

    def test_on_an_exact_tie_the_baseline_is_the_stricter_constant_answer(self):
        # Both classes score accuracy 0.5; always 1 scores F1 2/3, always 0 scores 0: the floor must clear 2/3.
        assert majority_baseline(TIE) == {"label": 1, "accuracy": 0.5, "f1": pytest.approx(2 / 3), "examples": 20}
        with pytest.raises(ConfigError, match=r"--min-f1 0.6 \(baseline f1 0.6667\)"):
            refuse_at_baseline(Floors(min_f1=0.6, min_accuracy=0.9), majority_baseline(TIE))
        with pytest.raises(ConfigError, match=r"--min-accuracy 0.5 \(baseline accuracy 0.5000\) is at or below .*always class 1"):
            refuse_at_baseline(Floors(min_f1=0.9, min_accuracy=0.5), majority_baseline(TIE))

    def test_the_floor_refusal_uses_class_0(self):
        base = majority_baseline(CLASS0)
        # An accuracy floor of 0.65 is cleared by always answering 0 (0.7): refused, naming class 0.
        with pytest.raises(ConfigError, match=r"^--min-accuracy 0.65 \(baseline accuracy 0.7000\) is at or below the validation "
                                              r"majority baseline \(always class 0, 20 examples\)"):
            refuse_at_baseline(Floors(min_f1=0.5, min_accuracy=0.65), base)
        refuse_at_baseline(Floors(min_f1=0.5, min_accuracy=0.75), base)  # above what always 0 scores: accepted

    def test_the_degenerate_flag_uses_class_0(self):
        # Always 0: one class. Mostly 0 with two wrong 1s: both classes, but no better than always 0.
        assert "only class 0" in analyse([0] * 20, CLASS0)["degenerate"]
        worse = [0] * 12 + [1, 1] + [0] * 6  # accuracy 0.6, F1 0
        assert "at or below the majority baseline (0.7000, 0.0000)" in analyse(worse, CLASS0)["degenerate"]
        good = [0] * 14 + [1] * 5 + [0]  # accuracy 0.95
        assert analyse(good, CLASS0)["degenerate"] is None
        metrics, analysis = scored(worse, CLASS0)
        assert any("degenerate" in f for f in judge(metrics, analysis, Floors(min_f1=0.5, min_accuracy=0.75)))


class TestJudge:
    def test_the_majority_answer_fails_even_a_floor_it_clears(self):
        # A floor the baseline clears would be refused, but judge() alone must still catch the run.
        metrics, analysis = scored([1] * 20)
        failures = judge(metrics, analysis, Floors(min_f1=0.5, min_accuracy=0.5))
        assert any("degenerate" in f for f in failures) and any("Matthews" in f for f in failures)

    def test_good_run_passes_on_the_point_estimate_and_fails_on_the_lower_bound(self):
        predictions = LABELS[:]
        predictions[0], predictions[-1] = 0, 1  # 18 of 20 right
        metrics, analysis = scored(predictions)
        floors = Floors(min_f1=0.85, min_accuracy=0.8)
        assert judge(metrics, analysis, floors) == []
        assert analysis["interval"]["f1"][0] < 0.85  # 20 pairs: a wide interval
        failures = judge(metrics, analysis, Floors(min_f1=0.85, min_accuracy=0.8, on="lower"))
        assert failures and all("95 % lower bound" in f for f in failures)

    def test_below_the_floor_names_estimate_interval_and_baseline(self):
        predictions = LABELS[:]
        predictions[:3] = [0, 0, 0]  # 17 of 20 right, F1 22/25 = 0.88
        metrics, analysis = scored(predictions)
        failures = judge(metrics, analysis, Floors(min_f1=0.9, min_accuracy=0.8))
        assert len(failures) == 1 and "f1 0.8800 < floor 0.9" in failures[0] and "majority baseline 0.8235" in failures[0]

    def test_inverted_predictions_fail_on_matthews(self):
        metrics, analysis = scored([1 - y for y in LABELS])
        assert any("Matthews correlation -1.0000" in f for f in judge(metrics, analysis, Floors()))

    def test_sweep_seed_is_judged_without_floors(self):
        predictions = LABELS[:]
        predictions[:3] = [0, 0, 0]
        metrics, analysis = scored(predictions)
        assert judge(metrics, analysis, Floors(min_f1=0.99, min_accuracy=0.99), apply_floors=False) == []


class TestJudgeGap:
    def test_gap_checked_only_when_asked(self):
        assert judge_gap({"f1": 0.9}, {"f1": 0.8}, Floors()) == []
        assert judge_gap({"f1": 0.9}, {"f1": 0.86}, Floors(max_gap=0.05)) == []
        (failure,) = judge_gap({"f1": 0.9}, {"f1": 0.8}, Floors(max_gap=0.05))
        assert "0.1000 > --max-gap 0.05" in failure
