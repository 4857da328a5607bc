"""A predictor of your own for `mrpc-check behave --predictor examples/overlap_predictor.py:predict`.

The contract: a function of a list of (sentence1, sentence2) pairs returning P(equivalent) for
each, in order (a list, an array or a tensor of floats in [0, 1]). Wrap any classifier this way: a
model served elsewhere, an ensemble, a rule. This one is a bag-of-words baseline, so its report is
a lesson in what the behaviour tests see: it passes symmetry, identity and unrelated, and fails
negation, numbers and entity_swap (it cannot tell "was" from "was not").
"""

import math


def predict(pairs):
    out = []
    for first, second in pairs:
        a, b = set(first.lower().split()), set(second.lower().split())
        overlap = len(a & b) / len(a | b) if a | b else 1.0
        out.append(1.0 / (1.0 + math.exp(-12.0 * (overlap - 0.35))))  # overlap 0.35 -> 0.5
    return out
