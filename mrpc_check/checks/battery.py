"""Run the battery on one loop: every registered check, one verdict each, as a table or JSON."""

from __future__ import annotations

import json
import time
from typing import Iterable, Optional

# Importing the families registers their checks, in the order the table lists them.
from mrpc_check.checks import inputs, padding, schedule, gradients, evaluation, seed, labels, resume, precision, multiprocess  # noqa: F401
from mrpc_check.checks.harness import Arch, Battery
from mrpc_check.checks.verdict import REGISTRY, Verdict


def check_names(tiers: Iterable[str] = ("fast", "gpu")) -> list[str]:
    tiers = set(tiers)
    return [name for name, c in REGISTRY.items() if c.tier in tiers]


def run_battery(adapter, arch: Optional[Arch] = None, checks: Optional[Iterable[str]] = None) -> list[Verdict]:
    """Run ``checks`` (all single-process ones by default) on ``adapter``; one :class:`Verdict` each.

    Raises:
        AdapterError: the adapter returned something that is not predictions.
        KeyError: an unknown check name.
    """
    names = list(checks) if checks else check_names()
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise KeyError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    battery = Battery(adapter, arch)
    verdicts = []
    try:
        for name in names:
            started = time.perf_counter()
            verdict = REGISTRY[name].run(battery)
            verdict.figure += f" [{time.perf_counter() - started:.1f} s]"
            verdicts.append(verdict)
    finally:
        battery.close()
    return verdicts


def format_table(loop: str, verdicts: list[Verdict]) -> str:
    """check | verdict | measured | likely bug and fix, one line per check."""
    lines = [f"mrpc-check verify: {loop}", f"{'check':<18} {'verdict':<7} measured / likely bug -> fix"]
    for v in verdicts:
        text = v.figure if v.status != "fail" else f"{v.bug} ({v.figure}) -> {v.fix}"
        lines.append(f"{v.check:<18} {v.status.upper():<7} {text}")
    failed = sum(v.status == "fail" for v in verdicts)
    lines.append(f"{len(verdicts) - failed} passed, {failed} failed")
    return "\n".join(lines)


def to_json(loop: str, verdicts: list[Verdict]) -> str:
    return json.dumps({"loop": loop, "verdicts": [v.to_dict() for v in verdicts],
                       "failed": sum(v.status == "fail" for v in verdicts)}, indent=2)
