"""The HTML report: one self-contained file per run or merge directory (no network at view time).

Every piece of article and summary text is untrusted web text and goes through `html.escape`; the
only script is the fixed table-sorting code below, and no data is ever placed inside it."""
from __future__ import annotations

import base64
import hashlib
import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.reporting.leaderboard import DISPLAY, load_board, read_jsonl, shown_metrics

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:16px 0 6px}
.meta{color:#5b6475;font-size:12px}code{font-size:12px;background:#f2f4f8;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d7dce5;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#eef1f6;cursor:pointer;user-select:none;white-space:nowrap}td.l,th.l{text-align:left}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
.sig{color:#0a7a2f;font-weight:600}.nsig{color:#8a93a3}.fail{color:#b3261e;font-weight:600}.warn{color:#8a4b00;font-weight:600}
details{border:1px solid #d7dce5;border-radius:6px;margin:6px 0;padding:6px 10px}summary{cursor:pointer;font-weight:600}
.article{white-space:pre-wrap;background:#fafbfd;border:1px solid #e3e7ee;padding:8px;max-height:420px;overflow:auto}
.removed li{color:#6b7280}.removed .why{color:#9a3412;font-size:12px}
mark.unsupported{background:#fde2e1;border-bottom:2px solid #d93025;padding:0 1px}
td.cov{text-align:center;font-weight:600}td.yes{background:#e3f5e8;color:#0a7a2f}td.no{background:#fdecea;color:#b3261e}
td.na{color:#9aa3b2}.summary-text{white-space:pre-wrap}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      var asc=!th.classList.contains('sorted-asc');
      t.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc')});
      th.classList.add(asc?'sorted-asc':'sorted-desc');
      rows.sort(function(a,b){
        var x=a.cells[i].getAttribute('data-v'),y=b.cells[i].getAttribute('data-v');
        var nx=parseFloat(x),ny=parseFloat(y);
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r)});
    });
  });
});
document.body.setAttribute('data-report-ready','1');
"""

# only this exact script may run (Content-Security-Policy hash): injected scripts and on* handlers cannot
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SORT_JS.encode()).digest()).decode()


def e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _num(x: Any, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _leaderboard(board: dict[str, Any]) -> str:
    main, metrics = board["main_metric"], shown_metrics(board)
    others = [m for m in metrics if m != main]
    conf = int(round(100 * board.get("statistics", {}).get("confidence", 0.95)))
    head = (["#", "summarizer", DISPLAY.get(main, main), f"{conf}% CI", "> next (p)"]
            + [DISPLAY.get(m, m) for m in others] + ["scored", "failed"])
    out = ['<table id="leaderboard" class="sortable"><thead><tr>']
    out += [f'<th class="{"l" if h == "summarizer" else ""}">{e(h)}</th>' for h in head]
    out.append("</tr></thead><tbody>")
    for i, r in enumerate(board["rows"], start=1):
        rank = r.get("rank", i)  # None: never measured, not ranked (boards before ranks: the row order)
        ci = (r.get("ci") or {}).get(main)
        ci_text = f"[{ci['low']:.3f}, {ci['high']:.3f}]" if ci else "n/a"
        nxt = r.get("vs_next")
        if nxt and nxt.get("p_value") is not None:
            cls = "sig" if nxt["significant"] else "nsig"
            sig = (f'<td data-v="{nxt["p_value"]}" class="{cls}" title="vs {e(nxt["worse"])}: '
                   f'difference {nxt["difference"]:+.4f} [{nxt["low"]:+.3f}, {nxt["high"]:+.3f}]">'
                   f'{"✓" if nxt["significant"] else "·"} {nxt["p_value"]:.3f}</td>')
        else:
            sig = '<td data-v="">&nbsp;</td>'
        cells = [f'<td data-v="{"" if rank is None else rank}">{"–" if rank is None else rank}</td>', f'<td class="l" data-v="{e(r["summarizer"])}">{e(r["summarizer"])}</td>',
                 f'<td data-v="{r["means"][main] if r["means"][main] is not None else ""}">{_num(r["means"][main])}</td>',
                 f'<td data-v="{ci["low"] if ci else ""}">{ci_text}</td>', sig]
        for m in others:
            v = r["means"][m]
            cells.append(f'<td data-v="{"" if v is None else v}">{_num(v, 1 if m == "length_words" else 4)}</td>')
        cells.append(f'<td data-v="{r["n_scored"]}">{r["n_scored"]}/{r["n_articles"]}</td>')
        cells.append(f'<td data-v="{r["n_failed"]}" class="{"fail" if r["n_failed"] else ""}">{r["n_failed"]}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _chart(board: dict[str, Any]) -> str:
    """Horizontal bars of the main metric with CI whiskers, as inline SVG."""
    main = board["main_metric"]
    rows = [r for r in board["rows"] if r["means"][main] is not None]
    label_w, bar_w, row_h, top = 140, 520, 26, 24
    height = top + row_h * len(rows) + 30
    x = lambda v: label_w + bar_w * max(0.0, min(1.0, v))  # noqa: E731 - scores are in [0, 1]
    parts = [f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" height="{height}" '
             f'role="img" aria-label="{e(main)} with confidence intervals">',
             f'<text x="{label_w}" y="14" font-size="12" fill="#5b6475">{e(main)} (mean, whiskers: CI)</text>']
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{x(t)}" x2="{x(t)}" y1="{top - 4}" y2="{height - 24}" stroke="#e3e7ee"/>'
                     f'<text x="{x(t)}" y="{height - 8}" font-size="11" text-anchor="middle" fill="#5b6475">{t:g}</text>')
    for i, r in enumerate(rows):
        y = top + i * row_h
        mean = r["means"][main]
        ci = (r.get("ci") or {}).get(main)
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" font-size="12" text-anchor="end">{e(r["summarizer"])}</text>'
                     f'<rect x="{label_w}" y="{y + 4}" width="{x(mean) - label_w:.1f}" height="{row_h - 10}" '
                     f'fill="#4a78c2"><title>{e(r["summarizer"])}: {mean:.4f}</title></rect>')
        if ci:
            cy = y + row_h / 2 - 1
            parts.append(f'<line x1="{x(ci["low"]):.1f}" x2="{x(ci["high"]):.1f}" y1="{cy}" y2="{cy}" stroke="#111" '
                         f'stroke-width="1.5"/><line x1="{x(ci["low"]):.1f}" x2="{x(ci["low"]):.1f}" y1="{cy - 5}" '
                         f'y2="{cy + 5}" stroke="#111"/><line x1="{x(ci["high"]):.1f}" x2="{x(ci["high"]):.1f}" '
                         f'y1="{cy - 5}" y2="{cy + 5}" stroke="#111"/>')
        parts.append(f'<text x="{x(ci["high"] if ci else mean) + 6:.1f}" y="{y + 16}" font-size="11">{mean:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _highlight(text: str, spans: list[dict[str, Any]]) -> str:
    """Escaped text with the unsupported facts' spans wrapped in <mark>."""
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        start, end = max(s["start"], pos), s["end"]
        if end <= start or end > len(text):
            continue
        out.append(e(text[pos:start]))
        out.append(f'<mark class="unsupported" title="no article of the cluster supports this fact">'
                   f'{e(text[start:end])}</mark>')
        pos = end
    out.append(e(text[pos:]))
    return "".join(out)


def _article(art: dict[str, Any], units: list[dict[str, Any]], names: list[str],
             scores: dict[tuple[str, str], dict[str, Any]], summaries: dict[tuple[str, str], dict[str, Any]]) -> str:
    aid = art["article_id"]
    status = f' <span class="fail">dropped: {e(art["dropped"])}</span>' if art.get("dropped") else ""
    out = [f'<details class="article-drill" id="a-{e(art["cluster_id"])}-{e(aid)}"><summary>{e(art["source"])} '
           f'<span class="meta">({e(aid)})</span> {e(art.get("title"))}{status}</summary>',
           "<h3>Cleaned article</h3>", f'<div class="article">{e(art["text"])}</div>']
    if art.get("removed"):
        out.append(f"<h3>Removed by cleaning ({len(art['removed'])})</h3><ul class=\"removed\">")
        out += [f'<li>{e(r["text"])} <span class="why">— {e(r["reason"])}</span></li>' for r in art["removed"]]
        out.append("</ul>")
    ref = [(u, u["reference_for"][aid]) for u in units if aid in u.get("reference_for", {})]
    if ref:
        out.append("<h3>Consensus units (leave-one-out reference) and coverage</h3>"
                   '<table class="sortable coverage"><thead><tr><th class="l">unit</th><th>weight</th>'
                   '<th class="l">supporting sources</th>'
                   + "".join(f"<th>{e(n)}</th>" for n in names) + "</tr></thead><tbody>")
        for u, r in ref:
            cells = []
            for n in names:
                sc = scores.get((n, aid))
                if not r["attainable"]:
                    cells.append('<td class="cov na" data-v="-1" title="the article does not state it">–</td>')
                elif sc is None or sc["status"] != "ok":
                    cells.append('<td class="cov na" data-v="-1">failed</td>')
                elif u["unit_id"] in (sc.get("covered_units") or []):
                    cells.append('<td class="cov yes" data-v="1">✓</td>')
                else:
                    cells.append('<td class="cov no" data-v="0">✗</td>')
            out.append(f'<tr><td class="l" data-v="{e(u["text"])}">{e(u["text"])}</td><td data-v="{r["weight"]}">'
                       f'{r["weight"]}</td><td class="l" data-v="{e(", ".join(u["outlets"]))}">'
                       f'{e(", ".join(u["outlets"]))}</td>' + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
    else:
        out.append('<p class="meta">No consensus unit is in this article\'s reference.</p>')
    out.append("<h3>Summaries</h3>")
    for n in names:
        sm, sc = summaries.get((n, aid)), scores.get((n, aid))
        if sm is None:
            continue
        if sm.get("error"):
            out.append(f'<p><b>{e(n)}</b>: <span class="fail">failed: {e(sm["error"])}</span></p>')
            continue
        spans = (sc or {}).get("unsupported_facts") or []
        metrics = (sc or {}).get("metrics") or {}
        out.append(f'<p><b>{e(n)}</b> <span class="meta">consensus recall {_num(metrics.get("consensus_recall"))}, '
                   f'unsupported facts {len(spans)}</span><br><span class="summary-text">{_highlight(sm["text"], spans)}'
                   "</span></p>")
    out.append("</details>")
    return "".join(out)


def render(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    board = load_board(run_dir)
    scores_rows = read_jsonl(run_dir / "scores.jsonl")
    summaries_rows = read_jsonl(run_dir / "summaries.jsonl")
    articles = read_jsonl(run_dir / "articles.jsonl")
    units = read_jsonl(run_dir / "consensus.jsonl")
    names = [r["summarizer"] for r in board["rows"]]
    scores = defaultdict(dict)
    for r in scores_rows:
        scores[r["cluster_id"]][(r["summarizer"], r["article_id"])] = r
    summaries = defaultdict(dict)
    for r in summaries_rows:
        summaries[r["cluster_id"]][(r["summarizer"], r["article_id"])] = r
    units_by_cluster = defaultdict(list)
    for u in units:
        units_by_cluster[u["cluster_id"]].append(u)
    arts_by_cluster = defaultdict(list)
    for a in articles:
        arts_by_cluster[a["cluster_id"]].append(a)
    sig = board["signature"]
    st = board.get("statistics") or {}
    ds = board.get("dataset") or {}
    body = [f"<h1>bench report</h1><div class=\"meta\">signature <code>{e(sig['signature_string'])}</code> · created "
            f"{e(board['created'])} · {e(ds.get('n_scored_articles'))} articles in {e(ds.get('n_scored_clusters'))} "
            f"clusters scored</div>",
            "<h2>Leaderboard</h2>",
            f"<p class=\"meta\">Click a column to sort. CIs: {e(st.get('method'))}, {e(st.get('resamples'))} resamples, "
            f"seed {e(st.get('seed'))}. &gt; next: {e(st.get('paired_test'))}; ✓ = p &lt; {e(st.get('alpha'))}."
            + (f" Note: {e(st['p_floor'])}." if st.get("p_floor") else "") + "</p>",
            *(f'<p class="warn">Warning: {e(w)}</p>' for w in board.get("warnings", [])),
            _leaderboard(board), "<h2>Main metric with confidence intervals</h2>", _chart(board)]
    if board.get("notes"):
        body.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in board["notes"]) + "</ul>")
    if board.get("skipped"):
        body.append("<h2>Skipped</h2><ul>" + "".join(
            f"<li>{e(s['cluster_id'])}/{e(s.get('article_id') or '*')}: {e(s['stage'])}: {e(s['reason'])}</li>"
            for s in board["skipped"]) + "</ul>")
    body.append("<h2>Clusters</h2>")
    for cid in sorted(arts_by_cluster):
        body.append(f'<section class="cluster"><h3>{e(cid)} <span class="meta">({len(units_by_cluster[cid])} '
                    "consensus units)</span></h3>")
        for art in arts_by_cluster[cid]:
            drill = _article(art, units_by_cluster[cid], names, scores[cid], summaries[cid])
            if not any("<details class=\"article-drill\" open" in b for b in body) and not art.get("dropped"):
                drill = drill.replace('<details class="article-drill"', '<details class="article-drill" open', 1)
            body.append(drill)
        body.append("</section>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{SCRIPT_HASH}'; img-src data:\">"
            f"<title>bench report</title><style>{CSS}</style></head><body>{''.join(body)}"
            f"<script>{SORT_JS}</script></body></html>\n")


def write_html(run_dir: Path, out: Path | None = None) -> Path:
    out = Path(out) if out else Path(run_dir) / "report.html"
    out.write_text(render(run_dir), encoding="utf-8")
    return out
