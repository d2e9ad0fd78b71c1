"""The default matcher: content-word overlap with number and entity agreement."""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from bench.matchers.base import Matcher
from bench.text.words import TextFeatures, features


class LexicalMatcher(Matcher):
    """Content-word recall of the hypothesis in the premise, with entity and number agreement.

    score = |H ∩ P| / |H| over stemmed content words, times the share of the hypothesis's numbers found
    in the premise (a wrong number is a different fact), times (1 - entity_weight · share of the
    hypothesis's names missing from the premise).
    """

    name = "lexical"

    def __init__(self, align_threshold: float = 0.6, support_threshold: float = 0.6, alignment: str = "max",
                 entity_weight: float = 0.5, number_agreement: bool = True):
        super().__init__(align_threshold, support_threshold, alignment)
        self.entity_weight = entity_weight
        self.number_agreement = number_agreement

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "entity_weight": self.entity_weight, "number_agreement": self.number_agreement}

    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [self._support(features(p), features(h)) for p, h in pairs]

    def supporting(self, premises: Sequence[str], hypotheses: Sequence[str],
                   threshold: float | None = None) -> list[int | None]:
        """`Matcher.supporting`, the same answers with less work: a premise sharing less than `threshold` of
        a hypothesis's content words cannot reach it (the number and entity factors only lower the score),
        so only premises found through an index of their words that share enough are scored, in order, up
        to the first that supports the hypothesis."""
        t = self.support_threshold if threshold is None else threshold
        if t <= 0:
            return super().supporting(premises, hypotheses, threshold)
        feats = [features(p) for p in premises]
        postings: dict[str, list[int]] = defaultdict(list)
        for i, f in enumerate(feats):
            for w in f.content:
                postings[w].append(i)
        out = []
        for h in map(features, hypotheses):
            shared = Counter(i for w in h.content for i in postings.get(w, ()))
            candidates = sorted(i for i, n in shared.items() if n / len(h.content) >= t)
            out.append(next((i for i in candidates if self._support(feats[i], h) >= t), None))
        return out

    def covers(self, sentences: Sequence[str], units: Sequence[Sequence[str]]) -> list[bool]:
        """`Matcher.covers`, computed once against the whole text: lexical support never falls when the
        premise gains words (more shared content words, numbers and names found), so no single sentence
        supports a fact more than all the sentences together do. The whole text's words are the union of
        its sentences' words."""
        if not units or not sentences:
            return [False] * len(units)
        parts = [features(s) for s in sentences]
        whole = TextFeatures(frozenset().union(*(f.content for f in parts)),
                             frozenset().union(*(f.numbers for f in parts)), frozenset())
        return [any(self._support(whole, features(f)) >= self.support_threshold for f in facts) for facts in units]

    def _support(self, p: TextFeatures, h: TextFeatures) -> float:
        if not h.content:
            return 0.0
        score = len(h.content & p.content) / len(h.content)
        if self.number_agreement and h.numbers:
            score *= len(h.numbers & p.numbers) / len(h.numbers)
        if h.entities:
            score *= 1.0 - self.entity_weight * len(h.entities - p.content) / len(h.entities)
        return score

