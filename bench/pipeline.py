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
from omegaconf import DictConfig, OmegaConf

from bench.consensus import ClusterConsensus, ConsensusBuilder
from bench.data import Dataset
from bench.facts import FactExtractor
from bench.matching import Matcher
from bench.report import SCHEMA_VERSION, leaderboard_rows, write_board
from bench.score import MAIN_METRIC, METRICS, ScoredInput, Scorer
from bench.signature import data_hash, environment, stable_hash
from bench.summarize import ReferenceAwareSummarizer, Summarizer
from bench.types import BenchError, Document, Skip, Summary

log = logging.getLogger("bench")
NON_SEMANTIC_KEYS = ("results_dir", "run_name", "hydra")


def build_parts(cfg: DictConfig) -> dict[str, Any]:
    """Instantiate every configured part. Constructors are cheap: nothing loads here."""
    matcher: Matcher = instantiate(cfg.matcher)
    parts = {
        "dataset": instantiate(cfg.dataset),
        "cleaner": instantiate(cfg.clean),
        "facts": instantiate(cfg.facts),
        "matcher": matcher,
        "consensus": instantiate(cfg.consensus, matcher=matcher),
        "scorer": Scorer(matcher, **OmegaConf.to_container(cfg.score, resolve=True)),
    }
    if not cfg.summarizer:
        raise BenchError("no summarizer selected (summarizer=[...] is empty)")
    parts["summarizers"] = [_summarizer(name, node, matcher) for name, node in cfg.summarizer.items()]
    for key, cls in (("dataset", Dataset), ("facts", FactExtractor), ("matcher", Matcher),
                     ("consensus", ConsensusBuilder)):
        if not isinstance(parts[key], cls):
            raise BenchError(f"config '{key}' built a {type(parts[key]).__name__}, not a {cls.__name__}")
    return parts


def _summarizer(name: str, node: DictConfig, matcher: Matcher) -> Summarizer:
    extra = {"matcher": matcher} if "matcher" in node and node.matcher is None else {}
    s = instantiate(node, name=name, **extra)
    if not isinstance(s, Summarizer):
        raise BenchError(f"summarizer '{name}' built a {type(s).__name__}, not a Summarizer")
    return s


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = build_parts(cfg)
    clusters = parts["dataset"].load()
    skips: list[Skip] = []

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

    # facts for every usable article in one batch
    flat = [(cid, ca) for cid, kept in cleaned for ca in kept]
    parsed = parts["facts"].extract([(f"{cid}/{ca.id}", ca.text) for cid, ca in flat])
    docs_by_cluster: dict[str, list[Document]] = {}
    for (cid, ca), p in zip(flat, parsed):
        facts = tuple(type(f)(f.id, ca.id, f.text, f.start, f.end, f.sentence) for f in p.facts)
        doc = Document(cid, ca.article, ca.text, p.sentences, facts)
        if not doc.sentences:
            skips.append(Skip("facts", cid, "no sentences found", ca.id))
            continue
        docs_by_cluster.setdefault(cid, []).append(doc)

    consensus: dict[str, ClusterConsensus] = {}
    with open(out_dir / "consensus.jsonl", "w") as fh, open(out_dir / "sources.jsonl", "w") as gfh:
        for cid, docs in docs_by_cluster.items():
            cc = parts["consensus"].build(cid, docs)
            consensus[cid] = cc
            for u in cc.units:
                fh.write(json.dumps(_unit_record(u, cc, docs), ensure_ascii=False) + "\n")
            gfh.write(json.dumps({"cluster_id": cid, "source_of": cc.source_of,
                                  "dependencies": [asdict(dep) for dep in cc.dependencies]}, ensure_ascii=False) + "\n")
    docs = [d for ds in docs_by_cluster.values() for d in ds]
    references = [consensus[d.cluster_id].reference(d.id) for d in docs]

    # summarize and score, one summarizer at a time, writing as we go
    score_rows: list[dict[str, Any]] = []
    throughput = {}
    with open(out_dir / "summaries.jsonl", "w") as sfh, open(out_dir / "scores.jsonl", "w") as cfh:
        for s in parts["summarizers"]:
            t0 = time.perf_counter()
            summaries = _summarize(s, docs, references)
            elapsed = time.perf_counter() - t0
            throughput[s.name] = {"seconds": round(elapsed, 4), "articles_per_second":
                                  round(len(docs) / elapsed, 3) if elapsed > 0 else None}
            ok = [(sm, d) for sm, d in zip(summaries, docs) if sm.ok]
            sentence_lists = _summary_sentences([sm for sm, _ in ok], parts["facts"])
            for sm, _ in ok:
                sm.meta.setdefault("sentences", sentence_lists[id(sm)][0])
            for sm in summaries:
                sfh.write(json.dumps(asdict(sm), ensure_ascii=False) + "\n")
            for sm, d in zip(summaries, docs):
                row = {"summarizer": s.name, "cluster_id": d.cluster_id, "article_id": d.id}
                if not sm.ok:
                    row.update(status="failed", error=sm.error, metrics=None)
                else:
                    sents, facts = sentence_lists[id(sm)]
                    item = ScoredInput(sm, d, sm.meta["sentences"], facts)
                    row.update(status="ok", **parts["scorer"].score(item, consensus[d.cluster_id],
                                                                     docs_by_cluster[d.cluster_id]))
                score_rows.append(row)
                cfh.write(json.dumps(row, ensure_ascii=False) + "\n")
            sfh.flush()
            cfh.flush()

    identities = {s.name: {"name": s.name, **s.identity()} for s in parts["summarizers"]}
    resolved = OmegaConf.to_container(cfg, resolve=True)
    semantic = {k: v for k, v in resolved.items() if k not in NON_SEMANTIC_KEYS}
    scorer_settings = {k: semantic.get(k) for k in ("clean", "facts", "matcher", "consensus", "score")}
    dh = data_hash(clusters)
    signature = {
        "bench_version": _version(), "config_hash": stable_hash(semantic), "data_hash": dh,
        "scorer_hash": stable_hash(scorer_settings), **environment(),
    }
    signature["signature_string"] = (f"bench:{signature['bench_version']}|data:{dh}|scorer:{signature['scorer_hash']}"
                                     f"|cfg:{signature['config_hash']}|git:{(signature['git']['commit'] or 'none')[:12]}"
                                     + ("+dirty" if signature["git"]["dirty"] else ""))
    board = {
        "schema_version": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "signature": signature, "main_metric": MAIN_METRIC, "metrics": list(METRICS),
        "rows": leaderboard_rows(score_rows, identities),
        "dataset": {"identity": parts["dataset"].identity(), "n_clusters": len(clusters),
                    "n_articles": sum(len(c.articles) for c in clusters), "n_scored_clusters": len(docs_by_cluster),
                    "n_scored_articles": len(docs)},
        "throughput": throughput, "skipped": [s.to_dict() for s in skips],
        "runtime_seconds": round(time.perf_counter() - started, 3),
    }
    for r in board["rows"]:
        r["throughput"] = throughput[r["summarizer"]]
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    with open(out_dir / "skipped.jsonl", "w") as fh:
        for s in skips:
            fh.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    write_board(board, out_dir)
    return board


def _summarize(s: Summarizer, docs: list[Document], references) -> list[Summary]:
    """Batch first; if the batch fails, retry one article at a time so that one bad article fails alone."""
    def call(batch_docs, batch_refs):
        if isinstance(s, ReferenceAwareSummarizer):
            return s.summarize_with_reference(batch_docs, batch_refs)
        return s.summarize(batch_docs)

    try:
        out = call(docs, references)
        if len(out) != len(docs):
            raise RuntimeError(f"returned {len(out)} summaries for {len(docs)} articles")
    except Exception as batch_error:  # noqa: BLE001 - a model may raise anything; we record it per article
        log.warning("summarizer %s failed on the batch (%s); retrying article by article", s.name, batch_error)
        out = []
        for d, r in zip(docs, references):
            try:
                out.extend(call([d], [r]))
            except Exception as e:  # noqa: BLE001
                out.append(Summary(d.cluster_id, d.id, s.name, None, error=f"{type(e).__name__}: {e}"))
    for sm in out:
        if sm.ok and not sm.text.strip():
            sm.error, sm.text = "empty summary", None
    return out


def _summary_sentences(summaries: list[Summary], extractor: FactExtractor):
    parsed = extractor.extract([(f"{sm.cluster_id}/{sm.article_id}/{sm.summarizer}", sm.text) for sm in summaries])
    return {id(sm): ([s.text for s in p.sentences], list(p.facts)) for sm, p in zip(summaries, parsed)}


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
