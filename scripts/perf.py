"""Speed benchmarks (a script, not timed tests). Writes JSON under results/perf/ and prints it.

  python scripts/perf.py summarize   cold vs cached default run, batched vs one-at-a-time SmolLM2,
                                   and the harness's overhead beyond model calls
  python scripts/perf.py align       cross-article alignment time for clusters of 5, 20 and 80 articles
  python scripts/perf.py scale       the 1,000-cluster benchmark: one process vs a joblib sweep, cold and warm,
                                   peak RSS at 5,000 clusters, Hydra's launch floor (scripts/perf_scale.py)
  python scripts/perf.py repeat SRC N OUT
                                   a JSONL input of N clusters: SRC's clusters (a bench JSONL file) repeated
                                   in order, copy k's cluster and article ids suffixed with -r{k}
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _bench_run(results: Path, cache: Path, *overrides: str) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench", f"results_dir={results}", f"cache.path={cache}",
                           *overrides], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"bench run failed:\n{proc.stderr[-3000:]}")
    board = json.loads(next(results.rglob("leaderboard.json")).read_text())
    return wall, board


def summarize_benchmark(model_summarizers: tuple[str, ...] = ("smollm2",)) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-perf-"))
    cold_wall, cold = _bench_run(tmp / "cold", tmp / "cache.sqlite")
    cached_wall, cached = _bench_run(tmp / "cached", tmp / "cache.sqlite")
    model_s = sum(cold["timings"]["summarize_s"][m] for m in model_summarizers)
    out = {
        "cold_seconds": round(cold_wall, 3), "cached_seconds": round(cached_wall, 3),
        "cached_speedup": round(cold_wall / cached_wall, 1),
        "cached_recomputed": {k: v["computed"] for k, v in cached["throughput"].items()},
        "same_leaderboard": [r["means"] for r in cold["rows"]] == [r["means"] for r in cached["rows"]],
        "overhead": {
            "model_seconds": round(model_s, 3),
            "harness_seconds": round(cold_wall - model_s, 3),
            "harness_fraction": round((cold_wall - model_s) / cold_wall, 4),
            "process_start_and_imports_seconds": round(cold_wall - cold["runtime_seconds"], 3),
            "stage_seconds": cold["timings"],
        },
        "cold_throughput": {m: cold["throughput"][m] for m in model_summarizers},
        "batching": batching_benchmark(),
        "overhead_at_scale": overhead_at_scale(),
    }
    return out


def batching_benchmark(batch_sizes: tuple[int, ...] = (16, 1)) -> dict[str, Any]:
    """SmolLM2 (the default config) on every demo article: batched vs one article at a time, model loaded
    once beforehand so only generation is timed."""
    from hydra.utils import instantiate

    from bench.stages.clean import Cleaner
    from bench.cli import compose
    from bench.stages.data import FolderDataset
    from bench.types import Document

    cfg = compose(["summarizer=smollm2"])
    cleaner = instantiate(cfg.clean)
    assert isinstance(cleaner, Cleaner)
    docs = []
    for c in FolderDataset().load():
        for a in c.articles:
            ca, reason = cleaner.clean(a)
            if not reason:
                docs.append(Document(c.id, a, ca.text, (), ()))
    results: dict[str, Any] = {"articles": len(docs)}
    for bs in batch_sizes:
        s = instantiate(cfg.summarizer.smollm2, name="smollm2", batch_size=bs)
        s.load()
        t0 = time.perf_counter()
        out = s.summarize(docs)
        wall = time.perf_counter() - t0
        tokens = sum(o.meta["generated_tokens"] for o in out)
        results[f"batch_size_{bs}"] = {"seconds": round(wall, 3), "generated_tokens": tokens,
                                       "tokens_per_second": round(tokens / wall, 2),
                                       "articles_per_second": round(len(docs) / wall, 3)}
    a, b = (results[f"batch_size_{bs}"] for bs in batch_sizes)
    results["speedup_seconds"] = round(b["seconds"] / a["seconds"], 2)
    results["speedup_tokens_per_second"] = round(a["tokens_per_second"] / b["tokens_per_second"], 2)
    return results


def demo_subset_clusters(path: Path, extra_text: str = "") -> Path:
    """A JSONL dataset of overlapping clusters from the demo's two events (every 3 or more of each event's
    usable articles: 21 clusters, 71 articles), for measurements and tests that need many clusters."""
    import itertools

    from bench.stages.data import FolderDataset

    rows = []
    for cluster in FolderDataset().load():
        arts = [a for a in cluster.articles if a.id != "social-embed"]
        subsets = [s for size in range(3, len(arts) + 1) for s in itertools.combinations(arts, size)]
        for n, subset in enumerate(subsets):
            for a in subset:
                rows.append({"cluster_id": f"{cluster.id}-{n}", "article_id": a.id, "source": a.source,
                             "title": a.title + extra_text, "text": a.text + extra_text})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def overhead_at_scale() -> dict[str, Any]:
    """The default summarizers, cold, on the 71-article demo-subsets dataset: the harness's fixed costs
    (imports, model-independent stages) spread over more articles."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-perf-scale-"))
    data = demo_subset_clusters(tmp / "clusters.jsonl")
    wall, board = _bench_run(tmp / "run", tmp / "cache.sqlite", "dataset=jsonl", f"dataset.path={data}")
    model_s = board["timings"]["summarize_s"]["smollm2"]
    return {"articles": board["dataset"]["n_scored_articles"], "clusters": board["dataset"]["n_scored_clusters"],
            "cold_seconds": round(wall, 3), "model_seconds": round(model_s, 3),
            "harness_fraction": round((wall - model_s) / wall, 4), "stage_seconds": board["timings"],
            "smollm2_throughput": board["throughput"]["smollm2"]}


def demo_like_cluster(n: int, seed: int = 0):
    """n articles about the demo's bridge collapse: the demo's articles, cycled, each variant with its
    sentences partly dropped and reordered (seeded), so that articles overlap without being copies."""
    import random

    from bench.stages.clean import Cleaner
    from bench.stages.data import FolderDataset
    from bench.types import Article

    bridge = next(c for c in FolderDataset().load() if c.id == "port-alder-bridge")
    cleaner = Cleaner()
    texts = [cleaner.clean(a)[0].text for a in bridge.articles]
    rng = random.Random(seed)
    out = []
    for k in range(n):
        sents = [s for s in texts[k % len(texts)].replace("\n", " ").split(". ") if s.strip()]
        if k >= len(texts):
            sents = [s for s in sents if rng.random() > 0.25] or sents
            rng.shuffle(sents)
        out.append(Article(id=f"a{k:03d}", source=f"outlet{k:03d}", title="", text=". ".join(sents).rstrip(".") + "."))
    return out


def align_benchmark(sizes: tuple[int, ...] = (5, 20, 80), matchers: tuple[str, ...] = ("lexical", "embedding")):
    """Time ConsensusBuilder.build (blocking, matcher calls, clustering, independence) per cluster size,
    best of 3 after a warm-up build (so embeddings are cached: this times alignment, not encoding);
    facts are extracted beforehand and not timed."""
    from hydra.utils import instantiate

    from bench.cli import compose
    from bench.types import Document

    results: dict[str, Any] = {}
    for name in matchers:
        cfg = compose([f"matcher={name}"])
        extractor, matcher = instantiate(cfg.facts), instantiate(cfg.matcher)
        builder = instantiate(cfg.consensus, matcher=matcher)
        rows = []
        for n in sizes:
            arts = demo_like_cluster(n)
            parsed = extractor.extract([(a.id, a.text) for a in arts])
            docs = [Document("bench", a, a.text, p.sentences, p.facts) for a, p in zip(arts, parsed)]
            builder.build("bench", docs)  # warm-up: model loading and embeddings are not alignment cost
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                cc = builder.build("bench", docs)
                times.append(time.perf_counter() - t0)
            seconds = min(times)
            rows.append({"articles": n, "facts": builder.last_blocking["facts"], "seconds": round(seconds, 3),
                         "compared_pairs": builder.last_blocking["compared_pairs"],
                         "all_pairs": builder.last_blocking["all_pairs"], "units": len(cc.units)})
        for a, b in zip(rows, rows[1:]):
            b["growth_exponent_vs_previous"] = round(math.log(b["seconds"] / a["seconds"]) / math.log(b["facts"] / a["facts"]), 2)
        results[name] = rows
    return results


def repeated_clusters(source: Path, n_clusters: int, out: Path) -> dict[str, int]:
    """N clusters from a bench JSONL file, its clusters repeated in file order with new ids (copy k gets
    "-r{k}" on every cluster and article id), so that runs of any size use real articles."""
    from bench.stages.data import read_jsonl

    by_cluster: dict[str, list[dict[str, Any]]] = {}
    for row in read_jsonl(Path(source)):
        by_cluster.setdefault(row["cluster_id"], []).append(row)
    ids = list(by_cluster)
    n_rows = 0
    with open(out, "w") as fh:
        for i in range(n_clusters):
            copy = i // len(ids)
            for row in by_cluster[ids[i % len(ids)]]:
                fh.write(json.dumps({**row, "cluster_id": f"{row['cluster_id']}-r{copy}",
                                     "article_id": f"{row['article_id']}-r{copy}"}, ensure_ascii=False) + "\n")
                n_rows += 1
    return {"clusters": n_clusters, "articles": n_rows, "distinct_clusters": min(n_clusters, len(ids))}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "repeat":
        ap = argparse.ArgumentParser(prog="python scripts/perf.py repeat")
        ap.add_argument("source", type=Path)
        ap.add_argument("n_clusters", type=int)
        ap.add_argument("out", type=Path)
        args = ap.parse_args(argv[1:])
        print(json.dumps(repeated_clusters(args.source, args.n_clusters, args.out)))
        return
    if argv and argv[0] == "scale":
        return scale_main(argv[1:])
    ap = argparse.ArgumentParser(prog="python scripts/perf.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["summarize", "align"])
    ap.add_argument("--out", default="results/perf")
    args = ap.parse_args(argv)
    run = {"summarize": summarize_benchmark, "align": lambda: {"clusters": align_benchmark()}}[args.which]
    result = {"benchmark": args.which, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **run()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.which}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def scale_main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scripts import perf_scale

    ap = argparse.ArgumentParser(prog="python scripts/perf.py scale", description=perf_scale.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=perf_scale.REPO.parent / "shared/data/multinews-dev/clusters.jsonl",
                    help="a bench JSONL file whose clusters are repeated (default: ../shared's multinews-dev)")
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--big", type=int, default=5000, help="clusters of the peak-RSS run (0: skip it)")
    ap.add_argument("--pairs", type=int, default=3, help="one-process / joblib pairs, taken in turn")
    ap.add_argument("--warm", type=int, default=3, help="warm re-runs after each cold run")
    ap.add_argument("--baseline-ref", default=None, help="a git ref whose code is timed too (e.g. 0137a63)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    ap.add_argument("--out", type=Path, default=Path("results/perf"))
    args = ap.parse_args(argv)
    if not args.source.is_file():
        raise SystemExit(f"perf scale: no input at {args.source} (give --source)")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    result = {"benchmark": "scale", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **perf_scale.scale_benchmark(args.source, args.clusters, args.big, args.pairs, args.warm,
                                           args.baseline_ref, work)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(perf_scale.markdown(result))


if __name__ == "__main__":
    main()
