"""Validity on cluster data: does consensus recall rank summarizers the way agreement with a human
multi-document summary does?

Input: a run (or merge) directory whose clusters carry human summaries, so that its scores hold the
human_rouge* metrics beside consensus recall. Output, across the run's summarizers ("systems"):

- system level: Kendall tau-b and Pearson r between each system's mean `metric` and mean `against`;
- per cluster: within each cluster, each system's mean over that cluster's articles, correlated across
  systems, then averaged over the clusters where the correlation is defined.

Only articles where both values are defined for every system are used, so every mean is over the same
article set (n is reported). A correlation is undefined when either vector is constant (all values exactly
equal): such clusters are left out of the per-cluster average and counted as `n_undefined`, never scored 0.
This is separate from `bench meta-eval` (bench/reporting/metaeval.py), which judges matchers on REALSumm.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.metrics import MAIN_METRIC, METRICS, format_number
from bench.reporting.leaderboard import merge
from bench.reporting.records import ScoreRow, load_run
from bench.reporting.stats import as_values
from bench.types import BenchError

DEFAULT_AGAINST = "human_rouge2"


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties corrected, as scipy.stats.kendalltau's default); None when x or y is constant."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if _constant(x) or _constant(y):
        return None
    concordant = discordant = ties_x = ties_y = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = _sign(x[i] - x[j]), _sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue  # tied in both: in neither factor of the denominator
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    # tau-b = (C - D) / sqrt((C + D + T_x)(C + D + T_y)), T_x: pairs tied only in x, T_y: only in y
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r with correctly rounded sums; None when x or y is constant."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if _constant(x) or _constant(y):
        return None
    mx, my = math.fsum(x) / len(x), math.fsum(y) / len(y)
    dx, dy = [a - mx for a in x], [b - my for b in y]
    sxy = math.fsum(a * b for a, b in zip(dx, dy))
    sxx, syy = math.fsum(a * a for a in dx), math.fsum(b * b for b in dy)
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def _constant(v: Sequence[float]) -> bool:
    return len(v) < 2 or all(a == v[0] for a in v)


def _sign(d: float) -> int:
    return (d > 0) - (d < 0)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def validity(score_rows: Sequence[Mapping[str, Any]], systems: Sequence[str], metric: str = MAIN_METRIC,
             against: str = DEFAULT_AGAINST) -> dict[str, Any]:
    """System-level and per-cluster correlations between `metric` and `against` across `systems`."""
    for m in (metric, against):
        if m not in METRICS:
            raise BenchError(f"unknown metric {m!r}; choose from {', '.join(METRICS)}")
    if metric == against:
        raise BenchError("--metric and --against are the same metric")
    systems = list(dict.fromkeys(systems))
    if len(systems) < 2:
        raise BenchError(f"validity needs at least 2 summarizers, got {len(systems)}")
    values = {s: (as_values(score_rows, s, metric), as_values(score_rows, s, against)) for s in systems}
    common: set[tuple[str, str]] | None = None
    for s in systems:
        a, b = values[s]
        mine = set(a) & set(b)
        common = mine if common is None else common & mine
    keys = sorted(common or set())
    if not keys:
        raise BenchError(f"no article has both {metric} and {against} defined for every summarizer "
                         f"({', '.join(systems)}); {against} needs clusters with human summaries")
    per_system = []
    for s in systems:
        a, b = values[s]
        per_system.append({"summarizer": s, metric: _mean([a[k] for k in keys]),
                           against: _mean([b[k] for k in keys])})
    xs, ys = [r[metric] for r in per_system], [r[against] for r in per_system]

    clusters: dict[str, list[tuple[str, str]]] = {}
    for k in keys:
        clusters.setdefault(k[0], []).append(k)
    per_cluster, undefined = [], []
    for cid, ks in clusters.items():
        cx = [_mean([values[s][0][k] for k in ks]) for s in systems]
        cy = [_mean([values[s][1][k] for k in ks]) for s in systems]
        tau, r = kendall_tau_b(cx, cy), pearson(cx, cy)
        if tau is None:  # tau and r are undefined together: exactly when a vector is constant
            undefined.append(cid)
        else:
            per_cluster.append({"cluster_id": cid, "n_articles": len(ks), "kendall": tau, "pearson": r})
    return {
        "metric": metric, "against": against, "systems": per_system, "n_systems": len(systems),
        "n_articles": len(keys), "n_clusters": len(clusters),
        "system": {"kendall": kendall_tau_b(xs, ys), "pearson": pearson(xs, ys)},
        "per_cluster": {
            "kendall": _mean([c["kendall"] for c in per_cluster]) if per_cluster else None,
            "pearson": _mean([c["pearson"] for c in per_cluster]) if per_cluster else None,
            "n_defined": len(per_cluster), "n_undefined": len(undefined), "undefined_clusters": undefined,
            "clusters": per_cluster,
        },
        "method": ("Kendall tau-b and Pearson r across summarizers. Articles: those where both metrics are defined "
                   "for every summarizer (the same set for all). System level: per-summarizer means over them. "
                   "Per cluster: per-summarizer means within the cluster, correlated across summarizers, averaged "
                   "over clusters where defined; a cluster where either vector is constant (exactly) is "
                   "undefined, left out of the average and counted in n_undefined."),
    }


def load(run_dirs: Sequence[Path]) -> tuple[list[str], list[ScoreRow]]:
    """Summarizers (leaderboard order) and score rows of one run, or of several merged as `bench leaderboard` does."""
    if len(run_dirs) == 1:
        board, scores = load_run(run_dirs[0])
    else:
        board, scores = merge([(str(r), *load_run(r)) for r in run_dirs])
    return [r["summarizer"] for r in board["rows"]], scores


def to_markdown(result: dict[str, Any]) -> str:
    def f(x: float | None) -> str:
        return format_number(x, 4)

    m, a = result["metric"], result["against"]
    pc = result["per_cluster"]
    lines = [f"## bench validity: {m} vs {a}", "",
             f"{result['n_systems']} summarizers, {result['n_articles']} articles in {result['n_clusters']} clusters "
             f"(articles where both metrics are defined for every summarizer).", "",
             "| level | Kendall tau-b | Pearson r | n |", "|:---|---:|---:|---:|",
             f"| system | {f(result['system']['kendall'])} | {f(result['system']['pearson'])} | "
             f"{result['n_systems']} summarizers |",
             f"| per cluster (mean) | {f(pc['kendall'])} | {f(pc['pearson'])} | {pc['n_defined']} clusters "
             f"({pc['n_undefined']} undefined: a constant vector) |", "",
             f"| summarizer | mean {m} | mean {a} |", "|:---|---:|---:|"]
    for r in sorted(result["systems"], key=lambda r: -r[m]):
        lines.append(f"| {r['summarizer']} | {f(r[m])} | {f(r[a])} |")
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], json_path: Path | None) -> str:
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return to_markdown(result)
