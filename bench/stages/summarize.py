"""Stage 5, summarize: the summarizer contract, one batch method, `summarize(list[Document]) -> list[Summary]`.
Implementations live in `bench.summarizers`."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from bench.stages.consensus import ReferenceUnit
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

