"""The oracle: an upper bound that reads the consensus reference."""
from __future__ import annotations

from collections.abc import Sequence

from bench.matchers.base import Matcher
from bench.stages.consensus import ReferenceUnit
from bench.stages.summarize import Summarizer
from bench.types import Document, Summary


class Oracle(Summarizer):
    """Greedy upper bound: repeatedly add the source sentence that most raises support-weighted consensus
    recall (as the scorer's matcher judges it), up to k sentences, stopping when nothing adds recall."""

    needs_references = True

    def __init__(self, matcher: Matcher, name: str = "oracle", k: int = 3):
        super().__init__(name)
        self.matcher, self.k = matcher, k

    def summarize(self, docs: Sequence[Document],
                  references: Sequence[list[ReferenceUnit]] | None = None) -> list[Summary]:
        out = []
        for d, ref in zip(docs, self._references(docs, references)):
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
