"""Is a message in English? If not, a person reads it rather than trusting the model.

py3langid is confused by short slangy English ("cheers lads" reads as Dutch), so it is
only asked about Latin-script text long enough to judge, restricted to the languages
students here actually write in, and only a confident non-English answer counts.
Text mostly in another script (Arabic, Chinese, Cyrillic...) is non-English outright.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

LATIN_LANGUAGES = [
    "en",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "pl",
    "ro",
    "nl",
    "tr",
    "cy",
    "ga",
    "lt",
    "cs",
]
OTHER_SCRIPT_LANGUAGES = [
    "ar",
    "zh",
    "ja",
    "ko",
    "ru",
    "uk",
    "el",
    "he",
    "hi",
    "bn",
    "ur",
    "fa",
    "th",
]
MIN_WORDS = 5
CONFIDENCE = 0.98
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
# Plain-ASCII text with a couple of these is English for our purposes; skipping the
# language model for it keeps classification fast on the common case.
_ENGLISH_MARKERS = frozenset(
    (
        "the my is and to of it you was at for this that have has just there what with "
        "they are been were our your someone outside im i'm u ur can how when where"
    ).split()
)


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(LATIN_LANGUAGES + OTHER_SCRIPT_LANGUAGES)
    return identifier


def warm_up() -> None:
    _identifier()


def _non_latin_share(text: str) -> float:
    if text.isascii():
        return 0.0
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    other = sum(1 for c in letters if not unicodedata.name(c, "LATIN").startswith("LATIN"))
    return other / len(letters)


def detect_language(text: str) -> str:
    """ISO 639-1 code; "en" unless there is good evidence of another language."""
    if _non_latin_share(text) > 0.5:
        lang, _ = _identifier().classify(text)
        return str(lang) if lang != "en" else "und"
    words = _WORD.findall(text)
    if len(words) < MIN_WORDS:
        return "en"
    if text.isascii() and len(_ENGLISH_MARKERS.intersection(w.lower() for w in words)) >= 2:
        return "en"
    lang, probability = _identifier().classify(" ".join(words))
    if lang != "en" and probability >= CONFIDENCE:
        return str(lang)
    return "en"
