"""Extractive baselines: the lead, seeded random sentences, and TextRank."""
from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence

import numpy as np

from bench.stages.summarize import Summarizer
from bench.text.words import features
from bench.types import Document, Summary


class LeadK(Summarizer):
    """The first k sentences."""

    def __init__(self, name: str = "lead3", k: int = 3):
        super().__init__(name)
        self.k = k

    def summarize(self, docs: Sequence[Document], references=None) -> list[Summary]:
        return [self._summary(d, range(min(self.k, len(d.sentences)))) for d in docs]


class RandomK(Summarizer):
    """k sentences drawn uniformly, in document order; the draw is seeded by (seed, cluster, article)."""

    def __init__(self, name: str = "random3", k: int = 3, seed: int = 0):
        super().__init__(name)
        self.k, self.seed = k, seed

    def summarize(self, docs: Sequence[Document], references=None) -> list[Summary]:
        out = []
        for d in docs:
            digest = hashlib.sha256(f"{self.seed}\x00{d.cluster_id}\x00{d.id}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:8], "big"))
            n = len(d.sentences)
            out.append(self._summary(d, rng.sample(range(n), min(self.k, n))))
        return out


class TextRank(Summarizer):
    """TextRank (Mihalcea & Tarau, 2004): PageRank over a sentence graph weighted by content-word overlap
    normalised by log sentence lengths; the top k sentences in document order."""

    def __init__(self, name: str = "textrank", k: int = 3, damping: float = 0.85, iterations: int = 100,
                 tolerance: float = 1e-8):
        super().__init__(name)
        self.k, self.damping, self.iterations, self.tolerance = k, damping, iterations, tolerance

    def summarize(self, docs: Sequence[Document], references=None) -> list[Summary]:
        out = []
        for d in docs:
            scores = self.rank([s.text for s in d.sentences])
            top = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[: self.k]
            out.append(self._summary(d, top, textrank_scores=[round(float(s), 6) for s in scores]))
        return out

    def rank(self, sentences: list[str]) -> np.ndarray:
        n = len(sentences)
        if n == 0:
            return np.zeros(0)
        words = [features(s).content for s in sentences]
        w = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                overlap = len(words[i] & words[j])
                if overlap and len(words[i]) > 1 and len(words[j]) > 1:
                    w[i, j] = w[j, i] = overlap / (math.log(len(words[i])) + math.log(len(words[j])))
        out_sum = w.sum(axis=1, keepdims=True)
        transition = np.divide(w, out_sum, out=np.full_like(w, 1.0 / n), where=out_sum > 0)
        scores = np.full(n, 1.0 / n)
        for _ in range(self.iterations):
            new = (1 - self.damping) / n + self.damping * transition.T @ scores
            if np.abs(new - scores).sum() < self.tolerance:
                scores = new
                break
            scores = new
        return scores

