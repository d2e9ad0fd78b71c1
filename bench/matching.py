"""Matchers decide whether one text states what another states.

`support(pairs)` scores (premise, hypothesis) pairs in [0, 1]: how much of the hypothesis the premise
states. Alignment of facts across articles uses the symmetric `similarity`; scoring a summary uses
`support` with the summary as premise. Both are batch methods.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
}


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS - set(_NUMBER_WORDS)) | {"’s", "'s", "s"}


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stem(word) if len(word) > 3 else word


@dataclass(frozen=True)
class TextFeatures:
    content: frozenset[str]   # stemmed content words; number words mapped to digits
    numbers: frozenset[str]
    entities: frozenset[str]  # stems of capitalised words after the first (a cheap proxy for names)


@lru_cache(maxsize=200_000)
def features(text: str) -> TextFeatures:
    stop = _stopwords()
    content, numbers, entities = set(), set(), set()
    for i, m in enumerate(_WORD.finditer(text)):
        raw = m.group(0)
        low = raw.lower().replace("’", "'")
        if raw[0].isdigit() or low in _NUMBER_WORDS:
            num = raw.replace(",", "") if raw[0].isdigit() else _NUMBER_WORDS[low]
            numbers.add(num)
            content.add(num)
            continue
        if low in stop or len(low) < 2:
            continue
        stem = _stem(low.split("'")[0])
        content.add(stem)
        if raw[0].isupper() and i > 0:
            entities.add(stem)
    return TextFeatures(frozenset(content), frozenset(numbers), frozenset(entities))


_COMBINE = {
    "max": max,
    "min": min,
    "harmonic": lambda f, b: 0.0 if f + b == 0 else 2 * f * b / (f + b),
}


class Matcher(ABC):
    """Pluggable fact matcher. Thresholds turn scores into decisions."""

    name = "matcher"

    def __init__(self, align_threshold: float, support_threshold: float, alignment: str = "max"):
        if alignment not in _COMBINE:
            raise ValueError(f"alignment must be one of {sorted(_COMBINE)}, got {alignment!r}")
        self.align_threshold = align_threshold
        self.support_threshold = support_threshold
        self.alignment = alignment

    @abstractmethod
    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """For each (premise, hypothesis): how fully the premise states the hypothesis, in [0, 1]."""

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Symmetric score for alignment: support in both directions, combined by `alignment`
        ("max": one fact states the other, the default since facts differ in granularity; "harmonic"; "min")."""
        fwd = self.support(pairs)
        bwd = self.support([(b, a) for a, b in pairs])
        combine = _COMBINE[self.alignment]
        return [combine(f, b) for f, b in zip(fwd, bwd)]

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "align_threshold": self.align_threshold,
                "support_threshold": self.support_threshold, "alignment": self.alignment}


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
