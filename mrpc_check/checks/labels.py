"""Check 9: label control. Trained on permuted labels, a loop must score at chance on validation.

The training labels of the first CONTROL_ROWS rows are permuted (the permutation least correlated with the true labels, of
50 seeded draws), and the loop trains long enough to memorise them. Two observations follow:
the trained model fits its permuted training labels (the battery's own forward: proof the run
learned, so the control is informative), and its validation predictions agree with the true
validation labels no more than independence allows (z <= 3 against the agreement expected
from the two label rates). A leak of validation labels into training, or of the answer into
the inputs, shows as agreement far above that.
"""

from __future__ import annotations

import math
import random

from mrpc_check.checks.harness import N_EVAL
from mrpc_check.checks.verdict import check, crashed, fail, ok

Z_MAX = 3.0
MIN_FIT = 0.9  # the permuted training labels the model must reproduce before chance means anything
# Rows the control trains on: the chance test's power comes from the validation rows, not these;
# 12 of the 22 are memorised as surely, in half the steps (the control is verify's longest run).
CONTROL_ROWS = 12


def permuted_labels(labels: list, seed: int = 0) -> list:
    """A permutation of ``labels`` nearly uncorrelated with them (chance correlation would teach real signal)."""
    rng = random.Random(seed)
    p = sum(labels) / len(labels)
    expected = p * p + (1 - p) * (1 - p)  # agreement of two independent draws with the same rate
    best, best_corr = list(labels), float("inf")
    for _ in range(50):
        perm = list(labels)
        rng.shuffle(perm)
        agree = sum(a == b for a, b in zip(perm, labels)) / len(labels)
        if abs(agree - expected) < best_corr:
            best, best_corr = perm, abs(agree - expected)
    return best


def chance_z(predictions: list, truth: list) -> tuple[float, float, float]:
    """(accuracy, accuracy expected under independence, z) of ``predictions`` against ``truth``."""
    n = len(truth)
    accuracy = sum(int(a == b) for a, b in zip(predictions, truth)) / n
    p, q = sum(predictions) / n, sum(truth) / n
    expected = p * q + (1 - p) * (1 - q)
    sd = math.sqrt(max(expected * (1 - expected), 1e-12) / n)
    return accuracy, expected, (accuracy - expected) / sd


# (epochs, lr) tried in turn until the model memorises its permuted labels: long enough and fast
# enough for the tiny models to fit 22 arbitrary labels. A tiny DistilBERT sometimes collapses to
# the majority class at 5e-3 and fits at 1e-2; BERT and RoBERTa fit at the first.
ATTEMPTS = ((12, 5e-3), (12, 1e-2), (16, 3e-3))


def control_recipe(battery, epochs: int = 12, lr: float = 5e-3):
    # One evaluation batch: the control evaluates after each of its 12 epochs, and only the last counts.
    return battery.base.replace(epochs=epochs, lr=lr, warmup_steps=0, grad_accum=1, eval_batch_size=N_EVAL)


def fitted_fraction(battery, model, labels: list) -> float:
    """How many training rows the trained model assigns their (permuted) label, by the battery's own forward."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        fitted = [int(model(**battery.single("train", i, device)).logits.argmax(-1)) for i in range(len(labels))]
    return sum(a == b for a, b in zip(fitted, labels)) / len(labels)


@check("label_control", oracle="metamorphic: permuted training labels must give chance-level validation agreement",
       rests_on=("inputs", "gradients_cleared", "evaluation"), costly=True)
def check_label_control(battery):
    """Trained on permuted labels, validation agreement falls to chance (catches label leaks, training on validation rows)."""
    # The plainest leak needs no training to see: validation rows among the rows the loop trained on.
    base = battery.base_run()
    if (v := crashed("label_control", base)) is not None:
        return v
    fed = base.observation.train_rows()
    leaked = sum(1 for r in fed if r is not None and r[0] == "validation")
    if leaked:
        return fail("label_control", f"{leaked} of the {len(fed)} rows the loop trained on are validation rows (forward hooks)",
                    "evaluation split trained on: the validation labels leak into the model",
                    "train on train_dataset only; evaluate on eval_dataset")
    labels = permuted_labels(list(battery.train_labels)[:CONTROL_ROWS], seed=battery.base.seed)
    for epochs, lr in ATTEMPTS:
        run = battery.run(f"permuted-{epochs}-{lr:g}", control_recipe(battery, epochs, lr), train_labels=labels,
                          train_rows=CONTROL_ROWS)
        if (v := crashed("label_control", run)) is not None:
            return v
        fit = fitted_fraction(battery, run.model, labels)
        if fit >= MIN_FIT or (len(run.output.predictions) == len(battery.eval_labels)
                              and chance_z(run.output.predictions, list(battery.eval_labels))[2] > Z_MAX):
            break  # informative, or a leak already proven: no further attempt can clear it
    verdict = control_verdict(run.output.predictions, list(battery.eval_labels), fit, f"{epochs} epochs at lr {lr:g}")
    if verdict.status == "fail" and fit < MIN_FIT:
        from mrpc_check.checks.facts.rows import early_stop
        from mrpc_check.checks.verdict import several_models_explain

        # The fit is read on the last model, which never saw its fold's held-out rows: several models cannot be judged so.
        if (v := several_models_explain(battery, run, "label_control", verdict.figure)) is not None:
            return v

        if (stopped := early_stop(run, CONTROL_ROWS)) is not None:
            # The long run was cut short by the loop itself: nothing learned is the early stop's doing, not the optimizer's.
            from mrpc_check.checks.facts.rows import EARLY_FIX
            from mrpc_check.checks.verdict import explained_by

            return explained_by(battery, fail("label_control", f"{verdict.figure}; in this run {stopped[len('the loop '):]}",
                                              f"{stopped} (the label control trains {epochs} epochs: cut short, it cannot learn)",
                                              EARLY_FIX), "coverage")
        from mrpc_check.checks.facts.rows import held_out, other_epochs
        from mrpc_check.checks.verdict import extra_explains

        if held_out(base):
            # The loop selects its model on its own held-out rows (early stopping, a best checkpoint): on permuted labels
            # their loss only worsens, so it stops early or reloads an early epoch, and the fit cannot be read.
            rows = [r for r in run.observation.train_rows() if r is not None]
            per = len(set(rows))
            ran = f"; the loop trained {len(rows) / per:.3g} of the {epochs} epochs asked" if per else ""
            if (v := extra_explains(battery, "label_control", "coverage", verdict.figure + ran)) is not None:
                return v
        if (epochs_bug := other_epochs(run)) is not None:  # the long run was not as long as asked: coverage's finding
            from mrpc_check.checks.verdict import explained_by

            return explained_by(battery, fail("label_control", f"{verdict.figure}; {epochs_bug}", verdict.bug, verdict.fix),
                                "coverage")
        # Frozen tensors can leave a tiny model unable to memorise arbitrary labels: uninformative, not a bug of learning.
        return extra_explains(battery, "label_control", "frozen", verdict.figure) or verdict
    return verdict


def control_verdict(predictions: list, truth: list, fit: float, trained: str):
    """The label control's verdict from what the permuted run predicted and how well it fitted its labels."""
    if len(predictions) != len(truth):
        return fail("label_control", f"{len(predictions)} predictions for {len(truth)} validation rows",
                    "predictions for another split", "return one prediction per eval_dataset example")
    accuracy, expected, z = chance_z(predictions, truth)
    figure = (f"{trained}: fit of permuted training labels {fit:.2f}; validation accuracy {accuracy:.2f} against {expected:.2f} "
              f"expected by chance, z = {z:.1f} (limit {Z_MAX:g})")
    if z > Z_MAX:
        return fail("label_control", figure, "validation labels reach the model: trained on the evaluation split, or a label leak",
                    "train on train_dataset only, build inputs from the sentences alone, and predict with the model alone (no labels)")
    if fit < MIN_FIT:
        return fail("label_control", figure, "the loop did not learn its training labels at any of the tried rates (nothing is learned)",
                    "check that optimizer.step() runs with the recipe's lr on the model's parameters")
    return ok("label_control", figure)
