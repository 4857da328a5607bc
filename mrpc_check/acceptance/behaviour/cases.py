"""The tests: what each generates from a split's pairs (its cases), of which kind, expecting what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from mrpc_check.acceptance.behaviour.edits import (SURFACE_EDITS, change_shared_number, exchange_around_pivot, insert_not,
                                                   swap_entities)
from mrpc_check.acceptance.behaviour.predictors import Pair


TEST_NAMES = ("original", "symmetry", "identity", "unrelated", "surface", "negation", "numbers", "entity_swap", "word_order")
MARGIN = 0.1  # DIR: how far P(equivalent) must fall (docs/behaviour.md: the reference model's drops)
EXAMPLES = 5  # failing cases kept per test




@dataclass(frozen=True)
class Case:
    """One generated case: the pair it came from (None where it is no edit of a pair), the pair the
    model is asked about, and (MFT) the label it must get when the test does not fix one."""

    after: Pair
    before: Optional[Pair] = None
    edit: str = ""
    expected: Optional[int] = None


@dataclass(frozen=True)
class BehaviourTest:
    name: str
    kind: str  # MFT | INV | DIR
    capability: str
    needs: str  # why a split can give no case of it
    generate: Callable[[list[Pair], list[int]], list[Case]]
    expected: Optional[int] = None  # MFT: the label every case must get
    edits_pairs: bool = False  # MFT: each case is an edit of one of the split's pairs (its ``before``)

    @property
    def has_unedited(self) -> bool:
        """Whether the ``unedited`` yardstick means something: the test judges edits of pairs it could
        judge unedited (an INV test's unedited rate is 0 by definition)."""
        return self.kind == "DIR" or (self.kind == "MFT" and self.edits_pairs)

    @property
    def needs_labels(self) -> bool:
        """Whether its cases come from the split's labels (DIR and edited MFT: equivalent pairs; an MFT
        without a fixed label: each case's own)."""
        return self.has_unedited or (self.kind == "MFT" and self.expected is None)


def _original(pairs, labels):
    return [Case(after=pair, edit="as labelled", expected=y) for pair, y in zip(pairs, labels) if y >= 0]


def _word_order(pairs, labels):
    cases = []
    for (a, b), y in zip(pairs, labels):
        edited = exchange_around_pivot(b) if y == 1 else None
        if edited is not None and edited != b:
            cases.append(Case(after=(a, edited), before=(a, b), edit="spans around a pivot exchanged"))
    return cases


def _symmetry(pairs, labels):
    return [Case(after=(b, a), before=(a, b), edit="sentences exchanged") for a, b in pairs]


def _identity(pairs, labels):
    distinct = dict.fromkeys(s for pair in pairs for s in pair)
    return [Case(after=(s, s), edit="a sentence with itself") for s in distinct]


def _unrelated(pairs, labels):
    n = len(pairs)
    if n < 2:
        return []
    # i -> i + n/2 moves every pair: a derangement, and far from each pair's neighbours
    partners = [(i, (i + n // 2) % n) for i in range(n)]
    return [Case(after=(pairs[i][0], pairs[j][1]), edit=f"s2 of pair {j}") for i, j in partners if pairs[i][1] != pairs[j][1]]


def _surface(pairs, labels):
    cases = []
    for a, b in pairs:
        for edit, fn in SURFACE_EDITS.items():
            edited = fn(b)
            if edited is not None:
                cases.append(Case(after=(a, edited), before=(a, b), edit=edit))
    return cases


def _directional(edit_name, edit):
    def generate(pairs, labels):
        cases = []
        for (a, b), y in zip(pairs, labels):
            if y != 1:
                continue
            edited = edit(a, b)
            if edited is not None and edited != b:
                cases.append(Case(after=(a, edited), before=(a, b), edit=edit_name))
        return cases

    return generate


TESTS = {t.name: t for t in (
    BehaviourTest("original", "MFT", "the split's own pairs, as labelled", "labels", _original),
    BehaviourTest("symmetry", "INV", "order of a symmetric relation", "pairs", _symmetry),
    BehaviourTest("identity", "MFT", "a sentence paraphrases itself", "sentences", _identity, expected=1),
    BehaviourTest("unrelated", "MFT", "unrelated sentences are not paraphrases", "at least 2 pairs", _unrelated, expected=0),
    BehaviourTest("surface", "INV", "robustness to meaning-preserving surface edits",
                  "final punctuation, %/percent, contractions or typographic quotes in s2", _surface),
    BehaviourTest("negation", "DIR", "negation", "pairs labelled equivalent with an auxiliary verb in s2",
                  _directional("not inserted", lambda a, b: insert_not(b))),
    BehaviourTest("numbers", "DIR", "numbers", "pairs labelled equivalent sharing a number",
                  _directional("shared number changed", change_shared_number)),
    BehaviourTest("entity_swap", "DIR", "who did what to whom (named entities)",
                  "pairs labelled equivalent with two different capitalised names in s2",
                  _directional("two names exchanged", lambda a, b: swap_entities(b))),
    BehaviourTest("word_order", "MFT", "word order: the same words, the roles exchanged",
                  "pairs labelled equivalent with a pivot word inside s2", _word_order, expected=0, edits_pairs=True),
)}
assert tuple(TESTS) == TEST_NAMES

