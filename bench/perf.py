"""Speed benchmarks (a script, not timed tests). Writes JSON under results/perf/ and prints it.

  python -m bench.perf summarize   cold vs cached default run, batched vs one-at-a-time SmolLM2,
                                   and the harness's overhead beyond model calls
"""
from __future__ import annotations

import argparse
import json
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
    }
    return out


def batching_benchmark(batch_sizes: tuple[int, ...] = (16, 1)) -> dict[str, Any]:
    """SmolLM2 (the default config) on every demo article: batched vs one article at a time, model loaded
    once beforehand so only generation is timed."""
    from hydra.utils import instantiate

    from bench.clean import Cleaner
    from bench.cli import compose
    from bench.data import FolderDataset
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["summarize"])
    ap.add_argument("--out", default="results/perf")
    args = ap.parse_args(argv)
    result = {"benchmark": args.which, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **summarize_benchmark()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.which}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
