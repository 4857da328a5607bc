"""Check 7: every evaluation example predicted exactly once, in dataset order, scored right.

Oracles: forward hooks name the rows each evaluation forward held (every evaluation pass must
hold each validation row exactly once and nothing else); the battery's own forward of the
trained model on each validation example, alone and unpadded, must give the predictions the
loop returned, in dataset order; scikit-learn's accuracy and F1 of those predictions must
equal what the loop reported.

Bugs caught: evaluating on the train split, duplicated or dropped examples (``gather``
instead of ``gather_for_metrics``, ``drop_last``), shuffled evaluation, a wrong metric.
"""

from __future__ import annotations

from collections import Counter

from mrpc_check.checks.facts.rows import eval_passes, held_out, sanity_rows, scored_passes  # noqa: F401  (importable here too)
from mrpc_check.checks.verdict import check, crashed, fail, ok, several_models_explain


def coverage_problem(rows: list, n_eval: int):
    """None if ``rows`` holds each validation row exactly once and nothing else; else what is wrong."""
    counts = Counter(rows)
    foreign = sum(c for r, c in counts.items() if r is None or r[0] != "validation")
    if foreign:
        train = sum(c for r, c in counts.items() if r is not None and r[0] == "train")
        return f"{foreign} of {len(rows)} evaluated rows are not validation rows ({train} training rows)"
    repeated = sum(c - 1 for c in counts.values() if c > 1)
    missing = n_eval - len(counts)
    if repeated or missing:
        return f"{repeated} validation rows evaluated twice or more, {missing} never"
    return None


def closed_form_metrics(predictions, references) -> dict:
    """Accuracy and F1 of class 1 from their definitions (F1 = 2TP / (2TP + FP + FN), 0 when undefined).

    Written out rather than taken from scikit-learn: the oracle shares no code with the metric it
    judges (which uses scikit-learn), and `verify` does not pay scikit-learn's import (about 1 s).
    """
    pairs = [(int(p), int(r)) for p, r in zip(predictions, references)]
    tp = sum(p == 1 and r == 1 for p, r in pairs)
    wrong = sum(p != r for p, r in pairs)  # FP + FN
    return {"accuracy": (len(pairs) - wrong) / len(pairs) if pairs else 0.0, "f1": 2 * tp / (2 * tp + wrong) if tp else 0.0}


def evaluation_verdict(name: str, battery, run, rows_seen=None):
    n_eval = len(battery.eval_labels)
    # Passes over the loop's own held-out training rows (its validation split) are left out: `coverage` names the split.
    passes = scored_passes(run, held_out(run))[0] if rows_seen is None else eval_passes(run)
    if rows_seen is None:
        if not passes:
            return fail(name, "no evaluation forward observed", "the loop does not evaluate the model it trained",
                        "evaluate the trained model on eval_dataset and return its predictions")
        for i, p in enumerate(passes):
            # A pass over training rows only beside a full validation pass is the loop's extra (its training
            # accuracy), not an evaluation on the wrong split: the effective recipe lists it.
            validation = [f for f in p if not all(r is not None and r[0] == "train" for r in f.rows)]
            if validation and len(validation) < len(p) and coverage_problem([r for f in validation for r in f.rows], n_eval) is None:
                p = validation
            problem = coverage_problem([r for f in p for r in f.rows], n_eval)
            if problem:
                train = "training rows" in problem and not problem.startswith("0 ")
                return fail(name, f"evaluation pass {i + 1} of {len(passes)}: {problem}",
                            "evaluating on the train split" if train else "examples dropped or duplicated in evaluation",
                            "evaluate on eval_dataset, every example once (gather_for_metrics under Accelerate, no drop_last)")
    else:
        problem = coverage_problem(rows_seen, n_eval)
        if problem:
            return fail(name, f"rows gathered over all processes: {problem}",
                        "examples dropped or duplicated across processes (gather instead of gather_for_metrics?)",
                        "gather predictions with accelerator.gather_for_metrics, which drops the padding samples")
    predictions = run.output.predictions
    if len(predictions) != n_eval:
        return fail(name, f"{len(predictions)} predictions returned for {n_eval} validation examples",
                    "predictions for another split, or examples dropped or duplicated",
                    "return one prediction per eval_dataset example, in dataset order")
    reference = battery.reference_predictions(run.model)
    mismatches = sum(a != b for a, b in zip(predictions, reference))
    if mismatches:
        same_multiset = Counter(predictions) == Counter(reference)
        return fail(name, f"{mismatches} of {n_eval} returned predictions differ from the trained model's own, example by example",
                    "predictions not in dataset order" if same_multiset else "predictions do not come from the trained model on eval_dataset",
                    "evaluate with an unshuffled loader over eval_dataset and keep the order when gathering")
    truth = closed_form_metrics(predictions, battery.eval_labels)
    reported = run.output.metrics or {}
    for key in ("accuracy", "f1"):
        if key in reported and abs(float(reported[key]) - truth[key]) > 1e-9:
            return fail(name, f"loop reported {key} {float(reported[key]):.4f}, scikit-learn on its predictions gives {truth[key]:.4f}",
                        f"{key} computed on other data or with another definition (F1 is of the 'equivalent' class, 1)",
                        "compute the metric on the gathered predictions and eval_dataset's labels")
    told = ", ".join(k for k in ("accuracy", "f1") if k in reported)
    scored = f"reported {told} equal to scikit-learn's" if told else "no metrics reported"
    sanity = sanity_rows(run) if rows_seen is None else 0
    passes_seen = f"{len(passes) or 'all'} evaluation pass(es)" + (f" (and a sanity check of {sanity} rows before training)" if sanity else "")
    return ok(name, f"{passes_seen}, each validation row once; {n_eval} predictions equal the trained "
              f"model's, in order; {scored}")


@check("evaluation", oracle="rows observed in evaluation forwards; the battery's own forward of each example; scikit-learn",
       rests_on=("inputs",))
def check_evaluation(battery):
    """Every validation example predicted exactly once, in dataset order; the metrics equal scikit-learn's."""
    run = battery.base_run()
    if (v := crashed("evaluation", run)) is not None:
        return v
    verdict = evaluation_verdict("evaluation", battery, run)
    if verdict.status == "fail":  # the averaged predictions of several models are no one model's
        return several_models_explain(battery, run, "evaluation", verdict.figure) or verdict
    return verdict
