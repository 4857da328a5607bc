"""Judging: one predictor on one split, every test run, its failures against its threshold, the context."""

from __future__ import annotations

from typing import Optional, Sequence

from mrpc_check.acceptance.behaviour.cases import EXAMPLES, TESTS, BehaviourTest, Case
from mrpc_check.acceptance.behaviour.predictors import Pair, Predictor, checked, model_predictor
from mrpc_check.acceptance.behaviour.thresholds import TOLERANCE, Suite
from mrpc_check.acceptance.behaviour.yardsticks import constant_classifier, first_sentence_classifier, overlap_classifier
from mrpc_check.errors import ConfigError


def _expected(test: BehaviourTest, case: Case) -> int:
    return test.expected if case.expected is None else case.expected


def _failed(test: BehaviourTest, case: Case, p_after: float, p_before: Optional[float], margin: float) -> bool:
    if test.kind == "MFT":
        return (p_after >= 0.5) != (_expected(test, case) == 1)
    if test.kind == "INV":
        return (p_after >= 0.5) != (p_before >= 0.5)
    return not (p_before - p_after >= margin or p_after < 0.5)  # DIR


def _severity(test: BehaviourTest, case: Case, p_before: Optional[float], p_after: float) -> float:
    """How far a failing case went the wrong way."""
    if test.kind == "MFT":
        return abs(p_after - _expected(test, case))
    if test.kind == "INV":
        return abs(p_after - p_before)
    return p_after - p_before  # DIR: a rise is worse than a small fall


def run_suite(predict: Predictor, pairs: Sequence[Pair], labels: Optional[Sequence[int]] = None,
              suite: Optional[Suite] = None, name: str = "predictor") -> dict:
    """Every behaviour test on one split's pairs; one call of ``predict`` on every distinct pair needed.

    Args:
        predict: the classifier (see :func:`checked` for the contract it is held to).
        pairs: ``(sentence1, sentence2)`` of the split, in its order.
        labels: the split's labels (-1 or None for an unlabelled split: the DIR tests then have no case).

    Returns:
        ``{"tests": [...], "counts": {...}, "failed": [...], "pairs": n, "margin": m, "context": c}``; each test
        ``{"name", "type", "capability", "cases", "failures", "failure_rate", "threshold", "status",
        "reason", "examples", "yardstick"}`` (and ``"vacuous"`` when a constant answer passes it),
        status ``pass|fail|info|skip`` (info: reported, no threshold); ``yardstick`` maps each
        calibration classifier to its failure rate on the same cases; ``context`` is
        :func:`predictor_context` on the labelled original pairs (None on an unlabelled split).

    Raises:
        PredictorError: the predictor broke its contract.
    """
    suite = suite or Suite()
    pairs = [(str(a), str(b)) for a, b in pairs]
    labels = [int(y) for y in labels] if labels is not None else [-1] * len(pairs)
    if len(labels) != len(pairs):
        raise ConfigError(f"{len(labels)} labels for {len(pairs)} pairs")
    generated = {t: TESTS[t].generate(pairs, labels) for t in suite.tests}
    needed = dict.fromkeys(p for cases in generated.values() for c in cases for p in (c.after, c.before) if p is not None)
    labelled = [(p, y) for p, y in zip(pairs, labels) if y >= 0]
    needed.update(dict.fromkeys(p for p, _ in labelled))  # the original pairs: the predictor's own scores (context)
    asked = list(needed)
    probability = dict(zip(asked, checked(predict, name)(asked))) if asked else {}
    context = predictor_context([probability[p] for p, _ in labelled], [y for _, y in labelled]) if labelled else None
    # The yardstick: the calibration classifiers, whose flaws are known, judged on the same cases (no model: fast).
    majority = context["baseline"]["label"] if context else 1
    yardsticks = {"overlap": overlap_classifier, "first_sentence": first_sentence_classifier, "majority": constant_classifier(majority)}
    yard_probability = {k: dict(zip(asked, f(asked))) if asked else {} for k, f in yardsticks.items()}
    results = []
    for test_name, cases in generated.items():
        test = TESTS[test_name]
        threshold = suite.thresholds.get(test_name)
        row = {"name": test_name, "type": test.kind, "capability": test.capability, "cases": len(cases),
               "failures": 0, "failure_rate": None, "threshold": threshold.rate if threshold else None,
               "threshold_rule": None if threshold is None else str(threshold), "status": "skip", "reason": None,
               "examples": []}
        if test.kind == "DIR":
            row["margin"] = suite.margin
        if not cases:
            why = "no labels on this split" if test.needs_labels and all(y < 0 for y in labels) else f"this split has no {test.needs}"
            row["reason"] = f"0 cases: {why}"
            results.append(row)
            continue
        failing = _failing(test, cases, probability, suite.margin)
        rate = len(failing) / len(cases)
        yard = {k: len(_failing(test, cases, yp, suite.margin)) / len(cases) for k, yp in yard_probability.items()}
        if test.has_unedited:  # the predictor itself, each case's edit undone
            yard["unedited"] = len(_failing(test, cases, probability, suite.margin, unedited=True)) / len(cases)
        limit = None if threshold is None else threshold.limit(yard)
        row.update(failures=len(failing), failure_rate=rate, threshold=limit,
                   threshold_rule=None if threshold is None else str(threshold),
                   status="info" if limit is None else ("fail" if rate > limit + TOLERANCE else "pass"), yardstick=yard)
        if context and context["degenerate"] and (test.kind == "INV" or (test.kind == "MFT" and test.expected == context["constant"])):
            # A constant answer cannot change under an edit, and always matches an MFT expecting it.
            kind = "an INV test" if test.kind == "INV" else f"an MFT test expecting {test.expected}"
            row["vacuous"] = f"vacuous: a constant answer (class {context['constant']} on every original pair) cannot fail {kind}"
        failing.sort(key=lambda f: -_severity(test, f[0], f[1], f[2]))  # the clearest failures first
        row["examples"] = [{"edit": c.edit, "before": list(c.before) if c.before else None, "after": list(c.after),
                            "p_before": pb, "p_after": pa} for c, pb, pa in failing[:EXAMPLES]]
        results.append(row)
    counts = {s: sum(r["status"] == s for r in results) for s in ("pass", "fail", "info", "skip")}
    return {"tests": results, "counts": counts, "failed": [r["name"] for r in results if r["status"] == "fail"],
            "pairs": len(pairs), "margin": suite.margin, "context": context}


def _failing(test: BehaviourTest, cases: list, probability: dict, margin: float, unedited: bool = False) -> list:
    """The cases ``test`` fails under ``probability`` (pair -> P(equivalent)), as (case, p_before, p_after);
    ``unedited``: each case judged on its original pair in place of the edited one."""
    failing = []
    for case in cases:
        p_after = probability[case.before if unedited else case.after]
        p_before = probability[case.before] if case.before is not None else None
        if _failed(test, case, p_after, p_before, margin):
            failing.append((case, p_before, p_after))
    return failing


def predictor_context(probabilities: Sequence[float], labels: Sequence[int]) -> dict:
    """The predictor on the split's own pairs: accuracy, F1 and MCC beside the majority baseline; degenerate or not."""
    from mrpc_check.pipeline.stats import confusion, majority_baseline, matthews

    predictions = [int(p >= 0.5) for p in probabilities]
    labels = [int(y) for y in labels]
    (tn, fp), (fn, tp) = confusion(predictions, labels)["matrix"]  # the split's own figures are made the same way
    classes = set(predictions)
    constant = next(iter(classes)) if len(classes) == 1 else None
    return {"pairs": len(labels), "accuracy": (tp + tn) / len(labels), "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
            "mcc": matthews(predictions, labels), "baseline": majority_baseline(labels), "constant": constant,
            "degenerate": (f"degenerate: answers class {constant} on all {len(labels)} original pairs" if constant is not None
                           else None)}


def suite_on_split(predict: Predictor, dataset, suite: Optional[Suite] = None, name: str = "predictor") -> dict:
    """:func:`run_suite` on a loaded split (``sentence1``, ``sentence2``, ``label`` columns)."""
    pairs = list(zip(dataset["sentence1"], dataset["sentence2"]))
    labels = dataset["label"] if "label" in dataset.column_names else None
    return run_suite(predict, pairs, labels, suite, name)


def model_behaviour(model: str, dataset, suite: Optional[Suite] = None, device: str = "cpu", batch_size: int = 64,
                    name: Optional[str] = None) -> dict:
    """:func:`run_suite` for a model folder on a loaded split: what ``behave --model``, ``train``'s report,
    ``evaluate`` and the acceptance tests all report."""
    predict = model_predictor(model, batch_size=batch_size, device=device)
    return suite_on_split(predict, dataset, suite, name or f"model {model}")

