"""The run's parts, built from the config; the stages that compute, each behind its cache wrapper
(`bench.runner.caching`) keyed by its own config node."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bench.cache import Cache
from bench.matchers.base import Matcher
from bench.runner.caching import CachedConsensus, CachedFacts, CachedScorer, CachedSummarizer, ChunkReplay
from bench.runner.signature import NON_SEMANTIC_KEYS
from bench.stages.clean import Cleaner
from bench.stages.consensus import ConsensusBuilder
from bench.stages.data import Dataset
from bench.stages.facts import FactExtractor
from bench.stages.score import Scorer
from bench.stages.summarize import Summarizer
from bench.types import BenchError


def _build(node: DictConfig, what: str, **kwargs: Any) -> Any:
    """instantiate(), with a constructor's complaint (a bad value in a config) as a BenchError."""
    from hydra.errors import InstantiationException

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__ or e
        raise BenchError(f"config '{what}': {cause}") from None


def build_parts(cfg: DictConfig) -> dict[str, Any]:
    """Instantiate every configured part. Constructors are cheap: nothing loads here."""
    matcher: Matcher = _build(cfg.matcher, "matcher")
    parts = {
        "dataset": _build(cfg.dataset, "dataset"),
        "cleaner": _build(cfg.clean, "clean"),
        "facts": _build(cfg.facts, "facts"),
        "matcher": matcher,
        "consensus": _build(cfg.consensus, "consensus", matcher=matcher),
        "scorer": Scorer(matcher, **OmegaConf.to_container(cfg.score, resolve=True)),
    }
    if not cfg.summarizer:
        raise BenchError("no summarizer selected (summarizer=[...] is empty)")
    parts["summarizers"] = [_summarizer(name, node, matcher) for name, node in cfg.summarizer.items()]
    for part, cls in (("dataset", Dataset), ("facts", FactExtractor), ("matcher", Matcher),
                      ("consensus", ConsensusBuilder)):
        if not isinstance(parts[part], cls):
            raise BenchError(f"config '{part}' built a {type(parts[part]).__name__}, not a {cls.__name__}")
    return parts


def _takes_run_matcher(node) -> bool:
    """`matcher: null` in a summarizer's config: it is given the run's matcher (the oracle)."""
    return "matcher" in node and node["matcher"] is None


def _summarizer(name: str, node: DictConfig, matcher: Matcher) -> Summarizer:
    extra = {"matcher": matcher} if _takes_run_matcher(node) else {}
    s = _build(node, f"summarizer.{name}", name=name, **extra)
    if not isinstance(s, Summarizer):
        raise BenchError(f"summarizer '{name}' built a {type(s).__name__}, not a Summarizer")
    return s


def summarizer_node(resolved: dict[str, Any], name: str) -> dict[str, Any]:
    """A summarizer's resolved config, with the run's matcher config in place of `matcher: null`."""
    node = resolved["summarizer"][name]
    return {**node, "matcher": resolved["matcher"]} if _takes_run_matcher(node) else node


@dataclass
class Stages:
    """The run's parts in the order data flows; those that compute go through the cache."""
    dataset: Dataset
    cleaner: Cleaner
    facts: CachedFacts
    consensus: CachedConsensus
    summarizers: list[CachedSummarizer]
    scorer: CachedScorer
    chunks: ChunkReplay     # whole chunks, replayed from the cache where every output is in it


def build_stages(cfg: DictConfig, cache: Cache) -> Stages:
    """`build_parts`, each computing part behind its cache wrapper, keyed by the config of what it reads."""
    parts = build_parts(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    upstream = {k: resolved[k] for k in ("facts", "matcher", "consensus")}
    summarizers = [CachedSummarizer(s, summarizer_node(resolved, s.name), cache) for s in parts["summarizers"]]
    results = {k: v for k, v in resolved.items() if k not in (*NON_SEMANTIC_KEYS, "stats")}  # what changes a result
    return Stages(
        dataset=parts["dataset"], cleaner=parts["cleaner"],
        facts=CachedFacts(parts["facts"], resolved["facts"], cache, resolved.get("spacy_processes", 1),
                          start_fraction=resolved.get("shard", 0) / max(1, resolved.get("shards", 1)),
                          end_fraction=(resolved.get("shard", 0) + 1) / max(1, resolved.get("shards", 1))),
        consensus=CachedConsensus(parts["consensus"], upstream, cache), summarizers=summarizers,
        scorer=CachedScorer(parts["scorer"], {**upstream, "score": resolved["score"]}, cache),
        chunks=ChunkReplay(cache, results, summarizers))
