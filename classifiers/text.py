"""Normalising student text before the model sees it.

The bag-of-words model matches exact tokens, so the same word in capitals, stretched
("sooooo"), or in txt spelling ("2nite", "ppl") would otherwise be a different feature.
"""

from __future__ import annotations

import re

# Phone keyboards type ’ for ': "I’m" must read as "i'm" or no phrase or negation matches.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'"})
_STRETCHED = re.compile(r"(\w)\1{2,}")
_URL = re.compile(r"https?://\S+")
_HANDLE = re.compile(r"@\w+")
_TXT = {
    "u": "you",
    "ur": "your",
    "r": "are",
    "pls": "please",
    "plz": "please",
    "ppl": "people",
    "2nite": "tonight",
    "2night": "tonight",
    "tonite": "tonight",
    "2day": "today",
    "rn": "right now",
    "atm": "at the moment",
    "cant": "can't",
    "dont": "don't",
    "wont": "won't",
    "im": "i'm",
    "ive": "i've",
    "hes": "he's",
    "shes": "she's",
    "theyre": "they're",
    "isnt": "isn't",
    "wasnt": "wasn't",
    "didnt": "didn't",
    "idk": "i don't know",
    "tho": "though",
    "thru": "through",
    "b4": "before",
    "bc": "because",
    "cos": "because",
    "coz": "because",
    "wiv": "with",
    "nd": "and",
    "n": "and",
    "summat": "something",
    "nowt": "nothing",
    "owt": "anything",
    "ya": "you",
    "yer": "your",
    "me mate": "my mate",
}
_WORD = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    """Lower-case, unstretch, expand txt spelling, and blank out links and @handles."""
    text = _URL.sub(" url ", text.lower().translate(_APOSTROPHES))
    text = _HANDLE.sub(" @user ", text)
    text = _STRETCHED.sub(r"\1\1", text)
    return " ".join(_TXT.get(token, token) for token in text.split())


def prepare(text: str) -> str:
    """What the model reads: the normalised text followed by its lexicon marker tokens."""
    from classifiers.lexicon import markers

    normalised = normalise(text)
    found = markers(normalised)
    return f"{normalised} {' '.join(found)}" if found else normalised
