"""The acceptance rules: floors refused at the baseline, point or interval floors, MCC, gap."""

import pytest

from mrpc_check.errors import ConfigError
from mrpc_check.evaluation import analyse, majority_baseline
from mrpc_check.floors import Floors, judge, judge_gap, refuse_at_baseline

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
        with pytest.raises(ConfigError, match=r"majority baseline \(F1 0.8235, accuracy 0.7000"):
            refuse_at_baseline(Floors(min_f1=0.82, min_accuracy=0.9), base)
        with pytest.raises(ConfigError, match="at or below"):
            refuse_at_baseline(Floors(min_f1=0.9, min_accuracy=0.7), base)  # exactly at the baseline
        refuse_at_baseline(Floors(min_f1=0.83, min_accuracy=0.71), base)  # just above: accepted


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
