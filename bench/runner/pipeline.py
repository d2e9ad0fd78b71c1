"""The whole run: data -> clean -> facts -> consensus -> summarize -> score -> report.

`run(cfg, out_dir)` is pure in the sense that matters: everything it needs comes from `cfg`, and
everything it produces goes to `out_dir` (and its return value). The stages that compute go through
their cache wrappers (`bench.runner.caching`)."""
from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.metrics import MAIN_METRIC, METRICS
from bench.reporting.html import write_html
from bench.reporting.leaderboard import DEFAULT_STATS, add_statistics, leaderboard_rows, to_markdown
from bench.reporting.records import SCHEMA_VERSION, RecordWriter, write_board, write_config
from bench.runner.caching import CachedStatistics, CachedSummarizer, open_cache
from bench.runner.parts import Stages, build_stages
from bench.runner.signature import bench_version, build_signature, data_hash
from bench.stages.consensus import ClusterConsensus, ReferenceUnit
from bench.stages.score import ScoredInput
from bench.types import BenchError, Cluster, Document, Skip
from bench.runner.validate import validate_config

log = logging.getLogger("bench")
LEADERBOARD_KEYS = ("summarizer", "cluster_id", "article_id", "status", "metrics", "recall_by_support",
                    "units_by_support")  # what the leaderboard and its statistics read of each score row


def shard_of(cluster_id: str, shards: int) -> int:
    """The shard a cluster belongs to: sha256 of its id, modulo the shard count (stable across machines,
    Python versions and dataset order)."""
    return int.from_bytes(hashlib.sha256(cluster_id.encode()).digest()[:8], "big") % shards


def shard_layout(cfg: DictConfig) -> dict[str, int]:
    """`shards=N shard=i` from the config, checked: {"index": i, "count": N}; an unsharded run is 0 of 1."""
    count, index = cfg.get("shards", 1), cfg.get("shard", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise BenchError(f"shards must be a positive integer, not {count!r}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
        raise BenchError(f"shard must be an integer in 0..{count - 1} (shards={count}), not {index!r}")
    return {"index": index, "count": count}




def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Clusters go through every stage in chunks of `chunk_clusters`, and each chunk's outputs are written
    before the next is read, so memory holds one chunk plus each article's metrics (for the leaderboard)."""
    validate_config(cfg, check_results_dir=False)  # every bad setting, one line each, before any work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    layout = shard_layout(cfg)
    cache = open_cache(cfg.cache, layout)
    stages = build_stages(cfg, cache)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    chunk_size = resolved.get("chunk_clusters", 100)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise BenchError(f"chunk_clusters must be a positive integer, not {chunk_size!r}")
    timings: dict[str, Any] = {"load_and_clean_s": 0.0, "facts_s": 0.0, "consensus_s": 0.0,
                               "summarize_s": {s.name: 0.0 for s in stages.summarizers},
                               "score_s": {s.name: 0.0 for s in stages.summarizers}}
    clock = time.perf_counter()
    all_clusters = stages.dataset.load()
    dh = data_hash(all_clusters)
    clusters = [c for c in all_clusters if shard_of(c.id, layout["count"]) == layout["index"]]
    dataset_info = {"identity": stages.dataset.identity(), "n_clusters": len(clusters),
                    "n_articles": sum(len(c.articles) for c in clusters)}
    if layout["count"] > 1:
        dataset_info.update(n_clusters_all_shards=len(all_clusters),
                            n_articles_all_shards=sum(len(c.articles) for c in all_clusters))
    del all_clusters
    timings["load_and_clean_s"] += _lap(clock)

    identities = {s.name: s.identity for s in stages.summarizers}
    timings["replayed_chunks_s"] = 0.0
    replayed = 0
    score_rows: list[dict[str, Any]] = []   # metrics only: what the leaderboard and its statistics read
    # unreadable files: recorded, the rest goes on
    skips: list[Skip] = [x for x in stages.dataset.skipped
                         if shard_of(x.cluster_id, layout["count"]) == layout["index"]]
    n_scored_clusters = n_scored_articles = 0
    outputs = RecordWriter(out_dir)
    try:
        for begin in range(0, len(clusters), chunk_size):
            chunk = clusters[begin:begin + chunk_size]
            chunk_key = stages.chunks.key(chunk)
            record = stages.chunks.get(chunk_key)
            if record is not None:
                replayed += 1
                clock = time.perf_counter()
                n_docs = _replay_chunk(record, outputs, skips, stages.summarizers, score_rows)
                timings["replayed_chunks_s"] += _lap(clock)
            else:
                outputs.recorded, first_skip, first_row = {}, len(skips), len(score_rows)
                n_docs = _run_chunk(chunk, stages, outputs, skips, score_rows, timings)
                stages.chunks.put(chunk_key, {"records": outputs.recorded, "n_docs": n_docs,
                                              "skips": skips[first_skip:], "score_rows": score_rows[first_row:]})
                outputs.recorded = None
            n_scored_clusters += n_docs[0]
            n_scored_articles += n_docs[1]
            outputs.flush()
        if not n_scored_clusters:
            raise BenchError("no cluster has at least 2 usable articles, so nothing can be scored: "
                             + "; ".join(f"{s.cluster_id}/{s.article_id or '*'}: {s.reason}" for s in skips))
        for s in skips:
            outputs.write("skipped", s.to_dict())
        rows = leaderboard_rows(score_rows, identities)
        stats = {**DEFAULT_STATS, **(resolved.get("stats") or {})}
        computed = CachedStatistics(cache).compute([r["summarizer"] for r in rows], METRICS, MAIN_METRIC,
                                                   score_rows, stats, scores_digest=outputs.digest("scores"))
    finally:
        outputs.close()
        cache.close()
    throughput = {s.name: s.throughput.report() for s in stages.summarizers}
    for name, t in throughput.items():
        if t["cached"] or t["computed"]:
            log.info("summarizer %s: %d cached, %d computed, %d failed", name, t["cached"], t["computed"],
                     t["failed"])

    signature = build_signature(resolved, dh, layout, stats, bench_version())
    board = {
        "schema_version": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "signature": signature, "main_metric": MAIN_METRIC, "metrics": list(METRICS),
        "rows": rows,
        "dataset": {**dataset_info, "n_scored_clusters": n_scored_clusters, "n_scored_articles": n_scored_articles},
        "throughput": throughput, "skipped": [s.to_dict() for s in skips],
        "cache": {"path": str(cache.path) if cache.enabled else None, "hits": cache.hits, "misses": cache.misses,
                  "replayed_chunks": replayed},
        "timings": _rounded(timings), "runtime_seconds": round(time.perf_counter() - started, 3),
    }
    for r in board["rows"]:
        r["throughput"] = throughput[r["summarizer"]]
    add_statistics(board, score_rows, stats, computed)
    write_config(out_dir, OmegaConf.to_yaml(OmegaConf.create(resolved)))
    write_board(board, out_dir, to_markdown(board))
    if cfg.get("html", True):
        write_html(out_dir, max_clusters=cfg.get("html_clusters"), board=board,
                   cluster_ids=[c.id for c in clusters])
    return board


def _run_chunk(chunk: list[Cluster], stages: Stages, outputs: RecordWriter, skips: list[Skip],
               score_rows: list[dict[str, Any]], timings: dict[str, Any]) -> tuple[int, int]:
    """Every stage for one chunk of clusters; returns (scored clusters, scored articles)."""
    clock = time.perf_counter()
    kept = _clean(chunk, stages, outputs, skips)
    timings["load_and_clean_s"] += _lap(clock)
    if not kept:
        return 0, 0

    clock = time.perf_counter()
    docs_by_cluster = _documents(kept, stages, skips)
    # human summaries (validity metrics): split into sentences by the run's own extractor, for rougeLsum
    humans = {c.id: c.summary for c in chunk if c.summary and c.id in docs_by_cluster}
    parsed_humans = stages.facts.extract([(f"{cid}/human_summary", t) for cid, t in humans.items()])
    human_sentences = {cid: [x.text for x in p.sentences] for cid, p in zip(humans, parsed_humans)}
    timings["facts_s"] += _lap(clock)

    clock = time.perf_counter()
    consensus = stages.consensus.build_many(docs_by_cluster)
    reference_of = {(d.cluster_id, d.id): consensus[d.cluster_id].reference(d.id)
                    for ds in docs_by_cluster.values() for d in ds}
    for cid, docs in docs_by_cluster.items():
        _write_consensus(outputs, consensus[cid], docs, reference_of)
    docs = [d for ds in docs_by_cluster.values() for d in ds]
    references = [reference_of[(d.cluster_id, d.id)] for d in docs]
    timings["consensus_s"] += _lap(clock)

    summaries = {}
    for s in stages.summarizers:
        clock = time.perf_counter()
        summaries[s.name] = s.summarize(docs, references)
        timings["summarize_s"][s.name] += _lap(clock)

    # every summarizer's summaries parsed in one batch, then scored summarizer by summarizer
    clock = time.perf_counter()
    ok = [sm for mine in summaries.values() for sm in mine if sm.ok]
    parsed = stages.facts.extract([(f"{sm.cluster_id}/{sm.article_id}/{sm.summarizer}", sm.text) for sm in ok])
    parsed_of = {id(sm): p for sm, p in zip(ok, parsed)}
    parse_seconds = _lap(clock)
    for s in stages.summarizers:
        clock = time.perf_counter()
        mine = summaries[s.name]
        items = []
        for sm, d in zip(mine, docs):
            if sm.ok:
                sm.meta.setdefault("sentences", [x.text for x in parsed_of[id(sm)].sentences])
                items.append(ScoredInput(sm, d, sm.meta["sentences"], list(parsed_of[id(sm)].facts)))
            outputs.write("summaries", asdict(sm))
        results = iter(stages.scorer.score_many(items, consensus, docs_by_cluster, human_sentences))
        for sm, d in zip(mine, docs):
            row = {"summarizer": s.name, "cluster_id": d.cluster_id, "article_id": d.id}
            if sm.ok:
                row.update(status="ok", **next(results))
            else:
                row.update(status="failed", error=sm.error, metrics=None)
            outputs.write("scores", row)
            score_rows.append({k: row.get(k) for k in LEADERBOARD_KEYS})
        timings["score_s"][s.name] += _lap(clock) + parse_seconds * len(items) / max(1, len(ok))
    return len(docs_by_cluster), len(docs)


def _clean(chunk: list[Cluster], stages: Stages, outputs: RecordWriter, skips: list[Skip]) -> list[tuple[str, list]]:
    """Each cluster's cleaned articles, where at least 2 are left; dropped articles and clusters are skips."""
    cleaned = []
    for c in chunk:
        kept = []
        for a in c.articles:
            ca, reason = stages.cleaner.clean(a)
            outputs.write("articles", {"cluster_id": c.id, "article_id": a.id, "source": a.source, "title": a.title,
                                       "dropped": reason, "text": ca.text, "removed": [asdict(r) for r in ca.removed]})
            if reason:
                skips.append(Skip("clean", c.id, reason, a.id))
            else:
                kept.append(ca)
        if len(kept) < 2:
            skips.append(Skip("consensus", c.id, f"cluster has {len(kept)} usable article(s); leave-one-out "
                              "consensus needs at least 2"))
            continue
        cleaned.append((c.id, kept))
    return cleaned


def _documents(cleaned: list[tuple[str, list]], stages: Stages, skips: list[Skip]) -> dict[str, list[Document]]:
    """The cleaned articles split into sentences and facts, per cluster; an article without a sentence is a skip."""
    flat = [(cid, ca) for cid, kept in cleaned for ca in kept]
    parsed = stages.facts.extract([(f"{cid}/{ca.id}", ca.text) for cid, ca in flat])
    docs_by_cluster: dict[str, list[Document]] = {}
    for (cid, ca), p in zip(flat, parsed):
        facts = tuple(type(f)(f.id, ca.id, f.text, f.start, f.end, f.sentence) for f in p.facts)
        doc = Document(cid, ca.article, ca.text, p.sentences, facts)
        if not doc.sentences:
            skips.append(Skip("facts", cid, "no sentences found", ca.id))
            continue
        docs_by_cluster.setdefault(cid, []).append(doc)
    return docs_by_cluster


def _write_consensus(outputs: RecordWriter, cc: ClusterConsensus, docs: list[Document],
                     reference_of: dict[tuple[str, str], list[ReferenceUnit]]) -> None:
    references = {d.id: {r.unit.id: r for r in reference_of[(d.cluster_id, d.id)]} for d in docs}
    for u in cc.units:
        outputs.write("consensus", _unit_record(u, references, docs))
    outputs.write("sources", {"cluster_id": cc.cluster_id, "source_of": cc.source_of,
                              "dependencies": [asdict(dep) for dep in cc.dependencies]})


def _replay_chunk(record: dict[str, Any], outputs: RecordWriter, skips: list[Skip], summarizers: list[CachedSummarizer],
                  score_rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Write a cached chunk's lines again; its summaries count as cached."""
    outputs.replay(record["records"])
    articles = Counter(row["summarizer"] for row in record["score_rows"])
    for s in summarizers:
        s.throughput.count_replayed(articles[s.name])
    skips.extend(record["skips"])
    score_rows.extend(record["score_rows"])
    return record["n_docs"]


def _lap(since: float) -> float:
    return time.perf_counter() - since


def _rounded(timings: dict[str, Any]) -> dict[str, Any]:
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 4) for k, v in timings.items()}


def _unit_record(u, references: dict[str, dict[str, ReferenceUnit]], docs: list[Document]) -> dict[str, Any]:
    """A unit as consensus.jsonl holds it; `references`: each article's reference units by unit id."""
    source_names = {d.id: d.article.source for d in docs}
    sentences = {d.id: d.sentences for d in docs}
    return {
        "unit_id": u.id, "cluster_id": u.cluster_id, "text": u.text, "support": u.support,
        "articles": list(u.articles), "outlets": sorted({source_names[a] for a in u.articles}),
        "sources": list(u.sources),
        "facts": [{"article_id": f.article_id, "text": f.text, "start": f.start, "end": f.end} for f in u.facts],
        "stated_by": [{"article_id": a, "sentence": sentences[a][i].text} for a, i in u.stated_by],
        "reference_for": {d.id: {"weight": references[d.id][u.id].weight, "attainable": references[d.id][u.id].attainable}
                          for d in docs if u.id in references[d.id]},
    }

