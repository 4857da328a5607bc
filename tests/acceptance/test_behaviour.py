"""The behaviour suite: its edits exactly, its verdicts on classifiers with known flaws (each caught by
the test aimed at it), the contract every predictor is held to, and one figure wherever it is shown
(behave, evaluate, report.json)."""

import json
from collections import Counter

import pytest

from mrpc_check.acceptance import behaviour as b
from mrpc_check.cli import main

# A small split with what every test needs: auxiliaries, shared numbers, names, contractions,
# "percent", typographic quotes, and both labels.
PAIRS = [
    ("Smith told Jones the deal was worth 40 million dollars .", "On Friday Smith said to Jones the deal was worth 40 million dollars .", 1),
    ("The company 's shares rose 5 percent on Monday .", "Shares of the company rose 5 percent on Monday .", 1),
    ("Apple will buy Intel for 20 billion .", "Reports say Apple is buying Intel for 20 billion .", 1),
    ("He doesn 't think the plan can work .", "He does not believe the plan can work .", 1),
    ("Officials said 12 people were hurt in the blast .", "Twelve people were injured in the explosion , officials said .", 1),
    ("The senator voted against the bill .", "The bill passed the senate on Tuesday .", 0),
    ("Rain is expected in Boston this weekend .", "Microsoft reported higher profits in 2003 .", 0),
    ("Paris beat London in the final vote .", "\u201cParis won the vote against London ,\u201d she said .", 1),
    ("Prices fell 3 % in March .", "Prices dropped 3 % in March .", 1),
    ("They won 't sign the treaty .", "They will not sign the treaty .", 1),
]
SPLIT_PAIRS = [(a, c) for a, c, _ in PAIRS]
LABELS = [y for _, _, y in PAIRS]
NOBODY = b.Suite(thresholds={name: None for name in b.TEST_NAMES})


def rates(result):
    return {t["name"]: t["failure_rate"] for t in result["tests"]}


class TestEdits:
    def test_final_punctuation(self):
        assert b.drop_final_punctuation("It rose .") == "It rose"
        assert b.drop_final_punctuation("It rose!") == "It rose"
        assert b.drop_final_punctuation("It rose") is None

    def test_percent_both_ways(self):
        assert b.exchange_percent("up 5 % today") == "up 5 percent today"
        assert b.exchange_percent("up 5% today") == "up 5 percent today"
        assert b.exchange_percent("up 5 percent today") == "up 5 % today"
        assert b.exchange_percent("up five points") is None

    @pytest.mark.parametrize("before, after", [
        ("He doesn 't know", "He does not know"), ("He doesn't know", "He does not know"),
        ("They won 't go", "They will not go"), ("I ca n't say", "I can not say"), ("We can't", "We can not"),
        ("They 're here and we 've won", "They are here and we have won"), ("I 'm sure you'll see", "I am sure you will see"),
    ])
    def test_contractions_raw_and_as_glue_tokenizes_them(self, before, after):
        assert b.expand_contractions(before) == after

    def test_possessive_s_is_left_alone(self):
        assert b.expand_contractions("the company 's plan") is None

    def test_quotes(self):
        assert b.plain_quotes("\u201cyes\u201d he said") == '"yes" he said'
        assert b.plain_quotes("`` yes '' he said") == '" yes " he said'
        assert b.plain_quotes('"yes" he said') is None

    def test_not_after_the_first_auxiliary_not_yet_negated(self):
        assert b.insert_not("The plan was approved") == "The plan was not approved"
        assert b.insert_not("It is not red but is blue") == "It is not red but is not blue"
        assert b.insert_not("Prices fell") is None

    def test_numbers(self):
        assert b.changed_number("40") == "81" and b.changed_number("2003") == "2010" and b.changed_number("1.25") == "3.25"
        assert b.change_shared_number("rose 5 percent", "up 5 points , 5 times") == "up 11 points , 11 times"
        assert b.change_shared_number("rose 5 percent", "up 6 points") is None

    def test_entity_swap_keeps_the_words(self):
        before = "Yesterday Smith told Jones that Smith won"
        after = b.swap_entities(before)
        assert after == "Yesterday Jones told Smith that Smith won"
        assert Counter(after.split()) == Counter(before.split())
        assert b.swap_entities("Smith told Smith") is None  # one name: nothing to exchange
        assert b.swap_entities("The man met Monday in October") is None  # not names


class TestGeneration:
    def test_cases_per_test_on_the_small_split(self):
        result = b.run_suite(b.overlap_classifier, SPLIT_PAIRS, LABELS, NOBODY)
        cases = {t["name"]: t["cases"] for t in result["tests"]}
        distinct = len({s for pair in SPLIT_PAIRS for s in pair})
        assert cases["symmetry"] == len(PAIRS) and cases["unrelated"] == len(PAIRS) and cases["identity"] == distinct
        positives = [(a, c) for a, c, y in PAIRS if y == 1]
        assert cases["negation"] == sum(b.insert_not(c) is not None for _, c in positives)
        assert cases["numbers"] == sum(b.change_shared_number(a, c) is not None for a, c in positives)
        assert cases["entity_swap"] == sum(b.swap_entities(c) is not None for _, c in positives) >= 2
        assert cases["surface"] == sum(fn(c) is not None for _, c in SPLIT_PAIRS for fn in b.SURFACE_EDITS.values())

    def test_unrelated_pairs_are_a_derangement(self):
        cases = b.TESTS["unrelated"].generate(SPLIT_PAIRS, LABELS)
        assert all(case.after not in SPLIT_PAIRS for case in cases)
        assert sorted(case.after[1] for case in cases) == sorted(c for _, c in SPLIT_PAIRS)

    def test_a_split_without_numbers_or_labels_skips_with_the_reason(self):
        pairs = [("A cat sat .", "A cat was sitting ."), ("Dogs bark .", "Birds sing .")]
        result = b.run_suite(b.overlap_classifier, pairs, [1, 0])
        numbers = next(t for t in result["tests"] if t["name"] == "numbers")
        assert numbers["cases"] == 0 and numbers["status"] == "skip" and numbers["failure_rate"] is None
        assert "no pairs labelled equivalent sharing a number" in numbers["reason"]
        unlabelled = b.run_suite(b.overlap_classifier, pairs, [-1, -1])
        for test in unlabelled["tests"]:
            if test["type"] == "DIR" or test["name"] in ("original", "word_order"):
                assert test["status"] == "skip" and test["reason"] == "0 cases: no labels on this split", test
        assert "skipped" in b.format_table(unlabelled)

    def test_one_call_on_distinct_pairs(self):
        calls = []

        def predict(pairs):
            calls.append(list(pairs))
            return b.overlap_classifier(pairs)

        b.run_suite(predict, SPLIT_PAIRS, LABELS)
        assert len(calls) == 1 and len(calls[0]) == len(set(calls[0]))


class TestCalibration:
    """Each reference classifier with a known flaw is caught by the test aimed at it, and only a test
    it really fails fails: the suite's reach and its precision."""

    def test_bag_of_words_passes_symmetry_and_identity_and_fails_the_directional_tests(self):
        r = b.run_suite(b.overlap_classifier, SPLIT_PAIRS, LABELS, NOBODY)
        assert rates(r)["symmetry"] == 0.0 and rates(r)["identity"] == 0.0
        for name in b.CALIBRATION["overlap"]:
            assert rates(r)[name] >= 0.5, (name, rates(r))

    def test_first_sentence_reader_fails_symmetry(self):
        r = b.run_suite(b.first_sentence_classifier, SPLIT_PAIRS, LABELS)
        assert "symmetry" in r["failed"]

    def test_majority_class_fails_unrelated(self):
        r = b.run_suite(b.constant_classifier(1), SPLIT_PAIRS, LABELS)
        assert "unrelated" in r["failed"] and rates(r)["unrelated"] == 1.0

    def test_a_classifier_that_reads_meaning_passes_the_directional_tests(self):
        """An oracle for the edits: it lowers P(equivalent) when the two sentences' negations, numbers or
        name order differ, so the DIR tests must pass it (they can tell right from wrong)."""
        import re

        def facts(s):
            words = s.split()
            negations = sum(w in ("not", "n't", "'t", "never") for w in words)
            numbers = {w for w in words if re.match(r"^\d", w)}
            names = [w for w in words if re.match(r"^[A-Z][a-z]+$", w) and w not in b._NOT_NAMES]
            return negations, numbers, names

        def predict(pairs):
            out = []
            for a, c in pairs:
                (nega, numa, namesa), (negc, numc, namesc) = facts(a), facts(c)
                shared = [n for n in namesa if n in namesc]
                clash = nega != negc or (numc and numc != numa) or shared != [n for n in namesc if n in shared]
                out.append(0.1 if clash else 0.9)
            return out

        r = b.run_suite(predict, SPLIT_PAIRS, LABELS, NOBODY)
        for name in ("negation", "numbers", "entity_swap"):
            assert rates(r)[name] == 0.0, (name, r)

    def test_on_real_mrpc_validation(self, mrpc_raw):
        split = mrpc_raw["validation"]
        overlap = rates(b.suite_on_split(b.overlap_classifier, split, NOBODY))
        assert overlap["symmetry"] == overlap["identity"] == 0.0
        assert min(overlap[n] for n in b.CALIBRATION["overlap"]) > 0.5, overlap
        assert "symmetry" in b.suite_on_split(b.first_sentence_classifier, split)["failed"]
        assert "unrelated" in b.suite_on_split(b.constant_classifier(1), split)["failed"]


class TestPredictorContract:
    @pytest.mark.parametrize("bad, said", [
        (lambda pairs: [0.5] * (len(pairs) - 1), "values of shape"),
        (lambda pairs: [1.5] * len(pairs), r"outside \[0, 1\]"),
        (lambda pairs: [float("nan")] * len(pairs), "NaN"),
        (lambda pairs: 1 / 0, "raised ZeroDivisionError"),
        (lambda pairs: ["equivalent"] * len(pairs), "not numbers"),
    ])
    def test_a_bad_predictor_is_named_on_one_line(self, bad, said):
        with pytest.raises(b.PredictorError, match=said) as caught:
            b.run_suite(bad, SPLIT_PAIRS, LABELS)
        assert "\n" not in str(caught.value)

    def test_tensors_and_generators_are_accepted(self):
        import torch

        as_tensor = lambda pairs: torch.tensor(b.overlap_classifier(pairs), requires_grad=True)  # noqa: E731
        as_generator = lambda pairs: (p for p in b.overlap_classifier(pairs))  # noqa: E731
        expected = rates(b.run_suite(b.overlap_classifier, SPLIT_PAIRS, LABELS, NOBODY))
        for predict in (as_tensor, as_generator):
            assert rates(b.run_suite(predict, SPLIT_PAIRS, LABELS, NOBODY)) == pytest.approx(expected)

    def test_both_class_probabilities_are_refused_naming_the_shape(self):
        with pytest.raises(b.PredictorError, match=r"shape \(\d+, 2\).*exactly one P\(equivalent\) per pair"):
            b.run_suite(lambda pairs: [[0.3, 0.7]] * len(pairs), SPLIT_PAIRS, LABELS)

    def test_cli_bad_predictor_exits_2_with_one_line(self, tmp_path, glue_dir, capsys):
        (tmp_path / "mine.py").write_text("def predict(pairs):\n    return [2.0 for _ in pairs]\n")
        assert main(["behave", "--predictor", f"{tmp_path / 'mine.py'}:predict", "--data", glue_dir]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "outside [0, 1]" in err[0] and "Traceback" not in err[0]

    def test_cli_missing_function_exits_2(self, tmp_path, glue_dir, capsys):
        (tmp_path / "mine.py").write_text("x = 1\n")
        assert main(["behave", "--predictor", f"{tmp_path / 'mine.py'}:predict", "--data", glue_dir]) == 2
        assert "has no attribute 'predict'" in capsys.readouterr().err

    def test_a_users_predictor_file_imports_its_neighbours(self, tmp_path, glue_dir, capsys):
        (tmp_path / "helper.py").write_text("def p(pairs):\n    return [0.9 if a.split()[0] == c.split()[0] else 0.1 for a, c in pairs]\n")
        (tmp_path / "mine.py").write_text("from helper import p\n\ndef predict(pairs):\n    return p(pairs)\n")
        out = tmp_path / "b.json"
        code = main(["behave", "--predictor", f"{tmp_path / 'mine.py'}:predict", "--data", glue_dir, "--json", str(out)])
        result = json.loads(out.read_text())
        assert code == (1 if result["failed"] else 0)
        for test in result["tests"]:
            assert set(test) >= {"name", "type", "capability", "cases", "failures", "failure_rate", "threshold", "status", "examples"}
        assert "test " in capsys.readouterr().out  # the table's header


class TestModelPredictor:
    def test_probabilities_are_the_models_softmax_in_the_order_given(self, tiny_model_dir):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        predict = b.model_predictor(tiny_model_dir, batch_size=3)
        got = predict(SPLIT_PAIRS)
        model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
        for (a, c), p in zip(SPLIT_PAIRS, got):  # one pair at a time, no padding: the oracle
            with torch.no_grad():
                logits = model(**tokenizer(a, c, return_tensors="pt")).logits
            assert p == pytest.approx(torch.softmax(logits, -1)[0, 1].item(), abs=1e-5)
        assert predict(SPLIT_PAIRS[::-1]) == pytest.approx(got[::-1], abs=1e-6)  # eval mode: no dropout, order kept


class TestOneFigureEverywhere:
    def test_behave_evaluate_and_the_train_report_agree(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        out = tmp_path / "behave.json"
        assert main(["behave", "--model", tiny_model_dir, "--data", glue_dir, "--json", str(out),
                     *[f"--threshold={n}=none" for n in b.TEST_NAMES]]) == 0
        behave = json.loads(out.read_text())
        evaluated = tmp_path / "eval.json"
        assert main(["evaluate", "--model", tiny_model_dir, "--data", glue_dir, "--output", str(evaluated)]) == 0
        from_evaluate = json.loads(evaluated.read_text())["behaviour"]
        figures = lambda r: [(t["name"], t["cases"], t["failures"]) for t in r["tests"]]  # noqa: E731
        assert figures(behave) == figures(from_evaluate)
        assert sum(t["cases"] for t in behave["tests"]) > 0

        run = tmp_path / "run"
        assert main(["train", "--model", tiny_model_dir, "--data", glue_dir, "--epochs", "1", "--output-dir", str(run)]) == 0
        report = json.loads((run / "report.json").read_text())
        again = tmp_path / "again.json"
        main(["behave", "--model", str(run / "model"), "--data", glue_dir, "--json", str(again)])
        assert figures(report["behaviour"]) == figures(json.loads(again.read_text()))
        capsys.readouterr()

    def test_train_without_behaviour(self, tmp_path, tiny_model_dir, glue_dir, capsys):
        run = tmp_path / "run"
        assert main(["train", "--model", tiny_model_dir, "--data", glue_dir, "--epochs", "1", "--output-dir", str(run),
                     "--no-behaviour"]) == 0
        assert "behaviour" not in json.loads((run / "report.json").read_text())
        capsys.readouterr()


class TestContextAndYardstick:
    """What a verdict is read against: the predictor's own scores, and the calibration classifiers' rates."""

    def test_context_is_the_predictor_on_the_original_pairs(self):
        # Class 1 exactly on the first 6 pairs: labels 1,1,1,1,1,0 there, then 0,1,1,1 predicted 0.
        scores = {(a, c): (0.9 if i < 6 else 0.1) for i, (a, c) in enumerate(SPLIT_PAIRS)}
        result = b.run_suite(lambda pairs: [scores.get(p, 0.5) for p in pairs], SPLIT_PAIRS, LABELS, NOBODY)
        c = result["context"]
        tp, fp, fn, tn = 5, 1, 3, 1  # by hand from LABELS
        assert c["accuracy"] == pytest.approx((tp + tn) / 10) and c["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        mcc = (tp * tn - fp * fn) / ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
        assert c["mcc"] == pytest.approx(mcc) and c["baseline"]["accuracy"] == pytest.approx(0.8) and c["degenerate"] is None

    def test_a_constant_predictor_is_named_degenerate_and_its_passes_vacuous(self):
        result = b.run_suite(b.constant_classifier(1), SPLIT_PAIRS, LABELS)
        assert result["context"]["degenerate"] == "degenerate: answers class 1 on all 10 original pairs"
        vacuous = {t["name"] for t in result["tests"] if t.get("vacuous")}
        assert vacuous == {"symmetry", "identity", "surface"}  # INV tests, and the MFT expecting class 1
        assert all(t["status"] == "pass" for t in result["tests"] if t["name"] in vacuous)
        table = b.format_table(result)
        assert "degenerate: answers class 1" in table and table.count("vacuous: a constant answer") == 3

    def test_a_real_predictor_has_no_vacuous_pass(self):
        result = b.run_suite(b.overlap_classifier, SPLIT_PAIRS, LABELS)
        assert result["context"]["degenerate"] is None and not any(t.get("vacuous") for t in result["tests"])

    @pytest.mark.parametrize("name, classifier", [("overlap", b.overlap_classifier), ("first_sentence", b.first_sentence_classifier),
                                                  ("majority", b.constant_classifier(1))])
    def test_the_yardstick_column_is_each_classifier_run_as_the_predictor(self, name, classifier):
        """Metamorphic: the yardstick's rate for a classifier equals that classifier's own rate as the predictor."""
        # A margin other than the default: the yardstick must be judged by the suite's own.
        suite = b.Suite(thresholds={n: None for n in b.TEST_NAMES}, margin=0.6)
        yard = b.run_suite(lambda pairs: [0.5] * len(pairs), SPLIT_PAIRS, LABELS, suite)
        alone = rates(b.run_suite(classifier, SPLIT_PAIRS, LABELS, suite))
        assert {t["name"]: t["yardstick"][name] for t in yard["tests"] if t["cases"]} == {k: v for k, v in alone.items() if v is not None}

    def test_failing_tests_show_their_clearest_cases_under_the_table(self):
        result = b.run_suite(b.first_sentence_classifier, SPLIT_PAIRS, LABELS)
        table = b.format_table(result).splitlines()
        failing = [t for t in result["tests"] if t["status"] == "fail"]
        assert failing, "the first-sentence classifier fails symmetry"
        for t in failing:
            head = table.index(f"{t['name']}: the clearest of {t['failures']} failures")
            shown = table[head + 1: head + 1 + min(b.SHOWN, len(t["examples"]))]
            assert all(line.startswith("  P(equivalent)") for line in shown)
            worst = t["examples"][0]
            assert f"{worst['p_after']:.2f}" in shown[0]


def boundary_split(n, zeros=0):
    """n distinct pairs, the first ``zeros`` of them labelled 0: each pair gives exactly one case to
    original, symmetry, unrelated and surface (its final full stop), and, labelled 1, to negation,
    numbers and word_order; its two sentences are two identity cases."""
    pairs = [(f"Shares of company number {i} rose sharply today .", f"Company number {i} said its shares were up today .")
             for i in range(n)]
    return pairs, [0 if i < zeros else 1 for i in range(n)]


def controlled(name, pairs, labels, k, u):
    """A predictor failing exactly the first k cases of test ``name``, and, each case judged on its
    original pair instead (the unedited yardstick), exactly the first u. Built from the cases' kind
    alone: the suite's counting is what is under test."""
    test = b.TESTS[name]
    cases = test.generate(pairs, labels)
    p = {}
    for i, case in enumerate(cases):
        if test.kind == "MFT":
            expected = test.expected if case.expected is None else case.expected
            right, wrong = (0.9, 0.1) if expected == 1 else (0.1, 0.9)
            p[case.after] = wrong if i < k else right
            if case.before is not None:
                p[case.before] = wrong if i < u else right
        elif test.kind == "INV":
            p[case.before], p[case.after] = 0.9, (0.1 if i < k else 0.9)
        else:  # DIR: only a case whose original is predicted equivalent can fail (k <= u)
            p[case.before] = 0.9 if i < u else 0.3
            p[case.after] = 0.88 if i < k else 0.1  # 0.02 below 0.9: less than any margin, still equivalent
    return (lambda asked: [p.get(pair, 0.1) for pair in asked]), len(cases)


def overlap_errors(pairs, labels):
    """The built-in word-overlap classifier's wrong answers on the pairs, counted here (its yardstick rate on original)."""
    return sum((q >= 0.5) != (y == 1) for q, y in zip(b.overlap_classifier(pairs), labels))


class TestThresholds:
    """Fixed and relative thresholds: their forms, their limits, and every default held at its boundary."""

    @pytest.mark.parametrize("written, expected", [
        ("0.15", b.Threshold(rate=0.15)), (0.05, b.Threshold(rate=0.05)), ("none", None), ("off", None),
        ("overlap-0.2", b.Threshold(yardstick="overlap", points=0.2)), ("overlap - 20%", b.Threshold(yardstick="overlap", points=0.2)),
        ("unedited-0.05", b.Threshold(yardstick="unedited", points=0.05)), ("majority", b.Threshold(yardstick="majority")),
        ("First_Sentence-0.1", b.Threshold(yardstick="first_sentence", points=0.1)),
    ])
    def test_the_forms(self, written, expected):
        assert b.parse_threshold(written) == expected

    @pytest.mark.parametrize("written", ["1.5", "-0.1", "overlap+0.2", "bert-0.2", "overlap-1.5", "overlap-", "0.1,overlap"])
    def test_other_forms_are_refused_naming_the_forms(self, written):
        with pytest.raises(b.ConfigError, match=r"yardstick|\[0, 1"):
            b.parse_threshold(written)

    def test_written_forms_round_trip(self):
        for written in ("0.15", "overlap-0.2", "unedited-0.05", "majority"):
            assert str(b.parse_threshold(written)) == written

    @pytest.mark.parametrize("name", ["symmetry", "surface", "identity", "unrelated", "original"])
    def test_unedited_is_refused_where_nothing_was_edited(self, name):
        with pytest.raises(b.ConfigError, match=f"{name} has no unedited yardstick"):
            b.suite_from({name: "unedited-0.1"})

    @pytest.mark.parametrize("name", [n for n, t in b.THRESHOLDS.items() if t is not None])
    def test_every_default_holds_its_boundary(self, name):
        """A rate just at the default threshold passes, one case more fails, one fewer passes; the limit
        worked out here in closed form from the threshold's definition."""
        threshold = b.parse_threshold(b.THRESHOLDS[name])
        self._boundary(name, threshold)

    @pytest.mark.parametrize("name, written", [
        ("word_order", "unedited-0.1"), ("word_order", "overlap-0.25"), ("negation", "unedited-0.2"),
        ("numbers", "0.3"), ("symmetry", "first_sentence-0.25"), ("original", "majority-0.05"), ("unrelated", "0.35"),
    ])
    def test_other_thresholds_hold_their_boundary(self, name, written):
        self._boundary(name, b.parse_threshold(written))

    def _boundary(self, name, threshold):
        # A split size on which the limit is a whole number of cases: a rate can then sit just at it.
        size = next(n for n in (100, 200, 1000) if abs(round((threshold.rate or threshold.points) * n)
                                                        - (threshold.rate or threshold.points) * n) < 1e-9)
        pairs, labels = boundary_split(size, zeros=2 * size // 5 if name == "original" else 0)
        _, n = controlled(name, pairs, labels, 0, 0)
        u = n - 10  # the unedited yardstick's failures (and DIR's room: only these cases can fail)
        if threshold.rate is not None:
            limit = threshold.rate
        elif threshold.yardstick == "unedited":
            limit = u / n - threshold.points
        elif threshold.yardstick == "overlap" and name == "original":
            limit = overlap_errors(pairs, labels) / n - threshold.points
        else:
            yard = b.run_suite(b.overlap_classifier if threshold.yardstick == "overlap" else
                               b.first_sentence_classifier if threshold.yardstick == "first_sentence" else
                               b.constant_classifier(1), pairs, labels, b.Suite(thresholds={}, tests=(name,)))
            limit = yard["tests"][0]["failure_rate"] - threshold.points  # metamorphic: that classifier as the predictor
        at = round(limit * n)
        assert at >= 1 and abs(at - limit * n) < 1e-9 and at + 1 <= u, (name, limit, n)  # the split puts a rate just at it
        suite = b.Suite(thresholds={name: threshold}, tests=(name,))
        for k, status in ((at - 1, "pass"), (at, "pass"), (at + 1, "fail")):
            predict, _ = controlled(name, pairs, labels, k, u)
            row = b.run_suite(predict, pairs, labels, suite)["tests"][0]
            assert (row["failures"], row["status"]) == (k, status), (name, str(threshold), k, row)
            assert row["threshold"] == pytest.approx(limit) and row["threshold_rule"] == str(threshold)

    def test_the_limit_never_goes_below_zero(self):
        pairs, labels = boundary_split(20)
        suite = b.Suite(thresholds={"word_order": "unedited-0.5"}, tests=("word_order",))
        for k, status in ((0, "pass"), (1, "fail")):
            predict, n = controlled("word_order", pairs, labels, k, 4)  # unedited 20 %: 30 points short of 50
            row = b.run_suite(predict, pairs, labels, suite)["tests"][0]
            assert (row["threshold"], row["status"]) == (0.0, status)

    def test_a_relative_limit_is_shown_with_its_rule(self):
        pairs, labels = boundary_split(20)
        predict, n = controlled("word_order", pairs, labels, 12, 16)
        result = b.run_suite(predict, pairs, labels, b.Suite(thresholds={"word_order": "unedited-0.25"}, tests=("word_order",)))
        table = b.format_table(result)
        assert "55.0% = unedited-0.25" in table  # 16/20 - 0.25
        assert list(b.failure_lines(result)) == [
            next(line for line in b.failure_lines(result) if "60.0% > threshold 55.0% = unedited-0.25" in line)]

    def test_cli_takes_a_relative_threshold(self, tmp_path, glue_dir, capsys):
        pred = tmp_path / "p.py"
        pred.write_text("def predict(pairs):\n    return [0.9] * len(pairs)\n")
        args = ["behave", "--predictor", f"{pred}:predict", "--data", str(glue_dir), "--json", str(tmp_path / "b.json")]
        assert main(args + ["--threshold", "word_order=unedited-0.1"]) == 1
        row = next(t for t in json.loads((tmp_path / "b.json").read_text())["tests"] if t["name"] == "word_order")
        assert row["threshold_rule"] == "unedited-0.1" and row["threshold"] == pytest.approx(0.9) and row["status"] == "fail"
        capsys.readouterr()
        assert main(args + ["--threshold", "word_order=bert-0.1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "yardsticks: overlap, first_sentence, majority, unedited" in err[0]


def order_blind(key):
    """A classifier of the two sentences' bags of words only, written some other way than the built-in one."""
    return lambda pairs: [key(Counter(a.lower().split()), Counter(c.lower().split())) for a, c in pairs]


ORDER_BLIND = {
    "shared over the shorter": order_blind(lambda A, B: float(sum((A & B).values()) / max(1, min(sum(A.values()), sum(B.values()))) >= 0.6)),
    "dice, graded": order_blind(lambda A, B: 2 * len(set(A) & set(B)) / max(1, len(set(A)) + len(set(B)))),
    "jaccard over 0.5": order_blind(lambda A, B: float(len(set(A) & set(B)) / max(1, len(set(A) | set(B))) >= 0.5)),
}


class TestWordOrder:
    def test_the_spans_either_side_of_the_pivot_are_exchanged(self):
        assert b.exchange_around_pivot("Smith told Jones the news .") == "Jones the news told Smith ."
        assert b.exchange_around_pivot("Flights from Boston to Denver are full") == "Denver are full to Flights from Boston"
        assert b.exchange_around_pivot("A B to C D from E F .") == "E F from A B to C D ."  # the nearer the middle
        assert b.exchange_around_pivot("Smith and Jones met .") is None  # "A and B" -> "B and A" keeps the meaning
        assert b.exchange_around_pivot("told Jones") is None  # a word needed on each side

    def test_the_same_words_in_another_order(self, mrpc_raw):
        split = mrpc_raw["validation"]
        cases = b.TESTS["word_order"].generate(list(zip(split["sentence1"], split["sentence2"])), split["label"])
        assert len(cases) > 200
        for case in cases:
            assert case.after[0] == case.before[0] and case.after[1] != case.before[1]
            assert Counter(case.after[1].split()) == Counter(case.before[1].split())
        labelled = dict(zip(zip(split["sentence1"], split["sentence2"]), split["label"]))
        assert all(labelled[case.before] == 1 for case in cases)

    @pytest.mark.parametrize("name", ["built-in overlap", *ORDER_BLIND])
    def test_a_bag_of_words_cannot_pass_it(self, name):
        """Metamorphic: an order-blind classifier answers the reordered pair as the original, so its rate
        equals its unedited rate, and any unedited-P threshold (P > 0) fails it."""
        predict = b.overlap_classifier if name == "built-in overlap" else ORDER_BLIND[name]
        pairs, labels = SPLIT_PAIRS, LABELS
        row = next(t for t in b.run_suite(predict, pairs, labels)["tests"] if t["name"] == "word_order")
        assert row["cases"] >= 3 and row["failure_rate"] == row["yardstick"]["unedited"] > 0
        assert row["status"] == "fail"

    def test_a_classifier_that_reads_order_passes_it(self):
        """An oracle for the edit: equivalent only when s2 keeps the words it shares with s1 in s1's order."""
        def words(s):
            return [w.strip("\u201c\u201d\"'").lower() for w in s.split()]

        def predict(pairs):
            out = []
            for a, c in pairs:
                first = {}
                for i, w in enumerate(words(a)):
                    first.setdefault(w, i)
                seq = [first[w] for w in words(c) if w in first]
                out.append(0.9 if len(seq) >= 3 and seq == sorted(seq) else 0.1)
            return out

        row = next(t for t in b.run_suite(predict, SPLIT_PAIRS, LABELS)["tests"] if t["name"] == "word_order")
        assert row["cases"] >= 3 and row["failures"] == 0 and row["yardstick"]["unedited"] > 0 and row["status"] == "pass"


class TestOriginal:
    def test_its_rate_is_one_minus_the_accuracy(self):
        scores = {(a, c): (0.9 if i < 6 else 0.1) for i, (a, c) in enumerate(SPLIT_PAIRS)}
        result = b.run_suite(lambda pairs: [scores.get(p, 0.5) for p in pairs], SPLIT_PAIRS, LABELS)
        row = next(t for t in result["tests"] if t["name"] == "original")
        assert (row["cases"], row["failures"]) == (10, 4)  # by hand: pairs 5 (labelled 0) and 6, 7, 8 (labelled 1)
        assert row["yardstick"]["majority"] == pytest.approx(0.2) and row["yardstick"]["overlap"] == pytest.approx(
            overlap_errors(SPLIT_PAIRS, LABELS) / 10)

    def test_skipped_on_an_unlabelled_split(self):
        row = next(t for t in b.run_suite(b.overlap_classifier, SPLIT_PAIRS, [-1] * 10)["tests"] if t["name"] == "original")
        assert row["status"] == "skip" and "no labels" in row["reason"]


class TestDefaultsTellAModelFromAHeuristic:
    """On MRPC validation the defaults fail word-overlap rules written in other ways than the built-in
    one, the s1 reader, and constant answers, each naming why (the reference model passes them: slow
    tier, and the figures in docs/behaviour.md)."""

    @pytest.mark.parametrize("name", ["built-in overlap", *ORDER_BLIND])
    def test_word_overlap_rules_fail(self, mrpc_raw, name):
        predict = b.overlap_classifier if name == "built-in overlap" else ORDER_BLIND[name]
        result = b.suite_on_split(predict, mrpc_raw["validation"])
        assert {"original", "word_order"} <= set(result["failed"]), (name, result["failed"])

    def test_the_first_sentence_reader_fails(self, mrpc_raw):
        assert {"original", "symmetry"} <= set(b.suite_on_split(b.first_sentence_classifier, mrpc_raw["validation"])["failed"])

    @pytest.mark.parametrize("label, fails", [(1, {"original", "unrelated", "word_order"}), (0, {"original", "identity"})])
    def test_a_constant_answer_fails_with_the_reason_shown(self, mrpc_raw, label, fails):
        result = b.suite_on_split(b.constant_classifier(label), mrpc_raw["validation"])
        assert set(result["failed"]) == fails
        table = b.format_table(result)
        assert f"degenerate: answers class {label} on all 408 original pairs" in table and "vacuous" in table
