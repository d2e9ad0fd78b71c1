"""How dense is a run's consensus? Coverage and density of the leave-one-out references, from a finished
run directory (scores.jsonl, sources.jsonl, consensus.jsonl):

    python scripts/consensus_density.py results/RUN [--summarizer lead3]

- articles with defined consensus recall, overall and in clusters whose scored articles form >= 3
  independent witnesses (groups of `sources.jsonl`);
- median attainable units per article in those clusters;
- units per cluster and units per support level.
Each article is counted once, through one summarizer's score rows (the attainable units do not depend on
the summarizer)."""
from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path

from bench.reporting.records import read_records


def density(run: Path, summarizer: str | None = None) -> dict:
    scores = read_records(run, "scores")
    summarizer = summarizer or next(r["summarizer"] for r in scores if r["status"] == "ok")
    rows = [r for r in scores if r["summarizer"] == summarizer and r["status"] == "ok"]
    group_of = {s["cluster_id"]: s["source_of"] for s in read_records(run, "sources")}
    scored = Counter()
    witnesses: dict[str, set[str]] = {}
    for r in rows:
        witnesses.setdefault(r["cluster_id"], set()).add(group_of[r["cluster_id"]][r["article_id"]])
    wide = [r for r in rows if len(witnesses[r["cluster_id"]]) >= 3]
    units = read_records(run, "consensus")
    support = Counter(u["support"] for u in units)
    defined = lambda rs: sum(1 for r in rs if r["metrics"]["consensus_recall"] is not None)  # noqa: E731
    scored.update(r["cluster_id"] for r in rows)
    return {
        "summarizer": summarizer,
        "articles": len(rows), "defined": defined(rows),
        "articles_in_3plus_witness_clusters": len(wide), "defined_in_3plus": defined(wide),
        "defined_share_in_3plus": round(defined(wide) / len(wide), 4) if wide else None,
        "median_attainable_in_3plus": statistics.median(r["n_attainable_units"] for r in wide) if wide else None,
        "clusters": len(scored), "units_per_cluster": round(len(units) / len(scored), 3) if scored else None,
        "units_by_support": dict(sorted(support.items())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--summarizer", default=None)
    args = ap.parse_args()
    print(json.dumps(density(args.run, args.summarizer), indent=2))


if __name__ == "__main__":
    main()
