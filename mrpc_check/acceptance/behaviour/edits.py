"""Edits: small, rule-based, deterministic changes of a sentence; each returns None where it does not apply."""

from __future__ import annotations

import re
from typing import Optional


_FINAL = re.compile(r"\s*[.!?]$")
_PERCENT_SIGN = re.compile(r"(\d)\s?%")
_PERCENT_WORD = re.compile(r"\bpercent\b", re.I)
# Contractions in raw text ("doesn't") and as GLUE's MRPC tokenizes them ("doesn 't", "ca n't").
_IRREGULAR = [(re.compile(r"\b([Ww])o ?n ?'t\b"), r"\1ill not"), (re.compile(r"\b([Cc])a ?n ?'t\b"), r"\1an not"),
              (re.compile(r"\b([Ss])ha ?n ?'t\b"), r"\1hall not")]
_REGULAR = [(re.compile(r"(\w) ?n ?'t\b"), r"\1 not"), (re.compile(r"(\w) ?'re\b"), r"\1 are"),
            (re.compile(r"(\w) ?'ve\b"), r"\1 have"), (re.compile(r"(\w) ?'ll\b"), r"\1 will"),
            (re.compile(r"\b([Ii]) ?'m\b"), r"\1 am")]
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u00ab": '"', "\u00bb": '"'})


def drop_final_punctuation(s: str) -> Optional[str]:
    edited = _FINAL.sub("", s)
    return edited if edited != s and edited.strip() else None


def exchange_percent(s: str) -> Optional[str]:
    """"5 %" -> "5 percent", else "percent" -> "%"; GLUE's spacing kept as it is."""
    if _PERCENT_SIGN.search(s):
        return _PERCENT_SIGN.sub(r"\1 percent", s)
    if _PERCENT_WORD.search(s):
        return _PERCENT_WORD.sub("%", s)
    return None


def expand_contractions(s: str) -> Optional[str]:
    edited = s
    for pattern, replacement in _IRREGULAR + _REGULAR:
        edited = pattern.sub(replacement, edited)
    return edited if edited != s else None


def plain_quotes(s: str) -> Optional[str]:
    """Typographic and LaTeX-style quotes (`` '' \u201c \u201d \u2018 \u2019) made plain."""
    edited = s.replace("``", '"').replace("''", '"').translate(_QUOTES)
    return edited if edited != s else None


SURFACE_EDITS = {"final punctuation removed": drop_final_punctuation, "% and percent exchanged": exchange_percent,
                 "contractions expanded": expand_contractions, "quotes made plain": plain_quotes}

AUXILIARIES = frozenset("""am is are was were be been being has have had do does did will would shall should
can could may might must""".split())
_NEGATED = frozenset({"not", "n't", "never", "no"})


def insert_not(s: str) -> Optional[str]:
    """"not" after the first auxiliary verb that is not already negated."""
    words = s.split()
    for i, word in enumerate(words):
        if word.lower() in AUXILIARIES and (i + 1 == len(words) or words[i + 1].lower() not in _NEGATED):
            return " ".join(words[:i + 1] + ["not"] + words[i + 1:])
    return None


_NUMBER = re.compile(r"^\d+(?:[.,]\d+)*$")


def changed_number(token: str) -> str:
    """Another number of the same form: the integer part doubled plus one (a year moved by 7)."""
    head, sep, tail = re.match(r"^(\d+)([.,]?)(.*)$", token).groups()
    value = int(head)
    new = value + 7 if 1000 <= value <= 2100 else 2 * value + 1
    return f"{new}{sep}{tail}"


def change_shared_number(s1: str, s2: str) -> Optional[str]:
    """s2 with the first number it shares with s1 changed (every occurrence in s2)."""
    in_s1 = {w for w in s1.split() if _NUMBER.match(w)}
    for word in s2.split():
        if word in in_s1:
            return " ".join(changed_number(w) if w == word else w for w in s2.split())
    return None


# Capitalised words that are not names: sentence openers, titles, days and months (swapping
# "Monday" and "October" changes a date, not who did what to whom).
_NOT_NAMES = frozenset("""The A An He She It They We I You His Her Its Their Our My This That These Those There Here
In On At By For From With Without About After Before During Under Over Into Of To And But Or Nor So Yet If When
While Where Which Who Whom What Why How As Also Mr Mrs Ms Dr Sen Rep Gov Gen Lt Col St Jr Sr Inc Corp Co Ltd
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August
September October November December""".split())
_NAME = re.compile(r"^[A-Z][a-z]+$")


# Words whose two sides can be exchanged to exchange roles (PAWS's "flights from New York to Florida"):
# auxiliaries, verbs of saying, and prepositions that relate two things. Conjunctions are left out:
# "A and B" -> "B and A" keeps the meaning.
PIVOTS = AUXILIARIES | frozenset("""said says told to from than by against after before over because with for on in of
at""".split())
_FINAL_TOKEN = frozenset({".", "!", "?"})


def exchange_around_pivot(s: str) -> Optional[str]:
    """s with the spans either side of its pivot word exchanged, the final punctuation kept last: the
    same words, the roles exchanged ("Smith told Jones the news ." -> "Jones the news told Smith .").
    The pivot is the pivot word nearest the middle (the first of two as near) with a word on each side."""
    words = s.split()
    tail = [words.pop()] if words and words[-1] in _FINAL_TOKEN else []
    n = len(words)
    candidates = [i for i, w in enumerate(words) if w.lower() in PIVOTS and 1 <= i <= n - 2]
    if not candidates:
        return None
    i = min(candidates, key=lambda i: abs(i - n / 2))  # the first of two equally near
    return " ".join(words[i + 1:] + [words[i]] + words[:i] + tail)


def swap_entities(s: str) -> Optional[str]:
    """s with its first two different capitalised names exchanged (the first word is never one)."""
    words = s.split()
    names = [i for i, w in enumerate(words) if i > 0 and _NAME.match(w) and w not in _NOT_NAMES]
    for j in names[1:]:
        if words[j] != words[names[0]]:
            i = names[0]
            swapped = list(words)
            swapped[i], swapped[j] = words[j], words[i]
            return " ".join(swapped)
    return None


