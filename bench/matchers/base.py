"""The matcher contract: matchers decide whether one text states what another states.

`support(pairs)` scores (premise, hypothesis) pairs in [0, 1]: how much of the hypothesis the premise
states. Alignment of facts across articles uses the symmetric `similarity`; scoring a summary uses
`support` with the summary as premise. Both are batch methods.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from bench.text.words import TextFeatures, features, phrase_segments, stem

# words that say when or who spoke, not what happened: sharing only these (and names) is no shared event
_LIGHT_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday week weekend day days year years month months today "
    "yesterday tonight time times last earlier later ago said say says told tell tells according report reported "
    "news".split())


_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|without)\b|n[’']t\b", re.I)


def same_event(text_a: str, text_b: str) -> bool:
    """Two facts can state the same thing only if they share a word that is not a name, a number or a
    light word (a date, "said"), their numbers do not contradict (both have numbers, none shared), and
    one is not the negation of the other (one negated, the other not)."""
    (a, negated_a, names_a), (b, negated_b, names_b) = _event_view(text_a), _event_view(text_b)
    if a.numbers and b.numbers and not a.numbers & b.numbers:
        return False
    if negated_a != negated_b:
        return False
    names, light = names_a | names_b, _light_stems()
    return any(w not in names and w not in a.numbers and w not in light for w in a.content & b.content)


@lru_cache(maxsize=200_000)
def _event_view(text: str) -> tuple[TextFeatures, bool, frozenset[str]]:
    """A fact's features, whether it is negated, and its names (`features`' entities: capitalised words
    after the first, since a sentence's first word is capitalised whatever it is)."""
    f = features(text)
    return f, bool(_NEGATION.search(text)), f.entities


@lru_cache(maxsize=1)
def _light_stems() -> frozenset[str]:
    return frozenset(stem(w) for w in _LIGHT_WORDS) | _LIGHT_WORDS


_COMBINE = {
    "max": max,
    "mean": lambda f, b: (f + b) / 2,
    "min": min,
    "harmonic": lambda f, b: 0.0 if f + b == 0 else 2 * f * b / (f + b),
}
ALIGNMENTS = (*_COMBINE, "segments")


class Matcher(ABC):
    """Pluggable fact matcher. Thresholds turn scores into decisions."""

    name = "matcher"

    def __init__(self, align_threshold: float, support_threshold: float, alignment: str = "max"):
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {sorted(ALIGNMENTS)}, got {alignment!r}")
        self.align_threshold = align_threshold
        self.support_threshold = support_threshold
        self.alignment = alignment

    @abstractmethod
    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """For each (premise, hypothesis): how fully the premise states the hypothesis, in [0, 1]."""

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Symmetric score for alignment: support in both directions, combined by `alignment`: "max" (one
        fact states the other), "mean", "harmonic", "min", or "segments": the best "mean" between any phrase
        run of one fact and any phrase run of the other (`phrase_segments`), so that a long fact aligns
        with a short one through the part they both state, and both directions must agree on that part."""
        if self.alignment == "segments":
            return self._segment_similarity(pairs)
        fwd = self.support(pairs)
        bwd = self.support([(b, a) for a, b in pairs])
        combine = _COMBINE[self.alignment]
        return [combine(f, b) for f, b in zip(fwd, bwd)]

    def _segment_similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        seg_pairs = [[(x, y) for x in phrase_segments(a) for y in phrase_segments(b)] for a, b in pairs]
        flat = list(dict.fromkeys(p for ps in seg_pairs for p in ps))
        fwd = dict(zip(flat, self.support(flat)))
        bwd = dict(zip(flat, self.support([(y, x) for x, y in flat])))
        return [max((fwd[p] + bwd[p]) / 2 for p in ps) for ps in seg_pairs]

    def alignment_scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """`similarity`, but 0 for two facts that cannot state the same thing (`same_event` says no)."""
        possible = [i for i, (a, b) in enumerate(pairs) if same_event(a, b)]
        out = [0.0] * len(pairs)
        for i, score in zip(possible, self.similarity([pairs[i] for i in possible])):
            out[i] = score
        return out

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "align_threshold": self.align_threshold,
                "support_threshold": self.support_threshold, "alignment": self.alignment}

    def supporting(self, premises: Sequence[str], hypotheses: Sequence[str],
                   threshold: float | None = None) -> list[int | None]:
        """For each hypothesis: the index of the first premise that supports it (support >= `threshold`,
        by default support_threshold), or None."""
        t = self.support_threshold if threshold is None else threshold
        scores = self.support([(p, h) for h in hypotheses for p in premises])
        n = len(premises)
        return [next((j for j in range(n) if scores[i * n + j] >= t), None) for i in range(len(hypotheses))]

    def states(self, premises: Sequence[str], hypotheses: Sequence[str]) -> list[bool]:
        """For each hypothesis: does one of the premises support it (support >= support_threshold)?"""
        return [i is not None for i in self.supporting(premises, hypotheses)]

    def covers(self, sentences: Sequence[str], units: Sequence[Sequence[str]]) -> list[bool]:
        """Does a text (given as its sentences) state each unit? A unit (its member facts' texts) is covered
        when the whole text, or one of its sentences, supports one of its facts. Scoring and the oracle
        both decide coverage here."""
        if not units or not sentences:
            return [False] * len(units)
        premises = list(dict.fromkeys([" ".join(sentences), *sentences]))
        pairs, owners = [], []
        for u, facts in enumerate(units):
            for f in facts:
                for p in premises:
                    pairs.append((p, f))
                    owners.append(u)
        best = [0.0] * len(units)
        for u, score in zip(owners, self.support(pairs)):
            best[u] = max(best[u], score)
        return [b >= self.support_threshold for b in best]

