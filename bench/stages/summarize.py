"""Stage 5, summarize: the summarizer contract, one batch method,
`summarize(docs, references=None) -> list[Summary]`. Implementations live in `bench.summarizers`."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.types import BenchError, Document, Summary

if TYPE_CHECKING:  # a type only: a summary's cache key covers the code it imports (`bench.cache.source_hash`)
    from bench.stages.consensus import ReferenceUnit


class Summarizer(ABC):
    """A summarizer. `name` is the leaderboard row label (the config key). What identifies its output (in
    cache keys and the leaderboard) is its config node, bench's code hash and the content of `input_files()`."""

    cacheable = True                 # False where outputs are not reproducible (unseeded sampling)
    batch_size: int | None = None    # the runner calls summarize() and caches per batch of this many
    needs_references = False         # True: summarize() reads each article's consensus reference (an oracle)
    run_settings: tuple[str, ...] = ()  # config keys that change how it runs, never what it writes: not in its key

    def __init__(self, name: str):
        self.name = name

    @abstractmethod
    def summarize(self, docs: Sequence[Document],
                  references: Sequence[list[ReferenceUnit]] | None = None) -> list[Summary]:
        """One summary per document. `references` (each document's consensus reference) is given to a
        summarizer that `needs_references`, and only to it."""

    def input_files(self) -> list[Path]:
        """Files outside the config whose content changes the output (local model weights)."""
        return []

    def _references(self, docs: Sequence[Document], references) -> Sequence[list[ReferenceUnit]]:
        """The references a summarizer that `needs_references` was given, checked."""
        if references is None or len(references) != len(docs):
            raise BenchError(f"summarizer '{self.name}' reads the consensus reference: call "
                             "summarize(docs, references) with one reference per document")
        return references

    def _summary(self, doc: Document, indices: Sequence[int], **meta: Any) -> Summary:
        chosen = sorted(set(indices))
        sentences = [doc.sentences[i].text for i in chosen]
        return Summary(doc.cluster_id, doc.id, self.name, " ".join(sentences),
                       meta={"sentences": sentences, "sentence_indices": chosen, **meta})
