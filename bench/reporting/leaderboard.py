"""Stage 7, report: leaderboard rows from scores, their statistics, merging runs and shard sets, and the
Markdown (file and terminal) rendering. Run directories are read and written by bench.reporting.records."""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from bench.metrics import MAIN_METRIC, METRICS, format_interval, format_number, format_value, spec
from bench.reporting.records import SCHEMA_VERSION, Board, Comparison, Row, ScoreRow
from bench.reporting.stats import EXACT_PERMUTATION_MAX_CLUSTERS, as_values, cluster_bootstrap_ci, paired_test
from bench.types import BenchError

log = logging.getLogger("bench")
DEFAULT_STATS = {"seed": 0, "resamples": 1000, "confidence": 0.95, "alpha": 0.05}


def leaderboard_rows(score_rows: Sequence[ScoreRow], identities: dict[str, Any]) -> list[Row]:
    """One row per summarizer: exact means over articles where each metric is defined, with counts."""
    rows = []
    for name in identities:
        mine = [r for r in score_rows if r["summarizer"] == name]
        ok = [r for r in mine if r["status"] == "ok"]
        means, counts = {}, {}
        for m in METRICS:
            values = list(as_values(mine, name, m).values())
            counts[m] = len(values)
            means[m] = math.fsum(values) / len(values) if values else None  # correctly rounded: order-free
        rows.append({
            "summarizer": name, "identity": identities[name], "n_articles": len(mine), "n_scored": len(ok),
            "n_failed": sum(1 for r in mine if r["status"] == "failed"), "means": means, "n_defined": counts,
            "recall_by_support": pooled_recall_by_support(ok),
        })
    rows.sort(key=lambda r: (r["means"][MAIN_METRIC] is None, -(r["means"][MAIN_METRIC] or 0.0), r["summarizer"]))
    return rows


def pooled_recall_by_support(ok_rows: Sequence[ScoreRow]) -> dict[str, dict[str, float | int]]:
    """Per weight level k: attainable units with weight k covered / all such units, pooled over articles."""
    covered: dict[str, float] = {}
    units: dict[str, int] = {}
    for r in ok_rows:
        for k, n in (r.get("units_by_support") or {}).items():
            covered[k] = covered.get(k, 0.0) + r["recall_by_support"][k] * n
            units[k] = units.get(k, 0) + n
    return {k: {"recall": covered[k] / units[k], "units": units[k]} for k in sorted(units, key=int)}


def statistics(summarizers: Sequence[str], metrics: Sequence[str], main: str, score_rows: Sequence[ScoreRow],
               stats: dict[str, Any]) -> dict[str, Any]:
    """The seeded statistics of a board whose rows are `summarizers`, in order: a cluster-bootstrap CI of every
    metric per summarizer (`ci`), and paired tests on the main metric for every pair of rows (`comparisons`:
    bootstrap CI of the difference, cluster sign-flip p-value). A pure function of its arguments."""
    seed, n, conf, alpha = stats["seed"], stats["resamples"], stats["confidence"], stats["alpha"]
    by_summarizer: dict[str, list[ScoreRow]] = {}
    for row in score_rows:  # one pass over the rows, not one per (summarizer, metric)
        by_summarizer.setdefault(row["summarizer"], []).append(row)
    values = {name: {m: as_values(by_summarizer.get(name, []), name, m) for m in metrics} for name in summarizers}
    cis = {}
    for name in summarizers:
        cis[name] = {}
        for m in metrics:
            v = values[name][m]
            ci = cluster_bootstrap_ci(v, n, seed, conf) if v else None
            cis[name][m] = {"low": ci.low, "high": ci.high, "n_clusters": ci.n_clusters} if ci else None
    comparisons = []
    for i, better in enumerate(summarizers):
        for worse in summarizers[i + 1:]:
            a, b = values[worse][main], values[better][main]
            if not set(a) & set(b):
                comparisons.append({"better": better, "worse": worse, "difference": None,
                                    "low": None, "high": None, "p_value": None, "significant": None, "n": 0})
                continue
            t = paired_test(a, b, n, seed, conf)
            comparisons.append({"better": better, "worse": worse, "difference": t.difference,
                                "low": t.low, "high": t.high, "p_value": t.p_value,
                                "significant": t.p_value < alpha, "n": t.n, "n_clusters": t.n_clusters})
    return {"ci": cis, "comparisons": comparisons}


def add_statistics(board: Board, score_rows: Sequence[ScoreRow], stats: dict[str, Any],
                   computed: dict[str, Any] | None = None) -> None:
    """Puts `statistics(...)` (or `computed`, its cached result) on the board: each row's `ci`, the
    `comparisons`, each row's test against the next-ranked one (`vs_next`, which the Markdown and HTML mark),
    the ranks and warnings (`rank_and_warn`) and the settings."""
    rows, main = board["rows"], board["main_metric"]
    if computed is None:
        computed = statistics([r["summarizer"] for r in rows], board["metrics"], main, score_rows, stats)
    alpha = stats["alpha"]
    for r in rows:
        r["ci"] = computed["ci"][r["summarizer"]]
    comparisons = computed["comparisons"]
    by_pair = {(c["better"], c["worse"]): c for c in comparisons}
    for i, r in enumerate(rows):
        r["vs_next"] = (dict(by_pair[(r["summarizer"], rows[i + 1]["summarizer"])])
                        if i + 1 < len(rows) else None)
    board["comparisons"] = comparisons
    rank_and_warn(board)
    board["statistics"] = {"method": "percentile bootstrap resampling whole clusters", "metric_tested": main,
                           "paired_test": "difference: exact mean and paired cluster-bootstrap CI; p: two-sided "
                                          "sign-flip permutation test over clusters (exact up to 16 clusters)",
                           **{k: stats[k] for k in ("seed", "resamples", "confidence", "alpha")}}
    n_clusters = max((c.get("n_clusters") or 0 for c in comparisons), default=0)
    if (smallest_p_value(n_clusters) or 0) >= alpha:
        board["statistics"]["p_floor"] = p_floor_note(n_clusters, alpha)


def rank_and_warn(board: Board) -> None:
    """Ranks only what was measured: rows whose main metric is defined somewhere get 1, 2, ...; the rest get
    none. Warns (log and `warnings`) when fewer than half of the scored summaries have a defined main metric."""
    main, rows = board["main_metric"], board["rows"]
    warnings = []
    rank = 0
    for r in rows:
        measured = r["means"][main] is not None
        rank += measured
        r["rank"] = rank if measured else None
        if not measured and r["n_scored"]:
            warnings.append(f"{r['summarizer']}: {main} is undefined for all {r['n_scored']} scored articles; not ranked")
    scored = sum(r["n_scored"] for r in rows)
    defined = sum(r["n_defined"][main] for r in rows)
    if scored and 2 * defined < scored:
        warnings.insert(0, f"{main} is defined for only {defined} of {scored} scored summaries (fewer than half): an "
                        "article has no reference when no unit reaches consensus.min_support other sources, so the "
                        "ranking rests on few articles (lower consensus.min_support or matcher.support_threshold)")
    for w in warnings:
        log.warning("%s", w)
    board["warnings"] = warnings


def smallest_p_value(n_clusters: int) -> float | None:
    """The smallest p the exact cluster sign-flip test can give (only the observed signs and their mirror
    are as extreme): 2 / 2^C; None when the test is not exact (more clusters) or there is none."""
    if not 0 < n_clusters <= EXACT_PERMUTATION_MAX_CLUSTERS:
        return None
    return 2.0 / 2 ** n_clusters


def p_floor_note(n_clusters: int, alpha: float) -> str:
    return (f"with {n_clusters} cluster(s) the smallest possible p-value is 2/2^{n_clusters} = "
            f"{smallest_p_value(n_clusters):.3g}, not below alpha = {alpha}: no paired difference can be significant "
            "however large; add clusters")


def shard_layout_of(board: Board) -> dict[str, Any]:
    """A run's place in its shard layout; unsharded runs and combined shard sets cover the whole dataset."""
    layout = board["signature"].get("shards")
    return {"index": 0, "count": 1} if not layout or layout.get("combined") else layout


def combine_shards(boards: Sequence[tuple[str, Board, list[ScoreRow]]]):
    """Shard runs (shards=N) of one configuration become one run over the whole dataset; unsharded runs
    pass through. Refuses an incomplete set (naming the missing shards), a shard given twice, and a
    configuration run with different layouts. Returns (label, board, score rows, run dirs) per run."""
    groups: dict[str, list] = {}
    out = []
    for label, board, scores in boards:
        layout = shard_layout_of(board)
        if layout["count"] == 1:
            out.append((label, board, scores, [label]))
        groups.setdefault(",".join(_as_list(board["signature"]["config_hash"])), []).append(
            (layout, label, board, scores))
    for config, members in groups.items():
        counts = sorted({layout["count"] for layout, *_ in members})
        if len(counts) > 1:
            raise BenchError(f"cannot merge runs of config {config} with different shard layouts (shards="
                             + ", ".join(f"{layout['count']} in {label}" for layout, label, *_ in members) + ")")
        count = counts[0]
        if count == 1:
            continue
        by_index: dict[int, tuple] = {}
        for layout, label, board, scores in members:
            if layout["index"] in by_index:
                raise BenchError(f"shard {layout['index']} of {count} is given twice: {by_index[layout['index']][0]} "
                                 f"and {label}")
            by_index[layout["index"]] = (label, board, scores)
        missing = [i for i in range(count) if i not in by_index]
        if missing:
            raise BenchError(f"incomplete shard set for config {config}: shard(s) {', '.join(map(str, missing))} of "
                             f"{count} missing (have {', '.join(by_index[i][0] for i in sorted(by_index))})")
        shards = [by_index[i] for i in range(count)]
        out.append((" + ".join(label for label, _, _ in shards), _combined(shards, count),
                    [r for _, _, scores in shards for r in scores], [label for label, _, _ in shards]))
    return out


def _combined(shards: list[tuple[str, Board, list[ScoreRow]]], count: int) -> Board:
    """One board from a complete, ordered set of shard boards: rows recomputed from all score rows."""
    first = shards[0][1]
    scores = [r for _, _, rows in shards for r in rows]
    identities = {r["summarizer"]: r["identity"] for r in first["rows"]}
    sig = dict(first["signature"], shards={"count": count, "combined": True,
                                           "assignment": first["signature"]["shards"].get("assignment")})
    sig["signature_string"] = sig["signature_string"].replace(f"|shard:0/{count}", f"|shards:{count}")
    dataset = dict(first["dataset"])
    for k in ("n_clusters", "n_articles", "n_scored_clusters", "n_scored_articles"):
        dataset[k] = sum(b["dataset"][k] for _, b, _ in shards)
    for k in ("n_clusters_all_shards", "n_articles_all_shards"):
        dataset.pop(k, None)
    throughput = {}
    for name in identities:
        parts = [b["throughput"][name] for _, b, _ in shards]
        summed = {k: sum(p[k] for p in parts) for k in ("articles", "computed", "cached", "failed")}
        seconds = math.fsum(p["compute_seconds"] for p in parts)
        throughput[name] = {**parts[0], **summed, "compute_seconds": round(seconds, 4),
                            "articles_per_second": round(summed["computed"] / seconds, 3) if seconds > 0 else None}
    rows = leaderboard_rows(scores, identities)
    for r in rows:
        r["throughput"] = throughput[r["summarizer"]]
    return {**first, "created": max(b["created"] for _, b, _ in shards), "signature": sig, "rows": rows,
            "dataset": dataset, "throughput": throughput,
            "skipped": [s for _, b, _ in shards for s in b.get("skipped", [])]}


def merge(boards: Sequence[tuple[str, Board, list[ScoreRow]]],
          statistics_of: Callable[..., dict[str, Any]] = statistics) -> tuple[Board, list[ScoreRow]]:
    """Merge runs given as (label, board, score rows). Shards of one configuration are first combined
    into one run (`combine_shards`); then different summarizers over one dataset are merged. Refuses
    differing data, scorer or bootstrap settings; a summarizer in several runs is taken from the newest
    run (said under `notes`); CIs and tests are recomputed over the merged score rows (by `statistics_of`,
    `statistics` or its cached form), which are returned with the board."""
    if not boards:
        raise BenchError("no leaderboards to merge")
    combined = combine_shards(boards)
    dirs = {label: run_dirs for label, _, _, run_dirs in combined}
    boards = [(label, board, scores) for label, board, scores, _ in combined]
    first_label, first, _ = boards[0]
    for label, b, _ in boards[1:]:
        for key in ("data_hash", "scorer_hash", "bootstrap"):
            if b["signature"].get(key) != first["signature"].get(key):
                raise BenchError(f"cannot merge {label} with {first_label}: their {key} differ "
                                 f"({b['signature'].get(key)} vs {first['signature'].get(key)}); "
                                 "runs must use the same data, scorer and statistics settings")
    chosen: dict[str, tuple[str, dict[str, Any], dict[str, Any], list[dict]]] = {}
    notes = []
    for label, b, scores in sorted(boards, key=lambda lb: lb[1]["created"]):
        for row in b["rows"]:
            if row["summarizer"] in chosen:
                notes.append(f"{row['summarizer']}: in {chosen[row['summarizer']][0]} and {label}; kept the newer, {label}")
            chosen[row["summarizer"]] = (label, b, row, scores)
    rows = [dict(row, run=label, run_dirs=dirs[label]) for label, _, row, _ in chosen.values()]
    rows.sort(key=lambda r: (r["means"][MAIN_METRIC] is None, -(r["means"][MAIN_METRIC] or 0.0), r["summarizer"]))
    score_rows = [r for name, (_, _, _, scores) in chosen.items() for r in scores if r["summarizer"] == name]
    newest = max(b["created"] for _, b, _ in boards)
    sig = dict(first["signature"])
    sig["config_hash"] = sorted({h for _, b, _ in boards for h in _as_list(b["signature"]["config_hash"])})
    board = {
        "schema_version": SCHEMA_VERSION, "created": newest, "signature": sig, "main_metric": MAIN_METRIC,
        "metrics": list(METRICS), "rows": rows, "dataset": first.get("dataset"),
        "throughput": {r["summarizer"]: r.get("throughput") for r in rows},
        "runs": [label for label, _, _ in boards], "notes": notes,
        "skipped": list(first.get("skipped", [])),
    }
    stats = sig["bootstrap"]
    add_statistics(board, score_rows, stats, statistics_of([r["summarizer"] for r in rows], board["metrics"],
                                                           MAIN_METRIC, score_rows, stats))
    return board, score_rows


def _as_list(x: Any) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


def shown_metrics(board: Board) -> list[str]:
    """The metrics a table shows: the human_* validity columns only when some row has a value for them
    (they need human summaries, which most data lacks); every other metric always."""
    return [m for m in board["metrics"] if not spec(m).needs_human_summary
            or any(r["means"].get(m) is not None for r in board["rows"])]


def to_markdown(board: Board) -> str:
    metrics = shown_metrics(board)
    main = board["main_metric"]
    conf = int(round(100 * board.get("statistics", {}).get("confidence", 0.95)))
    head = ["#", "summarizer", f"{spec(main).display} [{conf}% CI]", "> next",
            *[spec(m).display for m in metrics if m != main], "scored", "failed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:"] + [":---"] + ["---:"] * (len(head) - 2)) + "|"]
    for r in board["rows"]:
        ci = (r.get("ci") or {}).get(main)
        main_cell = format_value(main, r["means"][main]) + (f" {format_interval(ci['low'], ci['high'])}" if ci else "")
        cells = [_rank(r), r["summarizer"], main_cell, _significance(r.get("vs_next")),
                 *[format_value(m, r["means"][m]) for m in metrics if m != main],
                 f"{r['n_scored']}/{r['n_articles']}", str(r["n_failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    sig = board["signature"]
    cfg = sig["config_hash"] if isinstance(sig["config_hash"], str) else ",".join(sig["config_hash"])
    out = [f"## bench leaderboard ({main} first)", ""]
    out += [f"- **Warning:** {w}" for w in board.get("warnings", [])] + ([""] if board.get("warnings") else [])
    out += [*lines, ""]
    if board.get("statistics"):
        st = board["statistics"]
        out += [f"CIs: {st['confidence']:.0%} percentile bootstrap over clusters ({st['resamples']} resamples, seed "
                f"{st['seed']}). `> next`: paired test against the next row on {main} (cluster sign-flip permutation); "
                f"✓ = significant at p < {st['alpha']}, · = not." + (f" Note: {st['p_floor']}." if st.get("p_floor")
                                                                    else ""), ""]
    out += [f"Signature: `{sig['signature_string']}` (config {cfg})", ""]
    if board.get("skipped"):
        out.append(f"Skipped: {len(board['skipped'])} item(s): " + "; ".join(
            f"{s['cluster_id']}/{s.get('article_id') or '*'} ({s['stage']}: {s['reason']})" for s in board["skipped"]))
        out.append("")
    for note in board.get("notes", []):
        out.append(f"Note: {note}")
    undefined = [f"{r['summarizer']}: {m} over {r['n_defined'][m]}/{r['n_scored']}" for r in board["rows"]
                 for m in metrics if r["n_defined"][m] != r["n_scored"]]
    if undefined:
        out.append("Means over fewer articles where a metric is undefined (see README): " + "; ".join(undefined))
    return "\n".join(out).rstrip() + "\n"


def _rank(row: Row) -> str:
    """The row's rank; '-' for a row whose main metric was never measured (older boards: no rank key)."""
    return "-" if row.get("rank", 0) is None else str(row.get("rank", ""))


def _significance(vs_next: Comparison | None) -> str:
    if not vs_next:
        return ""
    if vs_next["p_value"] is None:
        return "n/a"
    return f"{'✓' if vs_next['significant'] else '·'} p={format_number(vs_next['p_value'], 3)}"
