"""GLUE MRPC metric: accuracy and F1 of the positive class ("equivalent", label 1).

Computes the same figures as the Hub's ``glue``/``mrpc`` metric, which cannot be
downloaded offline; load it with ``evaluate.load(<path of this folder>)``.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score, f1_score

_DESCRIPTION = "Accuracy and binary F1 (positive label 1, 'equivalent') for GLUE MRPC."
_KWARGS = """
Args:
    predictions: predicted labels, 0 or 1.
    references: gold labels, 0 or 1.
Returns:
    accuracy: fraction of predictions equal to the references.
    f1: F1 of label 1 (0.0 when label 1 is never predicted nor present).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Mrpc(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "f1": float(f1_score(references, predictions, pos_label=1, average="binary", zero_division=0.0)),
        }
