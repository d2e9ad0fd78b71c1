"""Plain data records that flow between pipeline stages."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class BenchError(Exception):
    """An error caused by input or configuration: reported without a traceback."""


@dataclass(frozen=True)
class Article:
    id: str
    source: str
    title: str
    text: str
    date: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Cluster:
    id: str
    articles: tuple[Article, ...]
    summary: str | None = None  # a human multi-document summary, when the corpus has one (validity metrics)


@dataclass(frozen=True)
class Removal:
    """One piece of text that cleaning removed, and why."""
    text: str
    reason: str


@dataclass(frozen=True)
class CleanArticle:
    article: Article
    text: str
    removed: tuple[Removal, ...] = ()

    @property
    def id(self) -> str:
        return self.article.id


@dataclass(frozen=True)
class Skip:
    """A recorded skip: something was not processed, and why."""
    stage: str
    cluster_id: str
    reason: str
    article_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fact:
    id: str
    article_id: str
    text: str
    start: int  # character span in the cleaned article text
    end: int
    sentence: int  # index of the sentence the fact comes from


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A cleaned article with its sentences and facts: what summarizers and scorers see."""
    cluster_id: str
    article: Article
    text: str
    sentences: tuple[Sentence, ...]
    facts: tuple[Fact, ...]

    @property
    def id(self) -> str:
        return self.article.id


@dataclass
class Summary:
    cluster_id: str
    article_id: str
    summarizer: str
    text: str | None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None
