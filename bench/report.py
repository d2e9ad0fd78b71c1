"""Stage 7, report: leaderboard rows from scores, merging runs, and Markdown/terminal rendering."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.score import MAIN_METRIC, METRICS
from bench.stats import as_values
from bench.types import BenchError

SCHEMA_VERSION = "1.0"
DISPLAY = {"consensus_recall": "cons. recall", "consensus_precision": "cons. prec.", "unsupported_rate": "unsupported",
           "rouge1": "R-1", "rouge2": "R-2", "rougeLsum": "R-Lsum", "length_words": "words", "compression": "compr."}


def leaderboard_rows(score_rows: Sequence[dict[str, Any]], identities: dict[str, Any]) -> list[dict[str, Any]]:
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
        })
    rows.sort(key=lambda r: (r["means"][MAIN_METRIC] is None, -(r["means"][MAIN_METRIC] or 0.0), r["summarizer"]))
    return rows


def merge(boards: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Merge leaderboards (label, board). Refuses differing data or scorer settings; a summarizer in
    several runs is taken from the newest run, and the merge says so under `notes`."""
    if not boards:
        raise BenchError("no leaderboards to merge")
    first_label, first = boards[0]
    for label, b in boards[1:]:
        for key in ("data_hash", "scorer_hash"):
            if b["signature"][key] != first["signature"][key]:
                raise BenchError(f"cannot merge {label} with {first_label}: their {key} differ "
                                 f"({b['signature'][key]} vs {first['signature'][key]}); "
                                 "runs must use the same data and scorer settings")
    chosen: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    notes = []
    for label, b in sorted(boards, key=lambda lb: lb[1]["created"]):
        for row in b["rows"]:
            if row["summarizer"] in chosen:
                notes.append(f"{row['summarizer']}: in {chosen[row['summarizer']][0]} and {label}; kept the newer, {label}")
            chosen[row["summarizer"]] = (label, b, row)
    rows = [dict(row, run=label) for label, _, row in chosen.values()]
    rows.sort(key=lambda r: (r["means"][MAIN_METRIC] is None, -(r["means"][MAIN_METRIC] or 0.0), r["summarizer"]))
    newest = max(b["created"] for _, b in boards)
    sig = dict(first["signature"])
    sig["config_hash"] = sorted({b["signature"]["config_hash"] for _, b in boards})
    return {
        "schema_version": SCHEMA_VERSION, "created": newest, "signature": sig, "main_metric": MAIN_METRIC,
        "metrics": list(METRICS), "rows": rows, "runs": [label for label, _ in boards], "notes": notes,
        "skipped": [s for _, b in boards[:1] for s in b.get("skipped", [])],
    }


def _fmt(value: Any, metric: str) -> str:
    if value is None:
        return "n/a"
    if metric == "length_words":
        return f"{value:.1f}"
    return f"{value:.4f}" if metric != "compression" else f"{value:.3f}"


def to_markdown(board: dict[str, Any]) -> str:
    metrics = board["metrics"]
    head = ["#", "summarizer", *[DISPLAY.get(m, m) for m in metrics], "scored", "failed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:"] + [":---"] + ["---:"] * (len(head) - 2)) + "|"]
    for i, r in enumerate(board["rows"], start=1):
        cells = [str(i), r["summarizer"], *[_fmt(r["means"][m], m) for m in metrics],
                 f"{r['n_scored']}/{r['n_articles']}", str(r["n_failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    sig = board["signature"]
    cfg = sig["config_hash"] if isinstance(sig["config_hash"], str) else ",".join(sig["config_hash"])
    out = [f"## bench leaderboard ({MAIN_METRIC} first)", "", *lines, "",
           f"Signature: `{sig['signature_string']}` (config {cfg})", ""]
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


def write_board(board: dict[str, Any], out_dir: Path) -> str:
    (out_dir / "leaderboard.json").write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n")
    md = to_markdown(board)
    (out_dir / "leaderboard.md").write_text(md)
    return md


def load_board(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "leaderboard.json"
    if not path.is_file():
        raise BenchError(f"{run_dir} has no leaderboard.json (is it a finished bench run directory?)")
    try:
        board = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}: not valid JSON ({e.msg})") from None
    if str(board.get("schema_version", "")).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise BenchError(f"{path}: schema_version {board.get('schema_version')!r} is not {SCHEMA_VERSION}")
    return board
