"""The acceptance rules: floors a fine-tuned model must clear, and what a degenerate score is.

One set of rules serves the pytest plugin, ``mrpc-check train/evaluate --min-f1`` and
``mrpc-check sweep``, so a verdict means the same wherever it is given:

* a floor at or below the split's majority-class baseline is refused before any work
  (always answering "equivalent" scores F1 0.812 on MRPC validation: a floor of 0.80 passes a
  broken model);
* a run passes when it is not degenerate, its Matthews correlation is above 0, it predicts
  both classes, and F1 and accuracy clear their floors: the point estimates, or with
  ``on="lower"`` the lower ends of their bootstrap 95 % intervals;
* with a labelled test split, ``max_gap`` bounds |validation F1 - test F1|.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from mrpc_check.errors import ConfigError

FLOOR_ON = ("point", "lower")


@dataclass(frozen=True)
class Floors:
    """What an acceptance verdict asks of one split's scores."""

    min_f1: float = 0.85  # walkthrough MiniLM/BERT reach 0.87-0.90; majority baseline 0.812
    min_accuracy: float = 0.78  # majority baseline 0.684
    on: str = "point"  # point: the estimate clears the floor; lower: its 95 % interval's lower end does
    max_gap: Optional[float] = None  # |validation F1 - test F1| allowed when a labelled test split exists

    def __post_init__(self) -> None:
        if self.on not in FLOOR_ON:
            raise ConfigError(f"--floor-on must be one of {', '.join(FLOOR_ON)}, got {self.on!r}")
        for name in ("min_f1", "min_accuracy"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in (0, 1], got {getattr(self, name)}")
        if self.max_gap is not None and not 0.0 <= self.max_gap <= 1.0:
            raise ConfigError(f"--max-gap must be in [0, 1], got {self.max_gap}")

    def to_dict(self) -> dict:
        return asdict(self)

    # What the pipeline asks of the rules it is given (mrpc_check.pipeline.run.Rules): the pipeline
    # calls these without importing this module, so the layers run one way.
    def refuse(self, baseline: dict, split: str = "validation") -> None:
        """:func:`refuse_at_baseline` with these floors."""
        refuse_at_baseline(self, baseline, split)

    def judge_split(self, scores: dict, analysis: dict, split: str = "validation") -> dict:
        """One split's verdict: these floors, ``passed`` and the ``failures`` (``mrpc-check evaluate``)."""
        failures = judge(scores, analysis, self, split)
        return {**self.to_dict(), "passed": not failures, "failures": failures}

    def judge_report(self, report: dict, apply_floors: bool = True) -> dict:
        """A run's report judged: validation, and the validation-test gap when test was scored."""
        m = report["metrics"]
        failures = judge(m["validation"], {**m["validation_analysis"], "baseline": m["validation_baseline"],
                                           "degenerate": report["degenerate"]["reason"]}, self, apply_floors=apply_floors)
        if m.get("test") is not None:
            failures += judge_gap(m["validation"], m["test"], self)
        return {**self.to_dict(), "passed": not failures, "failures": failures}


def refuse_at_baseline(floors: Floors, baseline: dict, split: str = "validation") -> None:
    """Raise before any work when a floor is one that always answering the majority class clears.

    Raises:
        ConfigError: naming the baseline and the fix.
    """
    low = [f"--min-{name.replace('_', '-')} {value} (baseline {name} {baseline[name]:.4f})"
           for name, value in (("f1", floors.min_f1), ("accuracy", floors.min_accuracy)) if value <= baseline[name]]
    if low:
        raise ConfigError(
            f"{' and '.join(low)} {'is' if len(low) == 1 else 'are'} at or below the {split} majority baseline "
            f"(always class {baseline['label']}, {baseline['examples']} examples): "
            f"a model that ignores its input passes; pass {'a floor' if len(low) == 1 else 'floors'} above it"
        )


def judge(scores: dict, analysis: dict, floors: Floors, split: str = "validation", apply_floors: bool = True) -> list[str]:
    """Why one split's scores fail ``floors`` (empty when they pass).

    Args:
        scores: ``{"accuracy", "f1"}`` point estimates.
        analysis: :func:`mrpc_check.pipeline.stats.analyse` of the same predictions.
        apply_floors: False judges only what every run must get right (not degenerate, both
            classes, MCC above 0): one seed of a sweep, whose floors apply to the median.
    """
    failures = []
    if analysis["degenerate"]:
        failures.append(f"{split}: degenerate run: {analysis['degenerate']}")
    elif len(analysis["classes_predicted"]) < 2:  # (a degenerate reason already names a single class)
        failures.append(f"{split}: predicts only class(es) {analysis['classes_predicted']}: both classes must be predicted")
    if not analysis["mcc"] > 0:
        failures.append(f"{split}: Matthews correlation {analysis['mcc']:.4f} is not above 0")
    for name, floor in (("f1", floors.min_f1), ("accuracy", floors.min_accuracy)) if apply_floors else ():
        low, high = analysis["interval"][name]
        value, what = (scores[name], name) if floors.on == "point" else (low, f"{name} 95 % lower bound")
        if value < floor:
            failures.append(f"{split} {what} {value:.4f} < floor {floor} (estimate {scores[name]:.4f}, 95 % interval "
                            f"[{low:.4f}, {high:.4f}], majority baseline {analysis['baseline'][name]:.4f})")
    return failures


def judge_gap(validation: dict, test: dict, floors: Floors) -> list[str]:
    """Why the validation-test F1 gap is too wide (empty when ``max_gap`` is unset or met)."""
    if floors.max_gap is None:
        return []
    gap = abs(validation["f1"] - test["f1"])
    if gap > floors.max_gap:
        return [f"|validation F1 {validation['f1']:.4f} - test F1 {test['f1']:.4f}| = {gap:.4f} > --max-gap {floors.max_gap}"]
    return []
