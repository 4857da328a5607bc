"""Behaviour tests of any paraphrase classifier: what it learned, beside how well it scores.

Nine suites, generated deterministically from the pairs of one loaded split with small rule-based
edits (no NLP model, no ``checklist`` package), in the three kinds CheckList (Ribeiro et al., ACL
2020) names:

* MFT, a minimum functionality test: the edited pair has a known label;
* INV, an invariance test: an edit that keeps the meaning keeps the prediction;
* DIR, a directional test: an edit that changes the meaning of an "equivalent" pair lowers
  P(equivalent) by at least ``margin``, or leaves the pair predicted "not equivalent".

=========== ==== ==================================================================================
name        type what is generated
=========== ==== ==================================================================================
original    MFT  the split's own labelled pairs, unedited: the rate is 1 - accuracy, read against the
                 yardsticks (a heuristic is told from a model by being wrong more often)
symmetry    INV  (s2, s1) for every pair: paraphrase is a symmetric relation
identity    MFT  (s, s) for every distinct sentence: a sentence paraphrases itself
unrelated   MFT  s1 with the s2 of the pair half the split away (a fixed derangement): not equivalent
surface     INV  one meaning-preserving edit of s2 per case: final punctuation dropped, "%" and
                 "percent" exchanged, contractions expanded, typographic quotes made plain
negation    DIR  "not" after the first auxiliary verb of s2, pairs labelled equivalent
numbers     DIR  a number both sentences contain changed in s2, pairs labelled equivalent
entity_swap DIR  two different capitalised names in s2 exchanged (PAWS, Zhang et al., NAACL 2019):
                 the same words, another meaning; pairs labelled equivalent
word_order  MFT  the spans either side of a pivot word of s2 exchanged (PAWS-style: the same words,
                 the roles exchanged), pairs labelled equivalent: not equivalent. A bag of words
                 answers it exactly as the unedited pair, so it cannot beat its own unedited rate
=========== ==== ==================================================================================

A test's threshold (:class:`Threshold`) is a fixed failure rate or a yardstick's rate on the same
cases less some points: a calibration classifier (``overlap``, ``first_sentence``, ``majority``)
or ``unedited``, the predictor itself on the cases' original pairs.

Every classifier is reached through one contract: ``predict(pairs) -> P(equivalent)`` per pair,
``pairs`` a list of ``(sentence1, sentence2)``. :func:`model_predictor` wraps a model folder;
:func:`load_predictor` imports a user's function; :func:`run_suite` runs the tests and
:func:`format_table` prints them. A test with no case on a split (no shared number, no labels)
reports 0 cases and is skipped with the reason.

One module a job, imports flowing one way (each imports only those above it):

=============  ================================================================================
predictors     the contract, :func:`checked`, :func:`model_predictor`, :func:`load_predictor`
edits          the rule-based edits of a sentence
cases          :class:`Case`, :class:`BehaviourTest`, the nine tests (``TESTS``)
thresholds     :class:`Threshold`, :func:`parse_threshold`, :class:`Suite`, the defaults
yardsticks     word overlap, a first-sentence reader, constants: the calibration classifiers
judging        :func:`run_suite`, :func:`suite_on_split`, :func:`model_behaviour`, the context
table          :func:`format_table`, :func:`failure_lines`
=============  ================================================================================

Every public name is importable from the package itself, as before the split.
"""

from __future__ import annotations

from mrpc_check.errors import ConfigError  # noqa: F401  (what parse_threshold, Suite and run_suite raise)
from mrpc_check.acceptance.behaviour.predictors import (  # noqa: F401
    Pair, Predictor, PredictorError, checked, model_predictor, load_predictor,
)
from mrpc_check.acceptance.behaviour.edits import (  # noqa: F401
    drop_final_punctuation, exchange_percent, expand_contractions, plain_quotes, SURFACE_EDITS, AUXILIARIES, insert_not, changed_number, change_shared_number, PIVOTS, exchange_around_pivot, swap_entities, _NOT_NAMES,
)
from mrpc_check.acceptance.behaviour.cases import (  # noqa: F401
    TEST_NAMES, MARGIN, EXAMPLES, Case, BehaviourTest, TESTS,
)
from mrpc_check.acceptance.behaviour.thresholds import (  # noqa: F401
    THRESHOLDS, YARDSTICKS, TOLERANCE, Threshold, parse_threshold, Suite, suite_from,
)
from mrpc_check.acceptance.behaviour.yardsticks import (  # noqa: F401
    overlap_classifier, first_sentence_classifier, constant_classifier, CALIBRATION,
)
from mrpc_check.acceptance.behaviour.judging import (  # noqa: F401
    run_suite, predictor_context, suite_on_split, model_behaviour,
)
from mrpc_check.acceptance.behaviour.table import (  # noqa: F401
    SHOWN, YARD_COLUMNS, format_table, failure_lines,
)

__all__ = [
    "AUXILIARIES",
    "BehaviourTest",
    "CALIBRATION",
    "Case",
    "EXAMPLES",
    "MARGIN",
    "PIVOTS",
    "Pair",
    "Predictor",
    "PredictorError",
    "SHOWN",
    "SURFACE_EDITS",
    "Suite",
    "TESTS",
    "TEST_NAMES",
    "THRESHOLDS",
    "TOLERANCE",
    "Threshold",
    "YARDSTICKS",
    "YARD_COLUMNS",
    "change_shared_number",
    "changed_number",
    "checked",
    "constant_classifier",
    "drop_final_punctuation",
    "exchange_around_pivot",
    "exchange_percent",
    "expand_contractions",
    "failure_lines",
    "first_sentence_classifier",
    "format_table",
    "insert_not",
    "load_predictor",
    "model_behaviour",
    "model_predictor",
    "overlap_classifier",
    "parse_threshold",
    "plain_quotes",
    "predictor_context",
    "run_suite",
    "suite_from",
    "suite_on_split",
    "swap_entities",
]
