"""`bench compare BASE NEW`: per-metric paired deltas between two runs, what got worse, and a gate.

The gate fails (exit 1) when, for some summarizer, the chosen metric moves in the bad direction by
more than `tolerance` with p < alpha (paired cluster sign-flip test), or when its failed-article count
grows. Summarizers are paired by name; two single-summarizer runs are paired whatever their names."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.metrics import MAIN_METRIC, METRICS, format_interval, format_number, format_value, spec
from bench.reporting.leaderboard import DEFAULT_STATS, p_floor_note, smallest_p_value
from bench.reporting.records import Board, ScoreRow, has_records, load_run, read_records
from bench.reporting.stats import as_values, paired_test
from bench.types import BenchError


def compare(base_dir: Path, new_dir: Path, metric: str = MAIN_METRIC, tolerance: float = 0.01,
            alpha: float | None = None, max_listed: int = 20) -> dict[str, Any]:
    if metric not in METRICS:
        raise BenchError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if spec(metric).direction == 0:
        raise BenchError(f"{metric} has no better direction and cannot gate a build")
    base_board, base_scores = load_run(base_dir)
    new_board, new_scores = load_run(new_dir)
    for key in ("data_hash", "scorer_hash"):
        if base_board["signature"][key] != new_board["signature"][key]:
            raise BenchError(f"cannot compare: {key} differs ({base_board['signature'][key]} in {base_dir}, "
                             f"{new_board['signature'][key]} in {new_dir}); runs must share data and scorer settings")
    stats = {**DEFAULT_STATS, **new_board["signature"].get("bootstrap", {})}
    alpha = stats["alpha"] if alpha is None else alpha
    units = _units(new_dir) or _units(base_dir)
    pairs = _pairs(base_board, new_board)
    results = []
    for base_name, new_name in pairs:
        results.append(_compare_pair(base_name, new_name, base_board, new_board, base_scores, new_scores, units,
                                     metric, tolerance, alpha, stats, max_listed))
    only_base = sorted({r["summarizer"] for r in base_board["rows"]} - {b for b, _ in pairs})
    only_new = sorted({r["summarizer"] for r in new_board["rows"]} - {n for _, n in pairs})
    return {
        "base": str(base_dir), "new": str(new_dir), "metric": metric, "tolerance": tolerance, "alpha": alpha,
        "statistics": {k: stats[k] for k in ("seed", "resamples", "confidence")},
        "base_signature": base_board["signature"]["signature_string"],
        "new_signature": new_board["signature"]["signature_string"],
        "summarizers": results, "only_in_base": only_base, "only_in_new": only_new,
        "regressed": any(r["regressed"] for r in results),
    }


def _pairs(base: Board, new: Board) -> list[tuple[str, str]]:
    b = [r["summarizer"] for r in base["rows"]]
    n = [r["summarizer"] for r in new["rows"]]
    common = [x for x in b if x in n]
    if common:
        return [(x, x) for x in common]
    if len(b) == 1 and len(n) == 1:
        return [(b[0], n[0])]
    raise BenchError(f"the runs share no summarizer (base: {', '.join(b)}; new: {', '.join(n)})")


def _units(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {u["unit_id"]: u for u in read_records(run_dir, "consensus")} if has_records(run_dir, "consensus") else {}


def _compare_pair(base_name, new_name, base_board, new_board, base_scores, new_scores, units, metric, tolerance,
                  alpha, stats, max_listed) -> dict[str, Any]:
    row_b = next(r for r in base_board["rows"] if r["summarizer"] == base_name)
    row_n = next(r for r in new_board["rows"] if r["summarizer"] == new_name)
    deltas = {}
    for m in METRICS:
        a, b = as_values(base_scores, base_name, m), as_values(new_scores, new_name, m)
        if not set(a) & set(b):
            deltas[m] = None
            continue
        t = paired_test(a, b, stats["resamples"], stats["seed"], stats["confidence"])
        direction = spec(m).direction
        worse = direction != 0 and t.difference * direction < 0
        deltas[m] = {"base": row_b["means"][m], "new": row_n["means"][m], "difference": t.difference,
                     "low": t.low, "high": t.high, "p_value": t.p_value, "significant": t.p_value < alpha,
                     "direction": direction, "worse": worse, "n": t.n, "n_clusters": t.n_clusters,
                     "regressed": bool(worse and t.p_value < alpha and abs(t.difference) > tolerance)}
    gate = deltas[metric]
    new_failures = row_n["n_failed"] - row_b["n_failed"]
    reasons = []
    if gate and gate["regressed"]:
        reasons.append(f"{metric} fell by {format_number(abs(gate['difference']), 4)} (> tolerance {tolerance}), "
                       f"p={format_number(gate['p_value'], 4)}")
    if new_failures > 0:
        reasons.append(f"{new_failures} more failed article(s)")
    articles, clusters = _worse_articles(base_name, new_name, base_scores, new_scores, units, metric)
    return {"base_summarizer": base_name, "new_summarizer": new_name, "deltas": deltas,
            "failed": {"base": row_b["n_failed"], "new": row_n["n_failed"]},
            "regressed": bool(reasons), "reasons": reasons,
            "worse_articles": articles[:max_listed], "n_worse_articles": len(articles), "worse_clusters": clusters}


def _worse_articles(base_name, new_name, base_scores: list[ScoreRow], new_scores: list[ScoreRow], units, metric):
    direction = spec(metric).direction
    key = lambda r: (r["cluster_id"], r["article_id"])  # noqa: E731
    base = {key(r): r for r in base_scores if r["summarizer"] == base_name}
    new = {key(r): r for r in new_scores if r["summarizer"] == new_name}
    worse, by_cluster = [], defaultdict(list)
    for k in sorted(set(base) & set(new)):
        rb, rn = base[k], new[k]
        vb = rb["metrics"][metric] if rb["status"] == "ok" else None
        vn = rn["metrics"][metric] if rn["status"] == "ok" else None
        if vb is not None and vn is not None:
            by_cluster[k[0]].append(vn - vb)
        got_worse = (vb is not None and vn is None and rn["status"] == "failed") or (
            vb is not None and vn is not None and (vn - vb) * direction < 0)
        if not got_worse:
            continue
        lost = sorted(set(rb.get("covered_units") or []) - set(rn.get("covered_units") or []))
        worse.append({"cluster_id": k[0], "article_id": k[1], "base": vb, "new": vn,
                      "status": rn["status"], "error": rn.get("error"),
                      "lost_facts": [{"unit_id": u, "text": units.get(u, {}).get("text"),
                                      "support": units.get(u, {}).get("support")} for u in lost]})
    worse.sort(key=lambda w: (w["new"] is not None, (w["new"] or 0) - (w["base"] or 0)) if direction > 0
               else (w["new"] is not None, (w["base"] or 0) - (w["new"] or 0)))
    clusters = [{"cluster_id": c, "mean_difference": math.fsum(d) / len(d), "n": len(d)}
                for c, d in sorted(by_cluster.items()) if math.fsum(d) * direction < 0]
    return worse, clusters


def to_markdown(result: dict[str, Any]) -> str:
    verdict = "❌ regression" if result["regressed"] else "✅ no significant regression"
    out = [f"## bench compare: {verdict}", "",
           f"Base `{result['base_signature']}` vs new `{result['new_signature']}`. Gate: `{result['metric']}` "
           f"falling by more than {result['tolerance']} with p < {result['alpha']} (paired cluster sign-flip test; "
           f"CIs: {result['statistics']['confidence']:.0%} paired cluster bootstrap), or more failed articles.", ""]
    for s in result["summarizers"]:
        name = s["base_summarizer"] if s["base_summarizer"] == s["new_summarizer"] else \
            f"{s['base_summarizer']} → {s['new_summarizer']}"
        out += [f"### {name}: {'❌ ' + '; '.join(s['reasons']) if s['regressed'] else '✅ ok'}", "",
                "| metric | base | new | Δ [CI] | p | |", "|:---|---:|---:|---:|---:|:---|"]
        for m, d in s["deltas"].items():
            if d is None:
                out.append(f"| {m} | n/a | n/a | n/a | | |")
                continue
            mark = "❌" if d["regressed"] else ("▼" if d["worse"] and d["significant"] else
                                               "▲" if d["significant"] and d["direction"] else "")
            delta = (f"{format_number(d['difference'], 4, signed=True)} "
                     f"{format_interval(d['low'], d['high'], signed=True)}")
            out.append(f"| {m} | {format_value(m, d['base'])} | {format_value(m, d['new'])} | {delta} | "
                       f"{format_number(d['p_value'], 4)} | {mark} |")
        gate = s["deltas"].get(result["metric"])
        if gate and not gate["significant"] and (smallest_p_value(gate["n_clusters"]) or 0) >= result["alpha"]:
            out.append(f"\nWhy not significant: {p_floor_note(gate['n_clusters'], result['alpha'])}.")
        out.append(f"\nFailed articles: {s['failed']['base']} → {s['failed']['new']}.")
        if s["worse_clusters"]:
            out.append("Clusters that got worse: " + ", ".join(
                f"{c['cluster_id']} ({format_number(c['mean_difference'], 4, signed=True)} over {c['n']})"
                for c in s["worse_clusters"]) + ".")
        if s["worse_articles"]:
            out += ["", f"Articles that got worse on {result['metric']} ({s['n_worse_articles']}; "
                        f"{len(s['worse_articles'])} listed):", ""]
            for w in s["worse_articles"]:
                head = (f"- `{w['cluster_id']}/{w['article_id']}`: {format_value(result['metric'], w['base'])} → "
                        f"{format_value(result['metric'], w['new'])}")
                if w["status"] == "failed":
                    head += f" (failed: {w['error']})"
                out.append(head)
                for f in w["lost_facts"]:
                    out.append(f"  - lost: {f['text']} (support {f['support']})")
        out.append("")
    if result["only_in_base"] or result["only_in_new"]:
        out.append(f"Only in base: {', '.join(result['only_in_base']) or '-'}; only in new: "
                   f"{', '.join(result['only_in_new']) or '-'}.")
    return "\n".join(out).rstrip() + "\n"


def write(result: dict[str, Any], md_path: Path | None, json_path: Path | None) -> str:
    md = to_markdown(result)
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(md)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return md
