"""A check's verdict, the registry that names every check, and how one bug gets one root cause.

Five statuses: ``pass``; ``warn`` (a real but confined effect, graded by its measured size: exit 0
unless ``--strict``); ``fail``; ``skip`` (not applicable, or not judged, with the reason); ``error``
(the check could not judge: it raised, or the 2-process run did not finish in time. Never the loop's
bug, never a root cause, never what a dependent check's failure is blamed on; exit 3 when no check
fails, as pytest tells an error from a failure).

Checks declare what they rest on (``rests_on``): a check that recomputes from the model's
inputs rests on ``inputs``; one that compares gradients rests on ``gradients_cleared``; the
label control rests on ``evaluation``. When a check fails and a check it rests on fails too,
the failure is that bug's consequence: it carries ``caused_by`` (the root check's name) and no
fix of its own, so the user reads one bug and one fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

STATUSES = ("pass", "warn", "fail", "skip", "error")


@dataclass
class Verdict:
    """What one check found. ``status``: pass, warn, fail, skip (not applicable, with the reason), or error (not judged)."""

    check: str
    status: str
    figure: str  # the measured figure the verdict rests on
    bug: str = ""  # on failure or warning: the likely bug
    fix: str = ""  # on failure or warning: what to change (none for a consequence)
    caused_by: Optional[str] = None  # the root check whose failure this one follows from
    extra: bool = False  # the run shows something the recipe never asked for, which this check names (declared or not)
    # A failure its prerequisites cannot explain (resume replaying another shuffle is no grouping bug): it stays a root
    # cause even where a check it rests on fails.
    own_root: bool = False

    @property
    def passed(self) -> bool:
        """Not a failure: pass, skip, or warn (a warning fails only under --strict)."""
        return self.status != "fail"

    def message(self) -> str:
        if self.caused_by:
            return f"{self.check}: {self.status.upper()}: fails because `{self.caused_by}` fails ({self.figure})"
        if self.status in ("fail", "warn"):
            return f"{self.check}: {self.status.upper()}: {self.bug} ({self.figure}); fix: {self.fix}"
        if self.status == "error":
            return f"{self.check}: ERROR: {self.bug} ({self.figure}); {self.fix}"
        return f"{self.check}: {self.status}: {self.figure}"

    def to_dict(self) -> dict:
        return {"check": self.check, "status": self.status, "figure": self.figure, "bug": self.bug, "fix": self.fix,
                "caused_by": self.caused_by, "extra": self.extra}


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable  # battery -> Verdict
    tier: str  # "fast" (single process, CPU), "distributed" or "gpu": the pytest marker it carries
    oracle: str  # the independent truth it compares with
    doc: str = field(default="")
    rests_on: tuple = ()  # checks whose failure makes this one's failure a consequence
    costly: bool = False  # not run at all when a check it rests on fails (its verdict would add nothing)


REGISTRY: dict[str, Check] = {}


def check(name: str, tier: str = "fast", oracle: str = "", rests_on: tuple = (), costly: bool = False):
    """Register ``fn(battery) -> Verdict`` as the check ``name``."""

    def register(fn):
        REGISTRY[name] = Check(name, fn, tier, oracle, (fn.__doc__ or "").strip().splitlines()[0], tuple(rests_on), costly)
        return fn

    return register


def fail(name: str, figure: str, bug: str, fix: str) -> Verdict:
    return Verdict(name, "fail", figure, bug, fix)


def warn(name: str, figure: str, bug: str, fix: str) -> Verdict:
    return Verdict(name, "warn", figure, bug, fix)


def ok(name: str, figure: str) -> Verdict:
    return Verdict(name, "pass", figure)


def skip(name: str, why: str) -> Verdict:
    return Verdict(name, "skip", why)


REPORT = ("report it to mrpc_check with the loop that triggers it (its file and `mrpc-check verify --json` output); "
          "the other checks' verdicts stand")


def error(name: str, figure: str, bug: str = "mrpc_check could not judge this loop: a fault of the check, not of the loop",
          fix: str = REPORT) -> Verdict:
    """A check that could not judge: never a root cause, and never the loop's bug."""
    return Verdict(name, "error", figure, bug, fix)


def guarded(battery, name: str) -> Verdict:
    """``name``'s raw verdict on ``battery``; an exception inside the check becomes an ``error`` verdict, in one line.

    A set-up mistake (:class:`~mrpc_check.errors.MrpcCheckError`: the adapter or its declarations are wrong) is
    raised on: one line and exit 2 from the CLI, a usage error from pytest.
    """
    from mrpc_check.errors import MrpcCheckError

    try:
        return REGISTRY[name].run(battery)
    except MrpcCheckError:
        raise
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [""])[0][:160]
        return error(name, f"the check raised {type(exc).__name__}: {text}")


def extra_explains(battery, name: str, extra: str, figure: str) -> Optional[Verdict]:
    """A skip for check ``name`` when extra ``extra`` is present (its check warns, fails or passes as declared), else None.

    For a check whose oracle the extra breaks (a gradient recomputed without dropout): its difference
    is the extra's, not its own bug. ``caused_by`` names the extra's check when that one does not pass.
    """
    root = judge(battery, extra)
    if not root.extra:
        return None
    caused = extra if root.status in ("warn", "fail") else None
    return Verdict(name, "skip", f"not judged: {root.bug or root.figure} (see `{extra}`); {figure}", caused_by=caused)


def several_models_explain(battery, run, name: str, figure: str) -> Optional[Verdict]:
    """A skip for check ``name`` when ``run`` trained several models (k-fold, an ensemble: named by ``outside_updates``)."""
    from mrpc_check.checks.observe import models_in_run

    if models_in_run(run) is None:
        return None
    return extra_explains(battery, name, "outside_updates", figure)


def declared_absent(battery, name: str, feature: str, field: str) -> Optional[Verdict]:
    """A skip naming the declaration when the loop declares ``feature`` absent, else None."""
    if battery.declares(feature):
        return None
    return skip(name, f"declared: {battery.name} does not implement recipe.{field} (adapter.supports has no {feature!r}); "
                "not varied, run at its neutral value")


def crashed(name: str, run) -> Optional[Verdict]:
    """A failing verdict when the loop raised during ``run``, else None."""
    if run.error is None:
        return None
    text = (str(run.error).strip().splitlines() or [""])[0][:200]
    return fail(name, f"run {run.name!r} raised {type(run.error).__name__}: {text}",
                "the loop raised instead of training", "run the adapter by hand with this recipe and fix the error")


def explained_by(battery, verdict: Verdict, prerequisite: str) -> Verdict:
    """``verdict`` as a consequence of ``prerequisite`` when that check fails, else unchanged.

    For a failure that only *some* of a prerequisite's bugs explain (a step count off because the
    groups are misaligned), where ``rests_on`` would also swallow the check's own root causes.
    """
    if verdict.status != "fail":
        return verdict
    before = judge(battery, prerequisite)
    if before.status != "fail":
        return verdict
    root = root_of(before)
    if battery.verdicts.get(root, before).status != "fail":  # an extra of the loop's: not judged, not failed
        return Verdict(verdict.check, "skip", f"not judged: `{root}` names an extra of the loop's that explains it ({verdict.figure})",
                       caused_by=root)
    return Verdict(verdict.check, "fail", verdict.figure, f"fails because `{root}` fails", "", caused_by=root)


def root_of(verdict: Verdict) -> str:
    """The check a failure traces back to: its cause, or itself."""
    return verdict.caused_by or verdict.check


COPIES_ROOT = "outside_updates"  # the check that names a loop training copies of the model, never the model itself


def trains_copies_only(battery) -> bool:
    """Whether the base run trained other model objects (deep copies, models built anew) and never the model handed
    over: every reading of the model's forwards and steps is then empty, and that one fact is the root."""
    run = battery._runs.get("base")
    if run is None or run.error is not None:
        return False
    obs = run.observation
    return bool(obs.members) and not obs.steps and not obs.train_forwards()


def judge(battery, name: str, run_check: Optional[Callable] = None) -> Verdict:
    """``name``'s verdict on ``battery``, its prerequisites judged first; cached on the battery.

    A failure whose prerequisite failed (or was not judged because its own prerequisite failed)
    becomes that root's consequence. A costly check (the label control trains for many epochs)
    is not run at all then: it is skipped, naming the root, since its verdict could only repeat it.

    Args:
        run_check: called as ``run_check(name)`` to produce the raw verdict (timing, say);
            ``REGISTRY[name].run(battery)`` by default.
    """
    cache = battery.verdicts
    if name in cache:
        return cache[name]
    spec = REGISTRY[name]
    root = None
    for prerequisite in spec.rests_on:
        before = judge(battery, prerequisite, run_check)
        if before.status == "fail" or (before.status == "skip" and before.caused_by):
            # A root that does not fail names an extra of the loop's (it warns, or passes as declared): the checks
            # that its extra breaks say so themselves (extras.extra_explains); the others are judged as usual.
            if cache[found := root_of(before)].status == "fail":
                root = found
                break
    if root and spec.costly:
        verdict = Verdict(name, "skip", f"not run: it rests on `{root}`, which fails; fix that first", caused_by=root)
    else:
        verdict = run_check(name) if run_check else guarded(battery, name)
        if verdict.status in ("fail", "warn", "pass") and name != COPIES_ROOT and trains_copies_only(battery):
            judge(battery, COPIES_ROOT, run_check)  # cached: the root every other verdict then names
            root = COPIES_ROOT
            if verdict.status == "pass":  # a pass read off no training at all says nothing
                verdict = Verdict(name, "skip", f"not judged: it rests on `{root}`, which fails ({verdict.figure})", caused_by=root)
        if root and verdict.status == "fail" and not verdict.own_root:
            verdict = Verdict(name, "fail", verdict.figure, f"fails because `{root}` fails", "", caused_by=root)
        elif root and verdict.status == "warn":
            # A graded effect read off a run whose foundation is wrong (an idiom's warning on misaligned
            # groups) would name the wrong bug: not judged until the root is fixed.
            verdict = Verdict(name, "skip", f"not judged: it rests on `{root}`, which fails ({verdict.figure})", caused_by=root)
    cache[name] = verdict
    return verdict
