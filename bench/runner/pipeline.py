"""The whole run: data -> clean -> facts -> consensus -> summarize -> score -> report.

`run(cfg, out_dir)` is pure in the sense that matters: everything it needs comes from `cfg`, and
everything it produces goes to `out_dir` (and its return value)."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from tqdm.auto import tqdm
from omegaconf import DictConfig, OmegaConf

from bench.cache import Cache, code_hash, key, text_hash
from bench.runner.cache_guard import set_aside_if_corrupt
from bench.stages.consensus import ClusterConsensus, ConsensusBuilder, ReferenceUnit
from bench.stages.data import Dataset
from bench.stages.facts import FactExtractor, ParsedText
from bench.matchers.base import Matcher
from bench.metrics import MAIN_METRIC, METRICS
from bench.reporting.html import write_html
from bench.reporting.leaderboard import DEFAULT_STATS, add_statistics, leaderboard_rows, to_markdown
from bench.reporting.records import RecordWriter as _Outputs
from bench.reporting.records import SCHEMA_VERSION, write_board, write_config
from bench.stages.score import ScoredInput, Scorer
from bench.runner.signature import data_hash, environment, stable_hash
from bench.stages.summarize import ReferenceAwareSummarizer, Summarizer
from bench.types import BenchError, Document, Skip, Summary
from bench.runner.validate import validate_config

log = logging.getLogger("bench")
# what changes how a run goes, never what it computes: left out of the config hash
LEADERBOARD_KEYS = ("summarizer", "cluster_id", "article_id", "status", "metrics", "recall_by_support",
                    "units_by_support")  # what the leaderboard and its statistics read of each score row
NON_SEMANTIC_KEYS = ("results_dir", "run_name", "hydra", "cache", "html", "shard", "shards", "chunk_clusters",
                     "spacy_processes")
SHARD_ASSIGNMENT = "sha256(cluster_id)[:8] mod count"


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


def _summarizer(name: str, node: DictConfig, matcher: Matcher) -> Summarizer:
    extra = {"matcher": matcher} if "matcher" in node and node.matcher is None else {}
    s = _build(node, f"summarizer.{name}", name=name, **extra)
    if not isinstance(s, Summarizer):
        raise BenchError(f"summarizer '{name}' built a {type(s).__name__}, not a Summarizer")
    return s


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


def cache_path(cfg: DictConfig, layout: dict[str, int]) -> Path | None:
    """The run's SQLite cache. A shard of a sharded run writes its own file (`cache.sqlite` becomes
    `cache.shard1of4.sqlite`): SQLite must not be shared over a network file system; `bench cache merge`
    folds shard caches into one."""
    if not cfg.cache.enabled:
        return None
    path = Path(cfg.cache.path)
    if layout["count"] == 1:
        return path
    return path.with_name(f"{path.stem}.shard{layout['index']}of{layout['count']}{path.suffix}")


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Clusters go through every stage in chunks of `chunk_clusters`, and each chunk's outputs are written
    before the next is read, so memory holds one chunk plus each article's metrics (for the leaderboard)."""
    validate_config(cfg, check_results_dir=False)  # every bad setting, one line each, before any work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = build_parts(cfg)
    layout = shard_layout(cfg)
    set_aside_if_corrupt(cache_path(cfg, layout))  # warns; a new cache is built
    cache = Cache(cache_path(cfg, layout))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    chunk_size = resolved.get("chunk_clusters", 100)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise BenchError(f"chunk_clusters must be a positive integer, not {chunk_size!r}")
    timings: dict[str, Any] = {"load_and_clean_s": 0.0, "facts_s": 0.0, "consensus_s": 0.0,
                               "summarize_s": {s.name: 0.0 for s in parts["summarizers"]},
                               "score_s": {s.name: 0.0 for s in parts["summarizers"]}}
    clock = time.perf_counter()
    all_clusters = parts["dataset"].load()
    dh = data_hash(all_clusters)
    clusters = [c for c in all_clusters if shard_of(c.id, layout["count"]) == layout["index"]]
    dataset_info = {"identity": parts["dataset"].identity(), "n_clusters": len(clusters),
                    "n_articles": sum(len(c.articles) for c in clusters)}
    if layout["count"] > 1:
        dataset_info.update(n_clusters_all_shards=len(all_clusters),
                            n_articles_all_shards=sum(len(c.articles) for c in all_clusters))
    del all_clusters
    timings["load_and_clean_s"] += _lap(clock)

    identities, fatal = {}, {}
    for s in parts["summarizers"]:
        s.cache = cache
        identities[s.name], fatal[s.name] = _identity(s)
        if fatal[s.name]:
            log.error("summarizer %s cannot run: %s", s.name, fatal[s.name])
    counters = {s.name: _Throughput() for s in parts["summarizers"]}
    # a chunk whose every output is cached is replayed whole (a warm re-run reads, writes and does the
    # statistics, nothing else); its key holds the code, every setting that changes a result, and the
    # summarizers' identities (model file hashes included)
    replay_identity = [code_hash(), {k: v for k, v in resolved.items() if k not in NON_SEMANTIC_KEYS + ("stats",)},
                       identities]
    timings["replayed_chunks_s"] = 0.0
    replayed = 0
    score_rows: list[dict[str, Any]] = []   # metrics only: what the leaderboard and its statistics read
    # unreadable files: recorded, the rest goes on
    skips: list[Skip] = [x for x in parts["dataset"].skipped if shard_of(x.cluster_id, layout["count"]) == layout["index"]]
    n_scored_clusters = n_scored_articles = 0
    outputs = _Outputs(out_dir)
    try:
        for begin in range(0, len(clusters), chunk_size):
            chunk = clusters[begin:begin + chunk_size]
            chunk_key = key("chunk", replay_identity, [[c.id, c.summary and text_hash(c.summary),
                                                         [[a.id, a.source, a.title, text_hash(a.text), a.date, a.url]
                                                          for a in c.articles]] for c in chunk])
            replay = cache.get_many("chunk", [chunk_key], count=False).get(chunk_key)
            if replay is not None:
                replayed += 1
                clock = time.perf_counter()
                n_docs = _replay_chunk(replay, outputs, skips, counters, score_rows)
                timings["replayed_chunks_s"] += _lap(clock)
            else:
                outputs.recorded, first_skip, first_row = {}, len(skips), len(score_rows)
                n_docs = _run_chunk(chunk, parts, resolved, cache, outputs, skips, identities, fatal, counters,
                                    score_rows, timings)
                if all(r["status"] == "ok" for r in score_rows[first_row:]) and all(
                        s.cacheable for s in parts["summarizers"]):
                    cache.put_many("chunk", [(chunk_key, {"records": outputs.recorded, "n_docs": n_docs,
                                                          "skips": skips[first_skip:],
                                                          "score_rows": score_rows[first_row:]})], fmt="pickle")
                outputs.recorded = None
            n_scored_clusters += n_docs[0]
            n_scored_articles += n_docs[1]
            outputs.flush()
        if not n_scored_clusters:
            raise BenchError("no cluster has at least 2 usable articles, so nothing can be scored: "
                             + "; ".join(f"{s.cluster_id}/{s.article_id or '*'}: {s.reason}" for s in skips))
        for s in skips:
            outputs.write("skipped", s.to_dict())
    finally:
        outputs.close()
    throughput = {name: c.report() for name, c in counters.items()}
    for name, t in throughput.items():
        if t["cached"] or t["computed"]:
            log.info("summarizer %s: %d cached, %d computed, %d failed", name, t["cached"], t["computed"],
                     t["failed"])

    semantic = {k: v for k, v in resolved.items() if k not in NON_SEMANTIC_KEYS}
    scorer_settings = {k: semantic.get(k) for k in ("clean", "facts", "matcher", "consensus", "score")}
    signature = {
        "bench_version": _version(), "config_hash": stable_hash(semantic), "data_hash": dh,
        "scorer_hash": stable_hash(scorer_settings), "shards": {**layout, "assignment": SHARD_ASSIGNMENT},
        **environment(),
    }
    stats = {**DEFAULT_STATS, **(resolved.get("stats") or {})}
    signature["bootstrap"] = {k: stats[k] for k in ("seed", "resamples", "confidence", "alpha")}
    signature["signature_string"] = (f"bench:{signature['bench_version']}|data:{dh}|scorer:{signature['scorer_hash']}"
                                     f"|cfg:{signature['config_hash']}|boot:{stats['resamples']}@{stats['seed']}"
                                     + (f"|shard:{layout['index']}/{layout['count']}" if layout["count"] > 1 else "")
                                     + f"|git:{(signature['git']['commit'] or 'none')[:12]}"
                                     + ("+dirty" if signature["git"]["dirty"] else ""))
    board = {
        "schema_version": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "signature": signature, "main_metric": MAIN_METRIC, "metrics": list(METRICS),
        "rows": leaderboard_rows(score_rows, identities),
        "dataset": {**dataset_info, "n_scored_clusters": n_scored_clusters, "n_scored_articles": n_scored_articles},
        "throughput": throughput, "skipped": [s.to_dict() for s in skips],
        "cache": {"path": str(cache.path) if cache.enabled else None, "hits": cache.hits, "misses": cache.misses,
                  "replayed_chunks": replayed},
        "timings": _rounded(timings), "runtime_seconds": round(time.perf_counter() - started, 3),
    }
    for r in board["rows"]:
        r["throughput"] = throughput[r["summarizer"]]
    add_statistics(board, score_rows, stats)
    write_config(out_dir, OmegaConf.to_yaml(OmegaConf.create(resolved)))
    write_board(board, out_dir, to_markdown(board))
    if cfg.get("html", True):
        write_html(out_dir)
    return board


def _run_chunk(chunk, parts, resolved, cache: Cache, outputs: _Outputs, skips: list[Skip], identities, fatal,
               counters, score_rows: list[dict[str, Any]], timings: dict[str, Any]) -> tuple[int, int]:
    """Every stage for one chunk of clusters; returns (scored clusters, scored articles)."""
    clock = time.perf_counter()
    cleaned = []
    for c in chunk:
        kept = []
        for a in c.articles:
            ca, reason = parts["cleaner"].clean(a)
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
    timings["load_and_clean_s"] += _lap(clock)
    if not cleaned:
        return 0, 0

    clock = time.perf_counter()
    flat = [(cid, ca) for cid, kept in cleaned for ca in kept]
    facts_id = resolved["facts"]
    parsed = _extract(parts["facts"], facts_id, cache, [(f"{cid}/{ca.id}", ca.text) for cid, ca in flat],
                      resolved.get("spacy_processes", 1))
    docs_by_cluster: dict[str, list[Document]] = {}
    for (cid, ca), p in zip(flat, parsed):
        facts = tuple(type(f)(f.id, ca.id, f.text, f.start, f.end, f.sentence) for f in p.facts)
        doc = Document(cid, ca.article, ca.text, p.sentences, facts)
        if not doc.sentences:
            skips.append(Skip("facts", cid, "no sentences found", ca.id))
            continue
        docs_by_cluster.setdefault(cid, []).append(doc)
    # human summaries (validity metrics): split into sentences by the run's own extractor, for rougeLsum
    humans = {c.id: c.summary for c in chunk if c.summary and c.id in docs_by_cluster}
    human_parsed = _extract(parts["facts"], facts_id, cache, [(f"{cid}/human_summary", t) for cid, t in humans.items()],
                            resolved.get("spacy_processes", 1))
    human_sentences = {cid: [x.text for x in p.sentences] for cid, p in zip(humans, human_parsed)}
    timings["facts_s"] += _lap(clock)

    clock = time.perf_counter()
    consensus_keys = {cid: key("consensus", code_hash(), facts_id, resolved["matcher"], resolved["consensus"],
                               [(d.id, d.article.source, text_hash(d.text)) for d in docs])
                      for cid, docs in docs_by_cluster.items()}
    hits = cache.get_many("consensus", list(consensus_keys.values()))
    consensus: dict[str, ClusterConsensus] = {cid: hits[k] for cid, k in consensus_keys.items() if k in hits}
    missing = [cid for cid in docs_by_cluster if cid not in consensus]
    for cid in missing:
        consensus[cid] = parts["consensus"].build(cid, docs_by_cluster[cid])
    cache.put_many("consensus", [(consensus_keys[cid], consensus[cid]) for cid in missing], fmt="pickle")
    for cid, docs in docs_by_cluster.items():
        cc = consensus[cid]
        for u in cc.units:
            outputs.write("consensus", _unit_record(u, cc, docs))
        outputs.write("sources", {"cluster_id": cid, "source_of": cc.source_of,
                                  "dependencies": [asdict(dep) for dep in cc.dependencies]})
    docs = [d for ds in docs_by_cluster.values() for d in ds]
    references = [consensus[d.cluster_id].reference(d.id) for d in docs]
    timings["consensus_s"] += _lap(clock)

    # summarize with every summarizer, then parse all their summaries in one batch, then score
    all_summaries = {}
    for s in parts["summarizers"]:
        clock = time.perf_counter()
        all_summaries[s.name], fatal[s.name] = _summarize(s, identities[s.name], fatal[s.name], docs, references,
                                                          cache, counters[s.name])
        timings["summarize_s"][s.name] += _lap(clock)
    clock = time.perf_counter()
    ok = [sm for summaries in all_summaries.values() for sm in summaries if sm.ok]
    parsed_summaries = _extract(parts["facts"], facts_id, cache,
                                [(f"{sm.cluster_id}/{sm.article_id}/{sm.summarizer}", sm.text) for sm in ok],
                                resolved.get("spacy_processes", 1))
    parsed_of = {id(sm): p for sm, p in zip(ok, parsed_summaries)}
    parse_seconds = _lap(clock)
    scorer_id = {k: resolved.get(k) for k in ("facts", "matcher", "consensus", "score")}
    for s in parts["summarizers"]:
        clock = time.perf_counter()
        summaries = all_summaries[s.name]
        mine = [sm for sm in summaries if sm.ok]
        for sm in mine:
            sm.meta.setdefault("sentences", [x.text for x in parsed_of[id(sm)].sentences])
        for sm in summaries:
            outputs.write("summaries", asdict(sm))
        score_keys = {id(sm): key("score", code_hash(), scorer_id, consensus_keys[sm.cluster_id], sm.article_id,
                                  sm.meta["sentences"], human_sentences.get(sm.cluster_id)) for sm in mine}
        cached_scores = cache.get_many("score", list(score_keys.values()))
        new_scores = []
        for sm, d in zip(summaries, docs):
            row = {"summarizer": s.name, "cluster_id": d.cluster_id, "article_id": d.id}
            if not sm.ok:
                row.update(status="failed", error=sm.error, metrics=None)
            else:
                result = cached_scores.get(score_keys[id(sm)])
                if result is None:
                    item = ScoredInput(sm, d, sm.meta["sentences"], list(parsed_of[id(sm)].facts))
                    result = parts["scorer"].score(item, consensus[d.cluster_id], docs_by_cluster[d.cluster_id],
                                                   human_sentences.get(d.cluster_id))
                    new_scores.append((score_keys[id(sm)], result))
                row.update(status="ok", **result)
            outputs.write("scores", row)
            score_rows.append({k: row.get(k) for k in LEADERBOARD_KEYS})
        cache.put_many("score", new_scores)
        timings["score_s"][s.name] += _lap(clock) + parse_seconds * len(mine) / max(1, len(ok))
    return len(docs_by_cluster), len(docs)


def _replay_chunk(replay: dict[str, Any], outputs: _Outputs, skips: list[Skip], counters,
                  score_rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Write a cached chunk's lines again; its summaries count as cached."""
    outputs.replay(replay["records"])
    for row in replay["score_rows"]:
        counters[row["summarizer"]].articles += 1
        counters[row["summarizer"]].cached += 1
    skips.extend(replay["skips"])
    score_rows.extend(replay["score_rows"])
    return replay["n_docs"]


def _lap(since: float) -> float:
    return time.perf_counter() - since


def _rounded(timings: dict[str, Any]) -> dict[str, Any]:
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 4) for k, v in timings.items()}


def _extract(extractor: FactExtractor, extractor_id: Any, cache: Cache, items: list[tuple[str, str]],
             n_process: int = 1) -> list[ParsedText]:
    """The fact extractor through the cache. A parse depends only on the text (and the code and extractor
    config), so each distinct text is parsed once, keyed without its owner, and its facts are then
    labelled with each owner's ids."""
    keys = [key("facts", code_hash(), extractor_id, text_hash(text)) for _, text in items]
    hits = cache.get_many("facts", keys)
    todo = {k: text for k, (_, text) in zip(keys, items) if k not in hits}
    if todo:
        fresh = extractor.extract([("", text) for text in todo.values()], n_process=n_process)
        cache.put_many("facts", list(zip(todo, fresh)), fmt="pickle")
        hits.update(zip(todo, fresh))
    return [_owned(hits[k], owner) for k, (owner, _) in zip(keys, items)]


def _owned(parsed: ParsedText, owner: str) -> ParsedText:
    return ParsedText(parsed.sentences, tuple(replace(f, id=f"{owner}#{n}", article_id=owner)
                                              for n, f in enumerate(parsed.facts)))


def summary_key(identity: dict[str, Any], doc: Document, reference: list[ReferenceUnit] | None) -> str:
    """Content address of one summary: every input of the output. The summarizer identity (model,
    revision or file hash, prompt, generation settings), the cluster and article ids (a seeded summarizer
    such as random3 draws from them), the article text, and for reference-aware summarizers the reference."""
    ref = None if reference is None else [(r.unit.text, r.weight, r.attainable, [f.text for f in r.unit.facts])
                                          for r in reference]
    return key("summary", identity, doc.cluster_id, doc.id, text_hash(doc.text), ref)


def _identity(s: Summarizer) -> tuple[dict[str, Any], str | None]:
    """The summarizer's identity, computed once per run (it may hash model files), or why it has none."""
    try:
        return {"name": s.name, **s.identity()}, None
    except (BenchError, OSError) as e:
        return {"name": s.name, "class": f"{type(s).__module__}.{type(s).__qualname__}"}, f"{type(e).__name__}: {e}"


class _Throughput:
    """One summarizer's counts and compute time, summed over the run's chunks."""

    def __init__(self):
        self.articles = self.computed = self.cached = self.failed = 0
        self.compute_seconds = 0.0
        self.tokens = 0
        self.token_counts_seen = False
        self.cacheable = True

    def report(self) -> dict[str, Any]:
        n_tokens = self.tokens
        seconds = self.compute_seconds
        return {"articles": self.articles, "computed": self.computed, "cached": self.cached, "failed": self.failed,
                "compute_seconds": round(seconds, 4),
                "articles_per_second": round(self.computed / seconds, 3) if seconds > 0 else None,
                "generated_tokens": n_tokens if self.token_counts_seen else None,
                "generated_tokens_per_second": (round(n_tokens / seconds, 3)
                                                if self.token_counts_seen and seconds > 0 else None),
                "cacheable": self.cacheable}


def _summarize(s: Summarizer, identity: dict[str, Any], fatal_error: str | None, docs: list[Document], references,
               cache: Cache, counts: _Throughput) -> tuple[list[Summary], str | None]:
    """Cached summaries first; the rest in batches of `s.batch_size`, each batch written to the cache as
    soon as it is done (a killed run loses at most one batch). A failed batch is retried one article at
    a time, so that one bad article fails alone. Failures are recorded, never cached, never scored.
    A summarizer that cannot run (no identity, or a BenchError such as a missing model) fails every
    article with the reason; the reason is returned so that later chunks fail at once too."""
    out: list[Summary | None] = [None] * len(docs)
    if fatal_error:
        out = [Summary(d.cluster_id, d.id, s.name, None, error=fatal_error) for d in docs]
    aware = isinstance(s, ReferenceAwareSummarizer)
    cache_identity = {k: v for k, v in identity.items() if k != "name"}  # renaming a summarizer reuses its work
    keys = [summary_key(cache_identity, d, r if aware else None) if s.cacheable and not fatal_error else None
            for d, r in zip(docs, references)]
    hits = cache.get_many("summary", [k for k in keys if k])
    for i, (d, k) in enumerate(zip(docs, keys)):
        if k in hits:
            out[i] = Summary(d.cluster_id, d.id, s.name, hits[k]["text"], meta={**hits[k]["meta"], "cached": True})
    todo = [i for i, sm in enumerate(out) if sm is None]
    size = s.batch_size or max(1, len(todo))
    batches = [todo[b:b + size] for b in range(0, len(todo), size)]
    for batch in tqdm(batches, desc=f"summarize {s.name}", unit="batch", disable=None if batches else True,
                      leave=False):
        t0 = time.perf_counter()
        try:
            results = _call(s, [docs[i] for i in batch], [references[i] for i in batch])
        except BenchError as e:  # the summarizer cannot run at all (e.g. its model is missing): record, go on
            log.error("summarizer %s cannot run: %s", s.name, e)
            fatal_error = f"BenchError: {e}"
            for i in todo:
                if out[i] is None:
                    out[i] = Summary(docs[i].cluster_id, docs[i].id, s.name, None, error=fatal_error)
            break
        finally:
            counts.compute_seconds += time.perf_counter() - t0
        for i, sm in zip(batch, results):
            out[i] = sm
        cache.put_many("summary", [(keys[i], {"text": sm.text, "meta": sm.meta})
                                   for i, sm in zip(batch, results) if sm.ok and keys[i]])
    done = [out[i] for i in todo]
    tokens = [sm.meta.get("generated_tokens") for sm in done if sm.ok]
    counts.tokens += sum(t for t in tokens if isinstance(t, int))
    counts.token_counts_seen |= bool(tokens)
    counts.articles += len(docs)
    counts.computed += len(todo)
    counts.cached += sum(1 for k in keys if k in hits)
    counts.failed += sum(1 for sm in out if not sm.ok)
    counts.cacheable = s.cacheable
    return out, fatal_error


def _call(s: Summarizer, docs: list[Document], references) -> list[Summary]:
    def call(batch_docs, batch_refs):
        if isinstance(s, ReferenceAwareSummarizer):
            return s.summarize_with_reference(batch_docs, batch_refs)
        return s.summarize(batch_docs)

    try:
        out = call(docs, references)
        if len(out) != len(docs):
            raise RuntimeError(f"returned {len(out)} summaries for {len(docs)} articles")
    except BenchError:
        raise
    except Exception as batch_error:  # noqa: BLE001 - a model may raise anything; we record it per article
        log.warning("summarizer %s failed on a batch (%s: %s); retrying article by article", s.name,
                    type(batch_error).__name__, batch_error)
        out = []
        for d, r in zip(docs, references):
            try:
                out.extend(call([d], [r]))
            except BenchError:
                raise
            except Exception as e:  # noqa: BLE001
                out.append(Summary(d.cluster_id, d.id, s.name, None, error=f"{type(e).__name__}: {e}"))
    for sm in out:
        if sm.ok and not sm.text.strip():
            sm.error, sm.text = "empty summary", None
    return out


def _unit_record(u, cc: ClusterConsensus, docs: list[Document]) -> dict[str, Any]:
    source_names = {d.id: d.article.source for d in docs}
    return {
        "unit_id": u.id, "cluster_id": u.cluster_id, "text": u.text, "support": u.support,
        "articles": list(u.articles), "outlets": sorted({source_names[a] for a in u.articles}),
        "sources": list(u.sources),
        "facts": [{"article_id": f.article_id, "text": f.text, "start": f.start, "end": f.end} for f in u.facts],
        "reference_for": {d.id: {"weight": r.weight, "attainable": r.attainable}
                          for d in docs for r in cc.reference(d.id) if r.unit.id == u.id},
    }


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("bench")
    except metadata.PackageNotFoundError:
        return "0+unknown"
