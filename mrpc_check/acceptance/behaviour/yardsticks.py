"""Reference classifiers with known flaws (word overlap, a first-sentence reader, constants): the calibration of the suite."""

from __future__ import annotations

import math

from mrpc_check.acceptance.behaviour.predictors import Pair, Predictor


def _words(s: str) -> set:
    return set(s.lower().split())


def overlap_classifier(pairs: list[Pair]) -> list[float]:
    """Bag of words: a logistic of the pair's word Jaccard. Symmetric and blind to order, negation,
    numbers and names: passes symmetry and identity, fails the DIR tests."""
    out = []
    for a, b in pairs:
        wa, wb = _words(a), _words(b)
        jaccard = len(wa & wb) / len(wa | wb) if wa | wb else 1.0
        out.append(1.0 / (1.0 + math.exp(-12.0 * (jaccard - 0.35))))
    return out


def first_sentence_classifier(pairs: list[Pair]) -> list[float]:
    """Reads s1 only (a stable hash of it): fails symmetry."""
    import zlib

    return [(zlib.crc32(a.encode("utf-8")) % 1000) / 999.0 for a, _ in pairs]


def constant_classifier(label: int) -> Predictor:
    """Always the same class (the majority baseline's classifier): on MRPC, fails unrelated."""

    def predict(pairs: list[Pair]) -> list[float]:
        return [float(label)] * len(pairs)

    return predict


CALIBRATION = {"overlap": ("negation", "numbers", "entity_swap"), "first_sentence": ("symmetry",), "majority": ("unrelated",)}
