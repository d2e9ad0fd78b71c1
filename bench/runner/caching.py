"""Caching at stage boundaries: each stage that computes is wrapped, as lm-evaluation-harness wraps a model in
`CachingLM`, so that its outputs are read from the cache when they are there and stored as they are made.

Every key holds the resolved config node of the part, the hash of the code that computes it and the part's
inputs (bench's whole code, `code_hash`, for the cheap derived stages; a summarizer's own code, `source_hash`,
for summaries, which may cost hours of model time): nothing that changes an output can be left out of its key. Where an output also depends on files
outside the config (a local model), their content hashes are in the key too."""
from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench.cache import Cache, code_hash, file_digest, key, source_hash, streamed_key, text_hash
from bench.reporting.leaderboard import statistics
from bench.runner.cache_guard import set_aside_if_corrupt
from bench.stages.consensus import ClusterConsensus, ConsensusBuilder, ReferenceUnit
from bench.stages.facts import FactExtractor, ParsedText
from bench.stages.score import ScoredInput, Scorer
from bench.stages.summarize import Summarizer
from bench.types import BenchError, Cluster, Document, Summary

log = logging.getLogger("bench")


def cache_path(settings: Any, layout: dict[str, int]) -> Path | None:
    """The run's SQLite cache (`settings`: the config's `cache` section). SQLite must not be shared over a
    network file system, so a shard of a sharded run writes its own file (`cache.sqlite` becomes
    `cache.shard1of4.sqlite`; `bench cache merge` folds them into one) unless `cache.per_shard` is false, or
    "auto" and `cache.path` lies on a local disk (`local_file_system`): then the shards share `cache.path`,
    which is safe for the processes of one machine (WAL, busy timeout) and lets a shard reuse what another
    has parsed."""
    if not settings["enabled"]:
        return None
    path = Path(settings["path"])
    per_shard = settings.get("per_shard", True)
    if per_shard == "auto":
        per_shard = not local_file_system(path)
    if layout["count"] == 1 or not per_shard:
        return path
    return path.with_name(f"{path.stem}.shard{layout['index']}of{layout['count']}{path.suffix}")


# file systems that live on this machine's own disks or memory (an allowlist: anything else may be shared)
LOCAL_FILE_SYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "tmpfs", "overlay", "apfs",
                                "hfs", "ntfs", "vfat", "exfat", "jfs", "reiserfs"})


def local_file_system(path: Path, mounts: str = "/proc/mounts") -> bool:
    """Is `path` on a local file system? Read from the mount table (the longest mount point above the path);
    False where that cannot be told (no /proc/mounts, as on macOS), so shards then keep their own files."""
    try:
        table = Path(mounts).read_text().splitlines()
    except OSError:
        return False
    target = path.expanduser().resolve()
    best, fs_type = -1, None
    for line in table:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(fields[1].replace("\\040", " "))
        if (target == point or point in target.parents) and len(point.parts) > best:
            best, fs_type = len(point.parts), fields[2]
    return fs_type in LOCAL_FILE_SYSTEMS


def open_cache(settings: Any, layout: dict[str, int]) -> Cache:
    """The run's cache; a corrupted file is set aside first (with a warning) and a new one is built."""
    path = cache_path(settings, layout)
    set_aside_if_corrupt(path)
    return Cache(path)


def part_key(namespace: str, node: Any, *inputs: Any) -> str:
    """The cache key of one output of a part: its namespace, bench's code, the part's config and the inputs."""
    return key(namespace, code_hash(), node, *inputs)


class CachedFacts:
    """The fact extractor. A parse depends only on the text, so each distinct text is parsed once, keyed
    without its owner, and its facts are then labelled with each owner's ids.

    Texts missing from the cache are parsed in batches of `batch_texts` (times `n_process`), each written as
    soon as it is parsed and each looked up again just before it is parsed: shards that share one cache
    (`cache.per_shard` false, or `auto` on a local disk; `cache_path`) reuse each other's parses. The texts
    go in the order of their keys: shard i of n owns the range [i/n, (i+1)/n) of the key space
    (`start_fraction`, `end_fraction`) and parses it first, then the others' ranges backward
    (`shard_order`): shards that meet the same texts parse different ones, and each finds most of the
    others' part in the cache. The order never changes a parse."""

    def __init__(self, extractor: FactExtractor, node: dict[str, Any], cache: Cache, n_process: int = 1,
                 start_fraction: float = 0.0, end_fraction: float = 1.0, batch_texts: int = 32):
        self.extractor, self.node, self.cache, self.n_process = extractor, node, cache, n_process
        self.start_fraction, self.end_fraction, self.batch_texts = start_fraction, end_fraction, batch_texts

    def extract(self, items: Sequence[tuple[str, str]]) -> list[ParsedText]:
        """items: (owner id, text), as `FactExtractor.extract`."""
        keys = [part_key("facts", self.node, text_hash(text)) for _, text in items]
        hits = self.cache.get_many("facts", keys)
        todo = sorted({k: text for k, (_, text) in zip(keys, items) if k not in hits}.items())
        todo = shard_order(todo, self.start_fraction, self.end_fraction)
        size = self.batch_texts * max(1, self.n_process)
        for i in range(0, len(todo), size):
            batch = dict(todo[i:i + size])
            if i:
                hits.update(self.cache.get_many("facts", list(batch), count=False))
                batch = {k: text for k, text in batch.items() if k not in hits}
            if batch:
                fresh = self.extractor.extract([("", text) for text in batch.values()], n_process=self.n_process)
                self.cache.put_many("facts", list(zip(batch, fresh)), fmt="pickle")
                hits.update(zip(batch, fresh))
        return [_owned(hits[k], owner) for k, (owner, _) in zip(keys, items)]


def shard_order(todo: list[tuple[str, str]], start: float, end: float) -> list[tuple[str, str]]:
    """`todo` (sorted by key) in the order a shard owning the key range [start, end) parses it: its own range
    forward, then the others' backward from just below `start`. Each other shard works forward through
    its own range, so this one meets it at its frontier rather than following it through the range."""
    keys = [k for k, _ in todo]
    lo, hi = bisect.bisect_left(keys, key_space_point(start)), bisect.bisect_left(keys, key_space_point(end))
    if end >= 1.0:
        hi = len(todo)
    return todo[lo:hi] + (todo[:lo][::-1] + todo[hi:][::-1])


def key_space_point(fraction: float) -> str:
    """The hex key at `fraction` of the key space (keys are sha256 hex digests, so uniform in it)."""
    return f"{min(int(fraction * 16 ** 8), 16 ** 8 - 1):08x}"


def _owned(parsed: ParsedText, owner: str) -> ParsedText:
    return ParsedText(parsed.sentences, tuple(replace(f, id=f"{owner}#{n}", article_id=owner)
                                              for n, f in enumerate(parsed.facts)))


def cluster_inputs(cluster_id: str, docs: Sequence[Document]) -> list[Any]:
    """What a cluster's consensus is built from, given the config: its articles' ids, outlets and texts."""
    return [cluster_id, [(d.id, d.article.source, text_hash(d.text)) for d in docs]]


class CachedConsensus:
    """The consensus builder, per cluster. `node`: the facts, matcher and consensus config."""

    def __init__(self, builder: ConsensusBuilder, node: dict[str, Any], cache: Cache):
        self.builder, self.node, self.cache = builder, node, cache

    def build_many(self, docs_by_cluster: dict[str, list[Document]]) -> dict[str, ClusterConsensus]:
        keys = {cid: part_key("consensus", self.node, cluster_inputs(cid, docs)) for cid, docs in docs_by_cluster.items()}
        hits = self.cache.get_many("consensus", list(keys.values()))
        out = {cid: hits[k] for cid, k in keys.items() if k in hits}
        missing = [cid for cid in docs_by_cluster if cid not in out]
        for cid in missing:
            out[cid] = self.builder.build(cid, docs_by_cluster[cid])
        self.cache.put_many("consensus", [(keys[cid], out[cid]) for cid in missing], fmt="pickle")
        return {cid: out[cid] for cid in docs_by_cluster}


class CachedScorer:
    """The scorer. `node`: the facts, matcher, consensus and score config. A score's key holds what its
    consensus is built from, the summary's sentences and the cluster's human summary."""

    def __init__(self, scorer: Scorer, node: dict[str, Any], cache: Cache):
        self.scorer, self.node, self.cache = scorer, node, cache

    def score_many(self, items: Sequence[ScoredInput], consensus: dict[str, ClusterConsensus],
                   docs_by_cluster: dict[str, list[Document]],
                   human_sentences: dict[str, list[str]]) -> list[dict[str, Any]]:
        clusters = {cid: key(cluster_inputs(cid, docs_by_cluster[cid])) for cid in {it.doc.cluster_id for it in items}}
        keys = [part_key("score", self.node, clusters[it.doc.cluster_id], it.doc.id, it.summary_sentences,
                         human_sentences.get(it.doc.cluster_id)) for it in items]
        hits = self.cache.get_many("score", keys)
        out, fresh = [], []
        for k, it in zip(keys, items):
            result = hits.get(k)
            if result is None:
                cid = it.doc.cluster_id
                result = self.scorer.score(it, consensus[cid], docs_by_cluster[cid], human_sentences.get(cid))
                fresh.append((k, result))
            out.append(result)
        self.cache.put_many("score", fresh)
        return out


class Throughput:
    """One summarizer's counts and compute time, summed over the run's chunks."""

    def __init__(self, cacheable: bool):
        self.articles = self.computed = self.cached = self.failed = 0
        self.compute_seconds = 0.0
        self.tokens = 0
        self.token_counts_seen = False
        self.cacheable = cacheable

    def count_replayed(self, n_articles: int) -> None:
        """Articles of a replayed chunk: read from the cache."""
        self.articles += n_articles
        self.cached += n_articles

    def report(self) -> dict[str, Any]:
        n_tokens, seconds = self.tokens, self.compute_seconds
        return {"articles": self.articles, "computed": self.computed, "cached": self.cached, "failed": self.failed,
                "compute_seconds": round(seconds, 4),
                "articles_per_second": round(self.computed / seconds, 3) if seconds > 0 else None,
                "generated_tokens": n_tokens if self.token_counts_seen else None,
                "generated_tokens_per_second": (round(n_tokens / seconds, 3)
                                                if self.token_counts_seen and seconds > 0 else None),
                "cacheable": self.cacheable}


class CachedSummarizer:
    """One summarizer. Cached summaries are read first; the rest are made in batches of `batch_size`, each
    batch written to the cache as soon as it is done (a killed run loses at most one batch). A failed batch
    is retried one article at a time, so that one bad article fails alone. Failures are recorded, never
    cached, never scored. A summarizer that cannot run (its input files cannot be read, or it raises a
    BenchError such as a missing model) fails every article, in this chunk and the later ones, with the
    reason. `node`: its config node, with the run's matcher in place of `matcher: null`."""

    def __init__(self, summarizer: Summarizer, node: dict[str, Any], cache: Cache):
        self.summarizer, self.node, self.cache = summarizer, node, cache
        self.name = summarizer.name
        self.throughput = Throughput(summarizer.cacheable)
        self.cannot_run: str | None = None
        self._identity: dict[str, Any] | None = None
        self._code: str | None = None

    @property
    def identity(self) -> dict[str, Any]:
        """What its summaries' cache keys and its leaderboard row hold of it: its config node (`_target_` as
        `class`, its `run_settings` left out) and the sha256 of its input files (memoised in the cache),
        computed once. The name is not in it, so renaming a summarizer reuses its work."""
        if self._identity is None:
            self._identify()
        return self._identity

    def _identify(self) -> None:
        """Sets the identity; a summarizer whose input files cannot be read cannot run."""
        settings = {k: v for k, v in self.node.items() if k not in ("_target_", *self.summarizer.run_settings)}
        self._identity = {"class": self.node["_target_"], **settings}
        try:
            files = self.summarizer.input_files()
            if files:
                self._identity["files"] = {p.name: file_digest(p, self.cache) for p in files}
        except (BenchError, OSError) as e:
            self._cannot_run(f"{type(e).__name__}: {e}")

    def _cannot_run(self, reason: str) -> None:
        log.error("summarizer %s cannot run: %s", self.name, reason)
        self.cannot_run = reason

    def summary_key(self, doc: Document, reference: list[ReferenceUnit] | None) -> str:
        """Content address of one summary: the summarizer's own code (`source_hash`, not all of bench's: a
        model's summaries outlive edits elsewhere), its identity, the cluster and article ids (a seeded
        summarizer such as random3 draws from them), the article's text and sentences, and for a summarizer
        that reads it the reference."""
        ref = None if not self.summarizer.needs_references else [
            (r.unit.text, r.weight, r.attainable, [f.text for f in r.unit.facts]) for r in reference]
        if self._code is None:
            self._code = source_hash(self.summarizer)
        return key("summary", self._code, self.identity, doc.cluster_id, doc.id, text_hash(doc.text),
                   key([s.text for s in doc.sentences]), ref)

    def summarize(self, docs: Sequence[Document], references: Sequence[list[ReferenceUnit]]) -> list[Summary]:
        if self._identity is None:
            self._identify()
        counts = self.throughput
        out: list[Summary | None] = [self._failed(d, self.cannot_run) if self.cannot_run else None for d in docs]
        keys = [self.summary_key(d, r) if self.summarizer.cacheable and not self.cannot_run else None
                for d, r in zip(docs, references)]
        hits = self.cache.get_many("summary", [k for k in keys if k])
        for i, (d, k) in enumerate(zip(docs, keys)):
            if k in hits:
                out[i] = Summary(d.cluster_id, d.id, self.name, hits[k]["text"], meta={**hits[k]["meta"], "cached": True})
        todo = [i for i, sm in enumerate(out) if sm is None]
        size = self.summarizer.batch_size or max(1, len(todo))
        batches = [todo[b:b + size] for b in range(0, len(todo), size)]
        for batch in tqdm(batches, desc=f"summarize {self.name}", unit="batch", disable=None if batches else True,
                          leave=False):
            t0 = time.perf_counter()
            try:
                results = self._call([docs[i] for i in batch], [references[i] for i in batch])
            except BenchError as e:  # it cannot run at all (e.g. its model is missing): record, go on
                self._cannot_run(f"BenchError: {e}")
                for i in todo:
                    if out[i] is None:
                        out[i] = self._failed(docs[i], self.cannot_run)
                break
            finally:
                counts.compute_seconds += time.perf_counter() - t0
            for i, sm in zip(batch, results):
                out[i] = sm
            self.cache.put_many("summary", [(keys[i], {"text": sm.text, "meta": sm.meta})
                                            for i, sm in zip(batch, results) if sm.ok and keys[i]])
        tokens = [out[i].meta.get("generated_tokens") for i in todo if out[i].ok]
        counts.tokens += sum(t for t in tokens if isinstance(t, int))
        counts.token_counts_seen |= bool(tokens)
        counts.articles += len(docs)
        counts.computed += len(todo)
        counts.cached += sum(1 for k in keys if k in hits)
        counts.failed += sum(1 for sm in out if not sm.ok)
        return out  # type: ignore[return-value]

    def _failed(self, doc: Document, error: str) -> Summary:
        return Summary(doc.cluster_id, doc.id, self.name, None, error=error)

    def _call(self, docs: list[Document], references: list[list[ReferenceUnit]]) -> list[Summary]:
        """One batch; a batch that raises (anything but a BenchError) is retried article by article. An empty
        summary is a failure."""
        def call(batch_docs, batch_refs):
            return self.summarizer.summarize(batch_docs, batch_refs if self.summarizer.needs_references else None)

        try:
            out = call(docs, references)
            if len(out) != len(docs):
                raise RuntimeError(f"returned {len(out)} summaries for {len(docs)} articles")
        except BenchError:
            raise
        except Exception as batch_error:  # noqa: BLE001 - a model may raise anything; we record it per article
            log.warning("summarizer %s failed on a batch (%s: %s); retrying article by article", self.name,
                        type(batch_error).__name__, batch_error)
            out = []
            for d, r in zip(docs, references):
                try:
                    out.extend(call([d], [r]))
                except BenchError:
                    raise
                except Exception as e:  # noqa: BLE001
                    out.append(self._failed(d, f"{type(e).__name__}: {e}"))
        for sm in out:
            if sm.ok and not sm.text.strip():
                sm.error, sm.text = "empty summary", None
        return out


class CachedStatistics:
    """The leaderboard's seeded statistics (`bench.reporting.leaderboard.statistics`): bootstrap CIs and paired
    tests are a function of the score rows and the settings, so a warm run reads them."""

    def __init__(self, cache: Cache):
        self.cache = cache

    def compute(self, summarizers: Sequence[str], metrics: Sequence[str], main: str,
                score_rows: Sequence[dict[str, Any]], stats: dict[str, Any],
                scores_digest: str | None = None) -> dict[str, Any]:
        """`scores_digest`: the sha256 of the run's scores.jsonl, whose lines hold `score_rows` (each row is a
        projection of its line), keys them without encoding every row again."""
        rows = {"scores.jsonl sha256": scores_digest} if scores_digest is not None else score_rows
        k = streamed_key("statistics", code_hash(), list(summarizers), list(metrics), main, stats, rows)
        hit = self.cache.get_many("statistics", [k], count=False).get(k)
        if hit is None:
            hit = statistics(summarizers, metrics, main, score_rows, stats)
            self.cache.put_many("statistics", [(k, hit)], fmt="pickle")
        return hit


class ChunkReplay:
    """Whole chunks of clusters: a chunk whose every output was cached is written again from its record (a
    warm re-run reads, writes and does the statistics, nothing else). Its key holds every setting that
    changes a result (`settings`) and the summarizers' identities (model file hashes included)."""

    def __init__(self, cache: Cache, settings: dict[str, Any], summarizers: Sequence[CachedSummarizer]):
        self.cache, self.settings, self.summarizers = cache, settings, summarizers

    def key(self, chunk: Sequence[Cluster]) -> str:
        node = [self.settings, {s.name: s.identity for s in self.summarizers}]
        return part_key("chunk", node, [[c.id, c.summary and text_hash(c.summary),
                                         [[a.id, a.source, a.title, text_hash(a.text), a.date, a.url]
                                          for a in c.articles]] for c in chunk])

    def get(self, chunk_key: str) -> dict[str, Any] | None:
        return self.cache.get_many("chunk", [chunk_key], count=False).get(chunk_key)

    def put(self, chunk_key: str, record: dict[str, Any]) -> None:
        """Stores a chunk's record, unless a summary in it failed (a re-run retries it) or a summarizer's
        outputs are not reproducible."""
        if all(r["status"] == "ok" for r in record["score_rows"]) and all(
                s.summarizer.cacheable for s in self.summarizers):
            self.cache.put_many("chunk", [(chunk_key, record)], fmt="pickle")
