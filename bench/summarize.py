"""Stage 5, summarize: pluggable summarizers with one batch method, `summarize(list[Document]) -> list[Summary]`."""
from __future__ import annotations

import hashlib
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.consensus import ReferenceUnit
from bench.matching import Matcher, features
from bench.types import Document, Summary


class Summarizer(ABC):
    """A summarizer. `name` is the leaderboard row label (the config key); `identity()` is what, with
    the name, goes into signatures and cache keys: every parameter that changes the output."""

    cacheable = True                 # False where outputs are not reproducible (unseeded sampling)
    batch_size: int | None = None    # the pipeline calls summarize() and caches per batch of this many

    def __init__(self, name: str):
        self.name = name
        self.cache = None            # the run's Cache, set by the pipeline (memoises model-file digests)

    @abstractmethod
    def summarize(self, docs: Sequence[Document]) -> list[Summary]: ...

    def identity(self) -> dict[str, Any]:
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}"}

    def _summary(self, doc: Document, indices: Sequence[int], **meta: Any) -> Summary:
        chosen = sorted(set(indices))
        sentences = [doc.sentences[i].text for i in chosen]
        return Summary(doc.cluster_id, doc.id, self.name, " ".join(sentences),
                       meta={"sentences": sentences, "sentence_indices": chosen, **meta})


class ReferenceAwareSummarizer(Summarizer):
    """A summarizer that reads the consensus reference (an oracle, i.e. an upper bound, not a system)."""

    def summarize(self, docs: Sequence[Document]) -> list[Summary]:
        raise TypeError(f"{self.name} needs the consensus reference; call summarize_with_reference")

    @abstractmethod
    def summarize_with_reference(self, docs: Sequence[Document],
                                 references: Sequence[list[ReferenceUnit]]) -> list[Summary]: ...


class LeadK(Summarizer):
    """The first k sentences."""

    def __init__(self, name: str = "lead3", k: int = 3):
        super().__init__(name)
        self.k = k

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "k": self.k}

    def summarize(self, docs: Sequence[Document]) -> list[Summary]:
        return [self._summary(d, range(min(self.k, len(d.sentences)))) for d in docs]


class RandomK(Summarizer):
    """k sentences drawn uniformly, in document order; the draw is seeded by (seed, cluster, article)."""

    def __init__(self, name: str = "random3", k: int = 3, seed: int = 0):
        super().__init__(name)
        self.k, self.seed = k, seed

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "k": self.k, "seed": self.seed}

    def summarize(self, docs: Sequence[Document]) -> list[Summary]:
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

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "k": self.k, "damping": self.damping, "iterations": self.iterations}

    def summarize(self, docs: Sequence[Document]) -> list[Summary]:
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


class Oracle(ReferenceAwareSummarizer):
    """Greedy upper bound: repeatedly add the source sentence that most raises support-weighted consensus
    recall (as the scorer's matcher judges it), up to k sentences, stopping when nothing adds recall."""

    def __init__(self, matcher: Matcher, name: str = "oracle", k: int = 3):
        super().__init__(name)
        self.matcher, self.k = matcher, k

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "k": self.k, "matcher": self.matcher.identity()}

    def summarize_with_reference(self, docs: Sequence[Document],
                                 references: Sequence[list[ReferenceUnit]]) -> list[Summary]:
        out = []
        for d, ref in zip(docs, references):
            units = [r for r in ref if r.attainable]
            chosen: list[int] = []
            covered: set[int] = set()
            while len(chosen) < min(self.k, len(d.sentences)):
                best, best_gain, best_cov = None, 0.0, covered
                for i in range(len(d.sentences)):
                    if i in chosen:
                        continue
                    cov = covered | self._covered(d, chosen + [i], units)
                    gain = sum(units[u].weight for u in cov - covered)
                    if gain > best_gain:
                        best, best_gain, best_cov = i, gain, cov
                if best is None:
                    break
                chosen.append(best)
                covered = best_cov
            if not chosen:  # nothing attainable: fall back to the lead, and say so
                chosen = list(range(min(self.k, len(d.sentences))))
            out.append(self._summary(d, chosen, oracle_fallback_to_lead=not covered and bool(d.sentences)))
        return out

    def _covered(self, doc: Document, indices: list[int], units: list[ReferenceUnit]) -> set[int]:
        sentences = [doc.sentences[i].text for i in sorted(indices)]
        covered = self.matcher.covers(sentences, [[f.text for f in r.unit.facts] for r in units])
        return {u for u, c in enumerate(covered) if c}
