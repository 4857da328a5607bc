"""Thresholds and yardsticks: a fixed failure rate, or a yardstick's rate less some points; the suite they make."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from mrpc_check.acceptance.behaviour.cases import MARGIN, TEST_NAMES, TESTS
from mrpc_check.errors import ConfigError


# Limits above which a test fails, from the reference model (MiniLM, walkthrough recipe, MRPC
# validation, seeds 42, 43 and 44: docs/behaviour.md). A fixed rate is the worst seed's rate rounded
# up to the next 0.05, plus 0.05. A relative one (a Threshold's written form) is half the worst seed's
# lead over the yardstick, rounded down: original, 6.4 points below word overlap's error rate at
# worst; word_order, 3.6 points below its own unedited rate at worst (a bag of words: exactly 0).
# None: reported with its figure, never failing by default: the reference model itself fails it (a
# finding about the recipe, not a bug in a user's run), and word overlap does no worse on numbers.
THRESHOLDS: dict[str, float | str | None] = {
    "original": "overlap-0.03",
    "symmetry": 0.15,
    "identity": 0.05,
    "unrelated": 0.05,
    "surface": 0.10,
    "negation": None,
    "numbers": None,
    "entity_swap": None,
    "word_order": "unedited-0.015",
}


YARDSTICKS = ("overlap", "first_sentence", "majority", "unedited")
TOLERANCE = 1e-9  # a rate equal to its limit passes, whatever the float rounding of "limit = yardstick - points"


@dataclass(frozen=True)
class Threshold:
    """A test's failure-rate limit: a fixed rate, or a yardstick's rate on the same cases less some points.

    ``Threshold(0.15)`` fails a rate above 15 %. ``Threshold(yardstick="overlap", points=0.2)`` fails
    unless the rate is at least 20 points below word overlap's on the same cases; ``"unedited"`` is
    the predictor itself on the cases' original pairs (the rate the test would have if the edit
    changed nothing). The limit never goes below 0: a test with no failure passes any threshold.
    Written ``0.15``, ``overlap-0.2``, ``unedited-0.2`` (``--threshold TEST=...``).
    """

    rate: Optional[float] = None
    yardstick: Optional[str] = None
    points: float = 0.0

    def __post_init__(self) -> None:
        if (self.rate is None) == (self.yardstick is None):
            raise ConfigError("a behaviour threshold is either a rate or a yardstick less some points, not both or neither")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ConfigError(f"a behaviour threshold rate must be a failure rate in [0, 1], got {self.rate}")
        if self.yardstick is not None and self.yardstick not in YARDSTICKS:
            raise ConfigError(f"unknown yardstick {self.yardstick!r}: the yardsticks are {', '.join(YARDSTICKS)}")
        if not 0.0 <= self.points < 1.0:
            raise ConfigError(f"points below a yardstick must be in [0, 1) (0.2 = 20 points), got {self.points}")

    def limit(self, yardstick_rates: dict) -> float:
        """The failure rate above which the test fails, given the yardsticks' rates on its cases."""
        if self.rate is not None:
            return self.rate
        return max(0.0, yardstick_rates[self.yardstick] - self.points)

    def __str__(self) -> str:
        if self.rate is not None:
            return f"{self.rate:g}"
        return f"{self.yardstick}-{self.points:g}" if self.points else self.yardstick


_RELATIVE = re.compile(r"^([a-z_]+)\s*(?:-\s*(\d*\.?\d+)\s*(%?))?$")


def parse_threshold(text) -> Optional[Threshold]:
    """``"0.05"`` -> 5 %; ``"overlap-0.2"`` (or ``overlap-20%``) -> 20 points below word overlap;
    ``"none"`` -> None (reported, not judged).

    Raises:
        ConfigError: anything else, naming the forms.
    """
    if isinstance(text, Threshold) or text is None:
        return text
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return Threshold(rate=float(text))
    written = str(text).strip().lower()
    if written in ("none", "off", ""):
        return None
    try:
        return Threshold(rate=float(written))
    except ValueError:
        pass
    match = _RELATIVE.match(written)
    if not match or match.group(1) not in YARDSTICKS:
        raise ConfigError(f"a behaviour threshold is a failure rate in [0, 1] (0.15), a yardstick less some points "
                          f"({' or '.join(f'{y}-0.2' for y in YARDSTICKS[::3])}; yardsticks: {', '.join(YARDSTICKS)}), "
                          f"or 'none'; got {text!r}")
    points = float(match.group(2) or 0.0) / (100.0 if match.group(3) else 1.0)
    return Threshold(yardstick=match.group(1), points=points)


@dataclass
class Suite:
    """What to run and how to judge it: ``thresholds`` maps a test to a :class:`Threshold` (or a rate,
    or its written form) or None (reported, not judged)."""

    thresholds: dict = field(default_factory=lambda: dict(THRESHOLDS))
    margin: float = MARGIN
    tests: tuple = TEST_NAMES

    def __post_init__(self) -> None:
        unknown = sorted(set(self.thresholds) - set(TEST_NAMES)) + sorted(set(self.tests) - set(TEST_NAMES))
        if unknown:
            raise ConfigError(f"unknown behaviour test(s) {', '.join(unknown)}: the tests are {', '.join(TEST_NAMES)}")
        self.thresholds = {name: parse_threshold(value) for name, value in self.thresholds.items()}
        for name, threshold in self.thresholds.items():
            if threshold is not None and threshold.yardstick == "unedited" and not TESTS[name].has_unedited:
                raise ConfigError(f"behaviour test {name} has no unedited yardstick ({TESTS[name].kind}"
                                  f"{': its cases are not edits of a pair' if TESTS[name].kind == 'MFT' else ': 0 % by definition'}): "
                                  "give a rate or another yardstick")
        if not 0.0 < self.margin < 1.0:
            raise ConfigError(f"behaviour margin must be in (0, 1), got {self.margin}")


def suite_from(overrides: dict, margin: Optional[float] = None) -> Suite:
    """The default suite with ``overrides`` (``{test: "0.05" | "overlap-0.2" | "none"}``) and ``margin`` applied.

    Raises:
        ConfigError: an unknown test or yardstick, a threshold in none of the forms, a margin outside (0, 1).
    """
    # Suite parses each written threshold and names an unknown test.
    return Suite(thresholds={**THRESHOLDS, **overrides}, **({"margin": margin} if margin is not None else {}))

