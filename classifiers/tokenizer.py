"""A word tokenizer for already-normalised text, several times faster than spaCy's default.

``classifiers.text.prepare`` has lower-cased and tidied the text, so a single regular
expression (words with their apostrophes, and each other symbol or emoji alone) splits it
as well as the general-purpose tokenizer would, at a fraction of the cost per message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from spacy.tokens import Doc
from spacy.util import registry
from spacy.vocab import Vocab

_TOKEN = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


class WordTokenizer:
    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        return Doc(self.vocab, words=_TOKEN.findall(text) or [" "])

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterable[Doc]:
        for text in texts:
            yield self(text)

    # Nothing to save: the behaviour is all in the code above.
    def to_bytes(self, **_: Any) -> bytes:
        return b""

    def from_bytes(self, _data: bytes, **__: Any) -> WordTokenizer:
        return self

    def to_disk(self, _path: str | Path, **__: Any) -> None:
        return None

    def from_disk(self, _path: str | Path, **__: Any) -> WordTokenizer:
        return self


@registry.tokenizers("campusbot.WordTokenizer.v1")  # type: ignore[untyped-decorator]
def create_word_tokenizer() -> Callable[[Any], WordTokenizer]:
    def create(nlp: Any) -> WordTokenizer:
        return WordTokenizer(nlp.vocab)

    return create
