"""Choosing the sentence inside a passage that best answers the question."""

from __future__ import annotations

import numpy as np


def best_sentence(question_vector: np.ndarray, sentence_vectors: np.ndarray) -> tuple[int, float]:
    """Index (within the passage) and cosine similarity of the sentence closest to the question.

    Args:
        question_vector: unit vector ``[dim]``.
        sentence_vectors: unit vectors ``[n, dim]`` of the passage's sentences, n >= 1.
    """
    sims = np.asarray(sentence_vectors, dtype=np.float32) @ question_vector
    best = int(np.argmax(sims))
    return best, float(sims[best])
