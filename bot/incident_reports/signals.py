"""What a report's words suggest: someone under 18, a sexual offence, a reference, an answer.

Recall comes first for the two safeguarding signals: a false "under 18" costs an officer a
look at a case raised to P2, a missed one can leave a child unprotected; extra signposting
for a sexual offence costs nothing. Each detector still avoids the plain misreadings
("I'm 5 minutes away", "a 3 year old laptop", "a minor injury", "School of Medicine"), and
the under-18 one respects negation ("I'm not under 18", "not in year 11") and the past
("when I was at school").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REFERENCE = re.compile(r"\bUCC[\s-]?(\d{4})[\s-]?(\d{6})\b", re.IGNORECASE)

_AGE = r"(?:1[0-7]|[5-9]|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen)"
# "I'm 16" but not "I'm 5 minutes away", "I'm 10 mins", "I'm 9 months pregnant", "I'm 7th".
_NOT_AN_AGE_AFTER = (
    r"(?!\s*(?:%|minutes?\b|mins?\b|hours?\b|hrs?\b|seconds?\b|secs?\b|miles?\b|metres?\b"
    r"|meters?\b|km\b|m\b|ft\b|feet\b|quid\b|pounds?\b|p\b|times?\b|days?\b|weeks?\b"
    r"|months?\b|o'?clock\b|am\b|pm\b|stone\b|floors?\b|[:.,]\d|st\b|nd\b|rd\b|th\b))"
)
# "a 15 year old" is a person unless a thing follows ("my 3 year old laptop").
_THINGS = (
    r"laptops?|bikes?|bicycles?|cars?|phones?|iphones?|macbooks?|computers?|pc|tv|tablets?"
    r"|ipads?|dogs?|cats?|pets?|houses?|buildings?|coats?|jackets?|bags?|watch(?:es)?"
    r"|scooters?|vans?|mopeds?|locks?|cameras?|consoles?|ps5|xbox|car\b|trainers?|shoes?"
    r"|tyres?|wallets?|purses?|keys?|degree|course|contract|debt|case|fence|tree"
)


@dataclass(frozen=True)
class _Signal:
    name: str
    pattern: re.Pattern[str]


def _signal(name: str, pattern: str) -> _Signal:
    return _Signal(name, re.compile(pattern, re.IGNORECASE))


UNDER_18_SIGNALS = (
    _signal(
        "stated_age",
        rf"\b(?:i'?m|i\s+am|im|aged|age)\s+(?:only\s+|just\s+)?{_AGE}\b{_NOT_AN_AGE_AFTER}",
    ),
    _signal(
        "age_phrase",
        rf"\b{_AGE}\s*(?:-\s*)?(?:years?|yrs?)\s*(?:-\s*)?olds?\b(?!\s+(?:{_THINGS})\b)"
        rf"|\b{_AGE}\s*(?:yo|y/o|y\.o\.)(?!\w)",
    ),
    _signal(
        "school_year",
        r"\byear\s*(?:7|8|9|10|11|12|13|seven|eight|nine|ten|eleven|twelve|thirteen)s?\b"
        r"(?!\s*(?:uni|university|student at uni))",
    ),
    _signal(
        "school",
        r"\b(?:at|my|our|from|after|before|outside|near|skipping|bunking(?:\s+off)?|bunked"
        r"(?:\s+off)?)\s+(?:high\s+|secondary\s+|primary\s+)?school\b(?!\s+of\b)"
        r"|\b(?:high|secondary)\s+school\b(?!\s+of\b)|\bschool\s+uniform\b"
        r"|\bsixth[\s-]?form\b|\bgcses?\b"
        r"|\b(?:doing|taking|revising\s+for|sitting|resitting)\s+(?:my\s+|our\s+|her\s+|his\s+)?"
        r"a[\s-]?levels?\b",
    ),
    _signal(
        "under_18",
        r"\bunder[\s-]?(?:18|16|eighteen|sixteen)s?\b|\bunder[\s-]?age\b|\bunderage\b"
        r"|\bminors\b|\b(?:i'?m|i\s+am|im|is|was|she'?s|he'?s|they'?re)\s+a\s+minor\b",
    ),
)

# Negation close before the phrase, within the same sentence: "I'm not at school".
_NEGATED = re.compile(
    r"\b(?:not|never|no\s+longer|isn'?t|wasn'?t|aren'?t|ain'?t|don'?t|doesn'?t)\b"
    r"(?:\s+\S+){0,2}\s*$",
    re.IGNORECASE,
)
# Said of the past, not now: "when I was at school", "back in year 11" (close before it,
# so "I was groped at the SU, I'm 17" is still about now).
_PAST = re.compile(
    r"\b(?:when\s+(?:i|we|he|she|they)\s+(?:was|were)|back\s+(?:in|when)|used\s+to\s+(?:be|go)"
    r"|i\s+was|we\s+were|as\s+a\s+(?:kid|child|teenager))\b(?:\s+\S+){0,2}\s*$",
    re.IGNORECASE,
)


def _sentence_before(text: str, start: int) -> str:
    """The words from the start of the sentence up to ``start``."""
    head = text[:start]
    cut = max(head.rfind(mark) for mark in ".!?\n")
    return head[cut + 1 :]


def under_18_signal(text: str) -> str | None:
    """The kind of phrase suggesting someone under 18 is involved, or None.

    Returns a category (``stated_age``, ``age_phrase``, ``school_year``, ``school``,
    ``under_18``), never the words themselves, so the flag holds no personal data.
    """
    for signal in UNDER_18_SIGNALS:
        for match in signal.pattern.finditer(text):
            before = _sentence_before(text, match.start())
            if _NEGATED.search(before) or _PAST.search(before):
                continue
            return signal.name
    return None


SEXUAL_OFFENCE = re.compile(
    r"\brap(?:e|ed|es|ist|ists|ing)\b"
    r"|\bsexual(?:ly)?\s+(?:assault|abus|harass|touch|violen|offen|attack|exploit|advances?)"
    r"|\bsex(?:ual)?\s+offen"
    r"|\bgrop(?:e|ed|es|ing)\b"
    r"|\btouch(?:ed|ing)\s+(?:me|her|him|them|us|my|up)\b"
    r"|\bindecent(?:ly)?\b"
    r"|\bflash(?:ed|ing)\s+(?:me|us|her|him|them|at|people|students|girls|women)\b|\bflasher\b"
    r"|\bexpos(?:ed|ing)\s+(?:him|her|them)sel(?:f|ves)\b"
    r"|\bupskirt|\brevenge\s+porn|\bintimate\s+(?:images?|photos?|pictures?|videos?)"
    r"|\bnudes?\b|\bdick\s+pics?\b|\bsextort"
    r"|\bnon[\s-]?consensual\b|\bwithout\s+(?:my|her|his|their)\s+consent\b"
    r"|\bdid\s*n[o']?t\s+consent\b"
    r"|\b(?:made|forced|pressured)\s+(?:me|her|him|them)\s+(?:to\s+)?(?:have\s+sex|into\s+sex"
    r"|do\s+sexual|perform)"
    r"|\bstealth(?:ing|ed)\b|\bmolest|\bspiked\b[^.!?]{0,60}\b(?:woke\s+up|assaulted|sex)",
    re.IGNORECASE,
)


def suggests_sexual_offence(text: str) -> bool:
    """Whether the words suggest a sexual offence, so sexual-violence support is given."""
    return SEXUAL_OFFENCE.search(text) is not None


def references_in(text: str) -> list[str]:
    """Report references written in the text, normalised (``ucc 2026 000123`` counts)."""
    return list(dict.fromkeys(f"UCC-{year}-{number}" for year, number in REFERENCE.findall(text)))


_REPORT_WORD = re.compile(r"\breport(?:ing|ed|s)?\b", re.IGNORECASE)


def mentions_reporting(text: str) -> bool:
    """ "I want to report..." starts a report even when the classifier was not sure."""
    return _REPORT_WORD.search(text) is not None


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z']+", text.lower()))


_SKIP = {"skip", "pass", "dont know", "don't know", "not sure", "no idea", "n/a", "na", "idk"}
_STOP = {"stop", "cancel", "finish", "thats all", "that's all", "end", "quit"}
_DONE = {"done", "no", "none", "nope", "no more", "thats it", "that's it", "nothing", "finished"}
_YES = frozenset(
    {"yes", "y", "yeah", "yep", "yea", "ye", "aye", "ok", "okay", "please", "yes please", "sure"}
    | {"anonymous", "anon", "stay anonymous", "keep it anonymous"}
)
_NO = frozenset(
    {"no", "n", "nah", "nope", "no thanks", "no thank you", "not anonymous", "fine"}
    | {"dont mind", "don't mind", "i don't mind", "i dont mind", "that's fine", "thats fine"}
)


def is_skip(text: str) -> bool:
    return _words(text) in _SKIP or text.strip().lower() in _SKIP


def is_stop(text: str) -> bool:
    return _words(text) in _STOP


def is_done(text: str) -> bool:
    return _words(text) in _DONE


def yes_or_no(text: str) -> bool | None:
    """A yes/no answer, or None when it is neither."""
    words = _words(text)
    if words in _YES:
        return True
    if words in _NO:
        return False
    return None
