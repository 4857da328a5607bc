"""A check's verdict, and the registry that names every check and its tier."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Verdict:
    """What one check found. ``status``: pass, fail, or skip (not applicable, with the reason)."""

    check: str
    status: str
    figure: str  # the measured figure the verdict rests on
    bug: str = ""  # on failure: the likely bug
    fix: str = ""  # on failure: what to change

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def message(self) -> str:
        if self.status == "fail":
            return f"{self.check}: FAIL: {self.bug} ({self.figure}); fix: {self.fix}"
        return f"{self.check}: {self.status}: {self.figure}"

    def to_dict(self) -> dict:
        return {"check": self.check, "status": self.status, "figure": self.figure, "bug": self.bug, "fix": self.fix}


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable  # battery -> Verdict
    tier: str  # "fast" (single process, CPU), "distributed" or "gpu": the pytest marker it carries
    oracle: str  # the independent truth it compares with
    doc: str = field(default="")


REGISTRY: dict[str, Check] = {}


def check(name: str, tier: str = "fast", oracle: str = ""):
    """Register ``fn(battery) -> Verdict`` as the check ``name``."""

    def register(fn):
        REGISTRY[name] = Check(name, fn, tier, oracle, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return register


def fail(name: str, figure: str, bug: str, fix: str) -> Verdict:
    return Verdict(name, "fail", figure, bug, fix)


def ok(name: str, figure: str) -> Verdict:
    return Verdict(name, "pass", figure)


def skip(name: str, why: str) -> Verdict:
    return Verdict(name, "skip", why)


def crashed(name: str, run) -> Optional[Verdict]:
    """A failing verdict when the loop raised during ``run``, else None."""
    if run.error is None:
        return None
    text = (str(run.error).strip().splitlines() or [""])[0][:200]
    return fail(name, f"run {run.name!r} raised {type(run.error).__name__}: {text}",
                "the loop raised instead of training", "run the adapter by hand with this recipe and fix the error")
