"""The HTML report: one self-contained file per run or merge directory (no network at view time), rendered
from templates/report.html.j2.

Every piece of article and summary text is untrusted web text: the template is autoescaped, so whatever it
prints is escaped. The only script is the fixed table-sorting code (templates/sort.js), which the
Content-Security-Policy allows by its hash; no data is ever placed inside it."""
from __future__ import annotations

import base64
import hashlib
import html
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Collection

from markupsafe import Markup as _Markup

from bench.metrics import format_interval, format_number, format_value, spec
from bench.reporting.leaderboard import shown_metrics
from bench.reporting.records import Board, Row, load_board, read_records, record_cluster_ids

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHART_LABEL_WIDTH, CHART_BAR_WIDTH, CHART_ROW_HEIGHT, CHART_TOP = 140, 520, 26, 24


DRILL_DOWN_CLUSTERS = 50  # the default of `html_clusters` and `bench report --clusters`


def render(run_dir: Path, max_clusters: int | None = None, board: Board | None = None,
           cluster_ids: Collection[str] | None = None) -> str:
    """The page. The per-article drill-down shows the first `max_clusters` clusters by id (None: all): a
    report of thousands of clusters stays a page a browser opens; the JSONL files hold every record.
    A run that has just written `board` and knows its `cluster_ids` passes them, and only the shown
    clusters' records are read back."""
    run_dir = Path(run_dir)
    board = load_board(run_dir) if board is None else board
    all_clusters = sorted(set(record_cluster_ids(run_dir, "articles") if cluster_ids is None else cluster_ids))
    shown = set(all_clusters[:max_clusters] if max_clusters is not None else all_clusters)

    page = _page(board, read_records(run_dir, "scores", shown), read_records(run_dir, "summaries", shown),
                 read_records(run_dir, "articles", shown), read_records(run_dir, "consensus", shown))
    page.drill_down = View(shown=len(shown), total=len(all_clusters))
    script = _script()
    return _environment().get_template("report.html.j2").render(
        page=page, script=script.code, script_hash=script.sha256)


def write_html(run_dir: Path, out: Path | None = None, max_clusters: int | None = None, board: Board | None = None,
               cluster_ids: Collection[str] | None = None) -> Path:
    out = Path(out) if out else Path(run_dir) / "report.html"
    out.write_text(render(run_dir, max_clusters, board, cluster_ids), encoding="utf-8")
    return out


class _Script:
    """The report's only script and its CSP hash."""

    def __init__(self, code: str):
        self.code = _Markup(code)  # fixed code of ours, never data: printed as it is
        self.sha256 = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()


@lru_cache(maxsize=1)
def _script() -> _Script:
    return _Script((TEMPLATES / "sort.js").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, finalize=_printed)


def _printed(value: Any) -> Any:
    """What `{{ value }}` prints: nothing for None; text escaped as `html.escape` does (quotes as &quot; and
    &#x27;); anything else (numbers, the template's own markup) goes on to autoescaping."""
    if value is None:
        return ""
    if type(value) is str:
        return _Markup(html.escape(value, quote=True))
    return value


# --- the page's data: everything the template prints, computed here ----------------------------------------
class View(SimpleNamespace):
    """Values for the template, read as attributes (Jinja's fast path; a missing one is an error)."""


def _page(board: Board, scores: list[dict], summaries: list[dict], articles: list[dict], units: list[dict]) -> View:
    main, metrics = board["main_metric"], shown_metrics(board)
    others = [m for m in metrics if m != main]
    stats = board.get("statistics") or {}
    dataset = board.get("dataset") or {}
    conf = int(round(100 * stats.get("confidence", 0.95)))
    names = [r["summarizer"] for r in board["rows"]]
    return View(
        signature=board["signature"]["signature_string"], created=board["created"],
        n_scored_articles=dataset.get("n_scored_articles"), n_scored_clusters=dataset.get("n_scored_clusters"),
        stats=View(**{k: stats.get(k) for k in ("method", "resamples", "seed", "paired_test", "alpha", "p_floor")}),
        warnings=board.get("warnings", []),
        head=(["#", "summarizer", spec(main).display, f"{conf}% CI", "> next (p)"]
              + [spec(m).display for m in others] + ["scored", "failed"]),
        rows=[_row(r, i, main, others) for i, r in enumerate(board["rows"], start=1)],
        chart=_chart(board), notes=board.get("notes", []),
        skipped=[View(**{"article_id": None, **s}) for s in board.get("skipped", [])],
        summarizers=names, clusters=_clusters(names, scores, summaries, articles, units),
    )


def _row(r: Row, position: int, main: str, others: list[str]) -> View:
    ci = (r.get("ci") or {}).get(main)
    nxt = r.get("vs_next")
    vs_next = None
    if nxt and nxt.get("p_value") is not None:
        vs_next = View(p_value=nxt["p_value"], significant=nxt["significant"], worse=nxt["worse"],
                       difference=format_number(nxt["difference"], 4, signed=True),
                       interval=format_interval(nxt["low"], nxt["high"], signed=True),
                       p_text=format_number(nxt["p_value"], 3))
    return View(
        rank=r.get("rank", position),  # None: never measured, not ranked (boards before ranks: the row order)
        summarizer=r["summarizer"],
        main_cells=[View(sort=r["means"][main], text=format_value(main, r["means"][main])),
                    View(sort=ci["low"] if ci else None, text=format_interval(ci["low"], ci["high"]) if ci else "n/a")],
        vs_next=vs_next,
        other_cells=[View(sort=r["means"][m], text=format_value(m, r["means"][m])) for m in others],
        n_scored=r["n_scored"], n_articles=r["n_articles"], n_failed=r["n_failed"],
    )


def _chart(board: Board) -> View:
    """Horizontal bars of the main metric with CI whiskers (inline SVG): coordinates of every mark."""
    main = board["main_metric"]
    rows = [r for r in board["rows"] if r["means"][main] is not None]
    left, top, row_h = CHART_LABEL_WIDTH, CHART_TOP, CHART_ROW_HEIGHT
    height = top + row_h * len(rows) + 30

    def x(v: float) -> float:  # scores are in [0, 1]
        return left + CHART_BAR_WIDTH * max(0.0, min(1.0, v))

    bars = []
    for i, r in enumerate(rows):
        y = top + i * row_h
        mean = r["means"][main]
        ci = (r.get("ci") or {}).get(main)
        bars.append(View(
            summarizer=r["summarizer"], text_y=y + 16, bar_y=y + 4, width=f"{x(mean) - left:.1f}",
            mean_text=format_value(main, mean),
            ci=View(low=f"{x(ci['low']):.1f}", high=f"{x(ci['high']):.1f}", y=y + row_h / 2 - 1) if ci else None,
            label_x=f"{x(ci['high'] if ci else mean) + 6:.1f}", label=format_number(mean, 3),
        ))
    return View(metric=main, width=left + CHART_BAR_WIDTH + 60, height=height, left=left, grid_top=top - 4,
                grid_bottom=height - 24, tick_label_y=height - 8, bar_height=row_h - 10,
                ticks=[View(x=x(t), label=f"{t:g}") for t in (0, 0.25, 0.5, 0.75, 1.0)], bars=bars)


def _clusters(names: list[str], score_rows: list[dict], summary_rows: list[dict], articles: list[dict],
              units: list[dict]) -> list[View]:
    """Per cluster, per article: the drill-down. The first article that was not dropped is shown open."""
    scores, summaries = defaultdict(dict), defaultdict(dict)
    for r in score_rows:
        scores[r["cluster_id"]][(r["summarizer"], r["article_id"])] = r
    for r in summary_rows:
        summaries[r["cluster_id"]][(r["summarizer"], r["article_id"])] = r
    units_by_cluster, articles_by_cluster = defaultdict(list), defaultdict(list)
    for u in units:
        units_by_cluster[u["cluster_id"]].append(u)
    for a in articles:
        articles_by_cluster[a["cluster_id"]].append(a)
    opened = False
    out = []
    for cid in sorted(articles_by_cluster):
        drills = []
        for art in articles_by_cluster[cid]:
            drill = _article(art, units_by_cluster[cid], names, scores[cid], summaries[cid])
            drill.open = not opened and not art.get("dropped")
            opened |= drill.open
            drills.append(drill)
        out.append(View(cluster_id=cid, n_units=len(units_by_cluster[cid]), articles=drills))
    return out


def _article(art: dict[str, Any], units: list[dict[str, Any]], names: list[str],
             scores: dict[tuple[str, str], dict[str, Any]], summaries: dict[tuple[str, str], dict[str, Any]]) -> View:
    aid = art["article_id"]
    reference = [(u, u["reference_for"][aid]) for u in units if aid in u.get("reference_for", {})]
    shown = []
    for name in names:
        sm, sc = summaries.get((name, aid)), scores.get((name, aid))
        if sm is None:
            continue
        if sm.get("error"):
            shown.append(View(summarizer=name, error=sm["error"]))
            continue
        spans = (sc or {}).get("unsupported_facts") or []
        metrics = (sc or {}).get("metrics") or {}
        shown.append(View(summarizer=name, error=None, n_unsupported=len(spans),
                          recall=format_value("consensus_recall", metrics.get("consensus_recall")),
                          pieces=_pieces(sm["text"], spans)))
    return View(
        article_id=aid, source=art["source"], title=art.get("title"), dropped=art.get("dropped"), text=art["text"],
        removed=[View(text=r["text"], reason=r["reason"]) for r in art.get("removed") or []],
        units=[View(text=u["text"], weight=ref["weight"], outlets=", ".join(u["outlets"]),
                    coverage=[_coverage(u, ref, scores.get((name, aid))) for name in names]) for u, ref in reference],
        summaries=shown, open=False,
    )


def _coverage(unit: dict[str, Any], reference: dict[str, Any], score: dict[str, Any] | None) -> str:
    if not reference["attainable"]:
        return "unstated"
    if score is None or score["status"] != "ok":
        return "failed"
    return "covered" if unit["unit_id"] in (score.get("covered_units") or []) else "missed"


def _pieces(text: str, spans: list[dict[str, Any]]) -> list[View]:
    """The summary text in pieces, each marked unsupported or not: the unsupported facts' spans, in order,
    overlaps trimmed, spans past the end of the text left out."""
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        start, end = max(s["start"], pos), s["end"]
        if end <= start or end > len(text):
            continue
        out += [View(text=text[pos:start], unsupported=False), View(text=text[start:end], unsupported=True)]
        pos = end
    out.append(View(text=text[pos:], unsupported=False))
    return out
