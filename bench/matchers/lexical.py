"""The default matcher: content-word overlap with number and entity agreement."""
from __future__ import annotations

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

    def _support(self, p: TextFeatures, h: TextFeatures) -> float:
        if not h.content:
            return 0.0
        score = len(h.content & p.content) / len(h.content)
        if self.number_agreement and h.numbers:
            score *= len(h.numbers & p.numbers) / len(h.numbers)
        if h.entities:
            score *= 1.0 - self.entity_weight * len(h.entities - p.content) / len(h.entities)
        return score

