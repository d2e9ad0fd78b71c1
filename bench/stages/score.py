"""Stage 6, score: consensus metrics and ROUGE for each (summarizer, article).

Every metric is None when it is undefined for that article (for example, no attainable consensus
unit); None is never replaced by 0, and the leaderboard counts how many values each mean is over.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.stages.consensus import ClusterConsensus, ReferenceUnit
from bench.matchers.base import Matcher
from bench.metrics import METRICS
from bench.text.rouge import Rouge
from bench.types import Document, Fact, Summary


@dataclass
class ScoredInput:
    summary: Summary
    doc: Document
    summary_sentences: list[str]
    summary_facts: list[Fact]


class Scorer:
    """Computes the per-article metrics defined in the README."""

    def __init__(self, matcher: Matcher, rouge_use_stemmer: bool = True):
        self.matcher = matcher
        self.rouge_use_stemmer = rouge_use_stemmer
        self._rouge = None

    def rouge(self, reference_sentences: Sequence[str], summary_sentences: Sequence[str]) -> dict[str, float]:
        """ROUGE F-measures, rouge-score's exactly (`bench.text.rouge`); rougeLsum gets newline-joined sentences."""
        if self._rouge is None:
            self._rouge = Rouge(use_stemmer=self.rouge_use_stemmer)
        return self._rouge.score(reference_sentences, summary_sentences)

    def score(self, item: ScoredInput, consensus: ClusterConsensus, cluster_docs: Sequence[Document],
              human_sentences: Sequence[str] | None = None) -> dict[str, Any]:
        """`human_sentences`: the sentences of the cluster's human summary, if it has one; they give the
        human_rouge* validity metrics (None without a human summary or without summary sentences)."""
        ref = consensus.reference(item.doc.id)
        attainable = [r for r in ref if r.attainable]
        covered = self._covered(item.summary_sentences, attainable)
        metrics: dict[str, Any] = {m: None for m in METRICS}
        total = sum(r.weight for r in attainable)
        if total:
            metrics["consensus_recall"] = sum(r.weight for r, c in zip(attainable, covered) if c) / total
        by_level: dict[str, list[float]] = {}
        for r, c in zip(attainable, covered):
            by_level.setdefault(str(r.weight), [0, 0])
            by_level[str(r.weight)][0] += int(c)
            by_level[str(r.weight)][1] += 1
        facts = [f.text for f in item.summary_facts]
        if facts and ref:
            in_consensus = self.matcher.states([f.text for r in ref for f in r.unit.facts], facts)
            metrics["consensus_precision"] = sum(in_consensus) / len(facts)
        unsupported = []
        if facts:
            sources = [s.text for d in cluster_docs for s in d.sentences]
            supported = self.matcher.states(sources, facts)
            metrics["unsupported_rate"] = 1 - sum(supported) / len(facts)
            unsupported = [{"text": f.text, "start": f.start, "end": f.end}
                           for f, ok in zip(item.summary_facts, supported) if not ok]
        if ref and item.summary_sentences:
            metrics.update(self.rouge([r.unit.text for r in ref], item.summary_sentences))
        if human_sentences and item.summary_sentences:
            human = self.rouge(human_sentences, item.summary_sentences)
            metrics.update({f"human_{k}": v for k, v in human.items()})
        n_words = sum(len(s.split()) for s in item.summary_sentences)
        metrics["length_words"] = n_words
        doc_words = len(item.doc.text.split())
        metrics["compression"] = n_words / doc_words if doc_words else None
        return {
            "metrics": metrics,
            "recall_by_support": {k: v[0] / v[1] for k, v in sorted(by_level.items(), key=lambda kv: int(kv[0]))},
            "units_by_support": {k: v[1] for k, v in sorted(by_level.items(), key=lambda kv: int(kv[0]))},
            "n_reference_units": len(ref),
            "n_attainable_units": len(attainable),
            "n_summary_facts": len(facts),
            "covered_units": [r.unit.id for r, c in zip(attainable, covered) if c],
            "missed_units": [r.unit.id for r, c in zip(attainable, covered) if not c],
            "unsupported_facts": unsupported,
        }

    def _covered(self, summary_sentences: Sequence[str], units: Sequence[ReferenceUnit]) -> list[bool]:
        return self.matcher.covers(summary_sentences, [[f.text for f in r.unit.facts] for r in units])
