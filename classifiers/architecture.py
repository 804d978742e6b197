"""A bag-of-words text classifier with length-normalised features, for spaCy's textcat.

spaCy's own ``TextCatBOW`` feeds raw n-gram counts to a linear layer, so a long message
piles up evidence and a two-word message ("ok thanks") is scored mostly by the bias: on our
data that put "ok" at a 40% chance of risk to life. Here each message's n-grams are weighted
1 + log(count) and scaled to unit length (as TF-IDF does, without the IDF), which ranks
short and long messages on the same footing. Everything else is spaCy's BOW model.

Extracting n-grams is also vectorised across the whole batch, instead of one ``unique``
call per document.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from spacy.attrs import ORTH
from spacy.ml.models.textcat import (  # type: ignore[attr-defined]
    NEG_VALUE,
    resizable,
    resize_and_set_ref,
    resize_linear_weighted,
)
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Logistic, Model, SparseLinear_v2, chain, softmax_activation


def normalised_ngrams(ngram_size: int) -> Model[list[Doc], Any]:
    return Model("normalised_ngrams", _forward, attrs={"ngram_size": ngram_size})


def _forward(model: Model[list[Doc], Any], docs: list[Doc], is_train: bool) -> Any:
    ops: Any = model.ops
    per_doc: list[Any] = []
    for doc in docs:
        unigrams: Any = doc.to_array([ORTH])
        grams = [unigrams]
        for n in range(2, model.attrs["ngram_size"] + 1):
            grams.append(np.asarray(ops.ngrams(n, unigrams)))
        per_doc.append(np.concatenate(grams) if len(grams) > 1 else unigrams)
    sizes = np.fromiter((len(k) for k in per_doc), dtype=np.int64, count=len(per_doc))
    keys = np.concatenate(per_doc) if per_doc else np.zeros(0, dtype=np.uint64)
    owners = np.repeat(np.arange(len(docs)), sizes)
    order = np.lexsort((keys, owners))
    keys, owners = keys[order], owners[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = (keys[1:] != keys[:-1]) | (owners[1:] != owners[:-1])
    first = np.flatnonzero(starts)
    counts = np.diff(np.append(first, len(keys))).astype("f")
    unique_keys, unique_owners = keys[first], owners[first]
    values = 1.0 + np.log(counts)
    norms = np.sqrt(np.bincount(unique_owners, weights=values**2, minlength=len(docs)))
    values = (values / np.maximum(norms[unique_owners], 1e-6)).astype("f")
    lengths = np.bincount(unique_owners, minlength=len(docs)).astype("int32")

    def backprop(_dY: Any) -> list[Any]:
        return []

    return (unique_keys, ops.asarray(values, dtype="f"), ops.asarray(lengths)), backprop


@registry.architectures("campusbot.NormalisedBOW.v1")  # type: ignore[untyped-decorator]
def build_normalised_bow(
    exclusive_classes: bool, ngram_size: int, length: int, nO: int | None = None
) -> Model[list[Doc], Any]:
    length = 2 ** (length - 1).bit_length()
    sparse_linear = SparseLinear_v2(nO=nO, length=length)
    resizable_layer: Model[Any, Any] = resizable(
        sparse_linear,
        resize_layer=partial(resize_linear_weighted, fill_defaults={"b": NEG_VALUE, "W": 0}),
    )
    output = softmax_activation() if exclusive_classes else Logistic()
    model: Model[list[Doc], Any] = chain(normalised_ngrams(ngram_size), resizable_layer, output)
    if nO is not None:
        model.set_dim("nO", nO)
    model.set_ref("output_layer", sparse_linear)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["resize_output"] = partial(resize_and_set_ref, resizable_layer=resizable_layer)
    return model
