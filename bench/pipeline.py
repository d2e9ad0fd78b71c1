"""The whole run: data -> clean -> facts -> consensus -> summarize -> score -> report.

`run(cfg, out_dir)` is pure in the sense that matters: everything it needs comes from `cfg`, and
everything it produces goes to `out_dir` (and its return value)."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from tqdm.auto import tqdm
from omegaconf import DictConfig, OmegaConf

from bench.cache import Cache, code_hash, key, text_hash
from bench.cache_guard import set_aside_if_corrupt
from bench.consensus import ClusterConsensus, ConsensusBuilder, ReferenceUnit
from bench.data import Dataset
from bench.facts import FactExtractor
from bench.matching import Matcher
from bench.report import DEFAULT_STATS, SCHEMA_VERSION, add_statistics, leaderboard_rows, write_board
from bench.score import MAIN_METRIC, METRICS, ScoredInput, Scorer
from bench.signature import data_hash, environment, stable_hash
from bench.summarize import ReferenceAwareSummarizer, Summarizer
from bench.types import BenchError, Document, Skip, Summary
from bench.validate import validate_config

log = logging.getLogger("bench")
NON_SEMANTIC_KEYS = ("results_dir", "run_name", "hydra", "cache", "html")


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


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    validate_config(cfg, check_results_dir=False)  # every bad setting, one line each, before any work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = build_parts(cfg)
    set_aside_if_corrupt(cfg.cache.path if cfg.cache.enabled else None)  # warns; a new cache is built
    cache = Cache(cfg.cache.path if cfg.cache.enabled else None)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    timings: dict[str, Any] = {}
    clock = time.perf_counter()
    clusters = parts["dataset"].load()
    skips: list[Skip] = list(parts["dataset"].skipped)  # unreadable files: recorded, the rest goes on

    # clean, then drop what cannot be scored
    cleaned = []
    with open(out_dir / "articles.jsonl", "w") as fh:
        for c in clusters:
            kept = []
            for a in c.articles:
                ca, reason = parts["cleaner"].clean(a)
                fh.write(json.dumps({"cluster_id": c.id, "article_id": a.id, "source": a.source, "title": a.title,
                                     "dropped": reason, "text": ca.text,
                                     "removed": [asdict(r) for r in ca.removed]}, ensure_ascii=False) + "\n")
                if reason:
                    skips.append(Skip("clean", c.id, reason, a.id))
                else:
                    kept.append(ca)
            if len(kept) < 2:
                skips.append(Skip("consensus", c.id, f"cluster has {len(kept)} usable article(s); leave-one-out "
                                  "consensus needs at least 2"))
                continue
            cleaned.append((c.id, kept))
    if not cleaned:
        raise BenchError("no cluster has at least 2 usable articles, so nothing can be scored: "
                         + "; ".join(f"{s.cluster_id}/{s.article_id or '*'}: {s.reason}" for s in skips))

    timings["load_and_clean_s"] = _lap(clock)
    clock = time.perf_counter()

    # facts for every usable article in one batch
    flat = [(cid, ca) for cid, kept in cleaned for ca in kept]
    facts_id = resolved["facts"]
    parsed = _extract(parts["facts"], facts_id, cache, [(f"{cid}/{ca.id}", ca.text) for cid, ca in flat])
    docs_by_cluster: dict[str, list[Document]] = {}
    for (cid, ca), p in zip(flat, parsed):
        facts = tuple(type(f)(f.id, ca.id, f.text, f.start, f.end, f.sentence) for f in p.facts)
        doc = Document(cid, ca.article, ca.text, p.sentences, facts)
        if not doc.sentences:
            skips.append(Skip("facts", cid, "no sentences found", ca.id))
            continue
        docs_by_cluster.setdefault(cid, []).append(doc)
    # human summaries (validity metrics): split into sentences by the run's own extractor, for rougeLsum
    humans = {c.id: c.summary for c in clusters if c.summary and c.id in docs_by_cluster}
    human_parsed = _extract(parts["facts"], facts_id, cache, [(f"{cid}/human_summary", t) for cid, t in humans.items()])
    human_sentences = {cid: [x.text for x in p.sentences] for cid, p in zip(humans, human_parsed)}

    timings["facts_s"] = _lap(clock)
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
    with open(out_dir / "consensus.jsonl", "w") as fh, open(out_dir / "sources.jsonl", "w") as gfh:
        for cid, docs in docs_by_cluster.items():
            cc = consensus[cid]
            for u in cc.units:
                fh.write(json.dumps(_unit_record(u, cc, docs), ensure_ascii=False) + "\n")
            gfh.write(json.dumps({"cluster_id": cid, "source_of": cc.source_of,
                                  "dependencies": [asdict(dep) for dep in cc.dependencies]}, ensure_ascii=False) + "\n")
    docs = [d for ds in docs_by_cluster.values() for d in ds]
    references = [consensus[d.cluster_id].reference(d.id) for d in docs]

    timings["consensus_s"] = _lap(clock)
    timings["summarize_s"], timings["score_s"] = {}, {}

    # summarize and score, one summarizer at a time, writing as we go
    scorer_id = {k: resolved.get(k) for k in ("facts", "matcher", "consensus", "score")}
    score_rows: list[dict[str, Any]] = []
    throughput, identities = {}, {}
    with open(out_dir / "summaries.jsonl", "w") as sfh, open(out_dir / "scores.jsonl", "w") as cfh:
        for s in parts["summarizers"]:
            s.cache = cache
            clock = time.perf_counter()
            identities[s.name], identity_error = _identity(s)
            summaries, throughput[s.name] = _summarize(s, identities[s.name], identity_error, docs, references, cache)
            timings["summarize_s"][s.name] = _lap(clock)
            clock = time.perf_counter()
            ok = [sm for sm in summaries if sm.ok]
            parsed_summaries = _extract(parts["facts"], facts_id, cache,
                                        [(f"{sm.cluster_id}/{sm.article_id}/{sm.summarizer}", sm.text) for sm in ok])
            sentence_lists = {id(sm): ([x.text for x in p.sentences], list(p.facts)) for sm, p in zip(ok, parsed_summaries)}
            for sm in ok:
                sm.meta.setdefault("sentences", sentence_lists[id(sm)][0])
            for sm in summaries:
                sfh.write(json.dumps(asdict(sm), ensure_ascii=False) + "\n")
            score_keys = {id(sm): key("score", code_hash(), scorer_id, consensus_keys[sm.cluster_id], sm.article_id,
                                      sm.meta["sentences"], human_sentences.get(sm.cluster_id)) for sm in ok}
            cached_scores = cache.get_many("score", list(score_keys.values()))
            new_scores = []
            for sm, d in zip(summaries, docs):
                row = {"summarizer": s.name, "cluster_id": d.cluster_id, "article_id": d.id}
                if not sm.ok:
                    row.update(status="failed", error=sm.error, metrics=None)
                else:
                    result = cached_scores.get(score_keys[id(sm)])
                    if result is None:
                        _, facts = sentence_lists[id(sm)]
                        item = ScoredInput(sm, d, sm.meta["sentences"], facts)
                        result = parts["scorer"].score(item, consensus[d.cluster_id], docs_by_cluster[d.cluster_id],
                                                       human_sentences.get(d.cluster_id))
                        new_scores.append((score_keys[id(sm)], result))
                    row.update(status="ok", **result)
                score_rows.append(row)
                cfh.write(json.dumps(row, ensure_ascii=False) + "\n")
            cache.put_many("score", new_scores)
            sfh.flush()
            cfh.flush()
            timings["score_s"][s.name] = _lap(clock)

    semantic = {k: v for k, v in resolved.items() if k not in NON_SEMANTIC_KEYS}
    scorer_settings = {k: semantic.get(k) for k in ("clean", "facts", "matcher", "consensus", "score")}
    dh = data_hash(clusters)
    signature = {
        "bench_version": _version(), "config_hash": stable_hash(semantic), "data_hash": dh,
        "scorer_hash": stable_hash(scorer_settings), **environment(),
    }
    stats = {**DEFAULT_STATS, **(resolved.get("stats") or {})}
    signature["bootstrap"] = {k: stats[k] for k in ("seed", "resamples", "confidence", "alpha")}
    signature["signature_string"] = (f"bench:{signature['bench_version']}|data:{dh}|scorer:{signature['scorer_hash']}"
                                     f"|cfg:{signature['config_hash']}|boot:{stats['resamples']}@{stats['seed']}"
                                     f"|git:{(signature['git']['commit'] or 'none')[:12]}"
                                     + ("+dirty" if signature["git"]["dirty"] else ""))
    board = {
        "schema_version": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "signature": signature, "main_metric": MAIN_METRIC, "metrics": list(METRICS),
        "rows": leaderboard_rows(score_rows, identities),
        "dataset": {"identity": parts["dataset"].identity(), "n_clusters": len(clusters),
                    "n_articles": sum(len(c.articles) for c in clusters), "n_scored_clusters": len(docs_by_cluster),
                    "n_scored_articles": len(docs)},
        "throughput": throughput, "skipped": [s.to_dict() for s in skips],
        "cache": {"path": str(cache.path) if cache.enabled else None, "hits": cache.hits, "misses": cache.misses},
        "timings": timings, "runtime_seconds": round(time.perf_counter() - started, 3),
    }
    for r in board["rows"]:
        r["throughput"] = throughput[r["summarizer"]]
    add_statistics(board, score_rows, stats)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    with open(out_dir / "skipped.jsonl", "w") as fh:
        for s in skips:
            fh.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    write_board(board, out_dir)
    if cfg.get("html", True):
        from bench.html_report import write_html

        write_html(out_dir)
    return board


def _lap(since: float) -> float:
    return round(time.perf_counter() - since, 4)


def _extract(extractor: FactExtractor, extractor_id: Any, cache: Cache, items: list[tuple[str, str]]):
    """The fact extractor through the cache: parsing is keyed by code, extractor config, owner and text."""
    keys = [key("facts", code_hash(), extractor_id, owner, text_hash(text)) for owner, text in items]
    hits = cache.get_many("facts", keys)
    todo = [i for i, k in enumerate(keys) if k not in hits]
    if todo:
        fresh = extractor.extract([items[i] for i in todo])
        cache.put_many("facts", [(keys[i], p) for i, p in zip(todo, fresh)], fmt="pickle")
        hits.update({keys[i]: p for i, p in zip(todo, fresh)})
    return [hits[k] for k in keys]


def summary_key(identity: dict[str, Any], doc: Document, reference: list[ReferenceUnit] | None) -> str:
    """Content address of one summary: summarizer identity (model, revision or file hash, prompt,
    generation settings), the article text, and for reference-aware summarizers the reference."""
    ref = None if reference is None else [(r.unit.text, r.weight, r.attainable, [f.text for f in r.unit.facts])
                                          for r in reference]
    return key("summary", identity, text_hash(doc.text), ref)


def _identity(s: Summarizer) -> tuple[dict[str, Any], str | None]:
    """The summarizer's identity, computed once per run (it may hash model files), or why it has none."""
    try:
        return {"name": s.name, **s.identity()}, None
    except (BenchError, OSError) as e:
        return {"name": s.name, "class": f"{type(s).__module__}.{type(s).__qualname__}"}, f"{type(e).__name__}: {e}"


def _summarize(s: Summarizer, identity: dict[str, Any], identity_error: str | None, docs: list[Document], references,
               cache: Cache) -> tuple[list[Summary], dict[str, Any]]:
    """Cached summaries first; the rest in batches of `s.batch_size`, each batch written to the cache as
    soon as it is done (a killed run loses at most one batch). A failed batch is retried one article at
    a time, so that one bad article fails alone. Failures are recorded, never cached, never scored.
    A summarizer without an identity (its model cannot be found) fails every article with the reason."""
    out: list[Summary | None] = [None] * len(docs)
    if identity_error:
        log.error("summarizer %s cannot run: %s", s.name, identity_error)
        out = [Summary(d.cluster_id, d.id, s.name, None, error=identity_error) for d in docs]
    aware = isinstance(s, ReferenceAwareSummarizer)
    cache_identity = {k: v for k, v in identity.items() if k != "name"}  # renaming a summarizer reuses its work
    keys = [summary_key(cache_identity, d, r if aware else None) if s.cacheable and not identity_error else None
            for d, r in zip(docs, references)]
    hits = cache.get_many("summary", [k for k in keys if k])
    for i, (d, k) in enumerate(zip(docs, keys)):
        if k in hits:
            out[i] = Summary(d.cluster_id, d.id, s.name, hits[k]["text"], meta={**hits[k]["meta"], "cached": True})
    todo = [i for i, sm in enumerate(out) if sm is None]
    size = s.batch_size or max(1, len(todo))
    compute = 0.0
    batches = [todo[b:b + size] for b in range(0, len(todo), size)]
    for batch in tqdm(batches, desc=f"summarize {s.name}", unit="batch", disable=None if batches else True,
                      leave=False):
        t0 = time.perf_counter()
        try:
            results = _call(s, [docs[i] for i in batch], [references[i] for i in batch])
        except BenchError as e:  # the summarizer cannot run at all (e.g. its model is missing): record, go on
            log.error("summarizer %s cannot run: %s", s.name, e)
            for i in todo:
                if out[i] is None:
                    out[i] = Summary(docs[i].cluster_id, docs[i].id, s.name, None, error=f"BenchError: {e}")
            break
        finally:
            compute += time.perf_counter() - t0
        for i, sm in zip(batch, results):
            out[i] = sm
        cache.put_many("summary", [(keys[i], {"text": sm.text, "meta": sm.meta})
                                   for i, sm in zip(batch, results) if sm.ok and keys[i]])
    done = [out[i] for i in todo]
    tokens = [sm.meta.get("generated_tokens") for sm in done if sm.ok]
    n_tokens = sum(t for t in tokens if isinstance(t, int))
    stats = {"articles": len(docs), "computed": len(todo), "cached": sum(1 for k in keys if k in hits),
             "failed": sum(1 for sm in out if not sm.ok), "compute_seconds": round(compute, 4),
             "articles_per_second": round(len(todo) / compute, 3) if compute > 0 else None,
             "generated_tokens": n_tokens if tokens else None,
             "generated_tokens_per_second": round(n_tokens / compute, 3) if tokens and compute > 0 else None,
             "cacheable": s.cacheable}
    if stats["cached"] or stats["computed"]:
        log.info("summarizer %s: %d cached, %d computed, %d failed", s.name, stats["cached"], stats["computed"],
                 stats["failed"])
    return out, stats


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
