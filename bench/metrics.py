"""The metrics of a summary, in one table: names and column order, display names, the better direction,
digits shown, and the definitions the README prints (`definitions_markdown`). Scoring, the leaderboard,
`bench compare`, the HTML report and the README all read them here, and every number any of them shows is
formatted by `format_number`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str                   # key in scores.jsonl and leaderboard.json
    display: str                # short column header (Markdown, terminal, HTML)
    higher_is_better: bool | None  # None: neither; reported, never gated
    digits: int                 # decimals shown
    definition: str             # README wording; S: the summary, t: its article, R and A: its reference units
    undefined_when: str         # when the value is None (never 0)
    needs_human_summary: bool = False  # a validity column: shown only where some row has a value

    @property
    def direction(self) -> int:
        """+1: higher is better; -1: lower is better; 0: neither."""
        return 0 if self.higher_is_better is None else (1 if self.higher_is_better else -1)


@dataclass(frozen=True)
class BreakdownSpec:
    """A per-level breakdown of a metric, kept beside it in scores.jsonl (not a leaderboard column)."""
    name: str
    of: str                     # the metric it breaks down
    where: str
    definition: str
    undefined_when: str


_ROUGE = ("F-measure from `rouge-score` (Porter stemmer) of S against the reference text: the representative "
          "texts of R, one per line; S's sentences one per line")
_HUMAN_ROUGE = ("validity columns: ROUGE F-measure (same scorer) of S against the cluster's human multi-document "
                "summary, its sentences (split by the run's fact extractor) one per line")
_NO_HUMAN = "the cluster has no human summary, or S has no sentences"

TABLE = (
    MetricSpec("consensus_recall", "cons. recall", True, 4, "Σ_{u∈A, S covers u} w_u / Σ_{u∈A} w_u",
               "A is empty"),
    MetricSpec("consensus_precision", "cons. prec.", True, 4,
               "share of S's facts supported by a member fact of some u ∈ R", "S has no facts, or R is empty"),
    MetricSpec("unsupported_rate", "unsupported", False, 4,
               "share of S's facts that no sentence of any article of the cluster (t included) supports",
               "S has no facts"),
    MetricSpec("rouge1", "R-1", True, 4, _ROUGE, "R is empty"),
    MetricSpec("rouge2", "R-2", True, 4, _ROUGE, "R is empty"),
    MetricSpec("rougeLsum", "R-Lsum", True, 4, _ROUGE, "R is empty"),
    MetricSpec("length_words", "words", None, 1, "whitespace words in S", "never"),
    MetricSpec("compression", "compr.", None, 3, "`length_words` / words in the cleaned article",
               "the cleaned article has no words"),
    MetricSpec("human_rouge1", "human R-1", True, 4, _HUMAN_ROUGE, _NO_HUMAN, needs_human_summary=True),
    MetricSpec("human_rouge2", "human R-2", True, 4, _HUMAN_ROUGE, _NO_HUMAN, needs_human_summary=True),
    MetricSpec("human_rougeLsum", "human R-Lsum", True, 4, _HUMAN_ROUGE, _NO_HUMAN, needs_human_summary=True),
)
BREAKDOWNS = (
    BreakdownSpec("recall_by_support", "consensus_recall",
                  "in scores.jsonl; pooled over articles in each leaderboard row, with `units`",
                  "the same, unweighted, for units with w_u = k, per k", "no unit at that level"),
)
METRICS = tuple(m.name for m in TABLE)  # column order
MAIN_METRIC = "consensus_recall"        # ranks the leaderboard
INTERVAL_DIGITS = 3                     # confidence intervals are shown to 3 decimals
_BY_NAME = {m.name: m for m in TABLE}


def spec(name: str) -> MetricSpec:
    """The metric called `name`; KeyError for a name not in the table."""
    return _BY_NAME[name]


def format_number(value: float | None, digits: int, signed: bool = False) -> str:
    """The one number format of every table and page: `digits` decimals (with a sign for differences),
    'n/a' for an undefined value."""
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_value(name: str, value: float | None) -> str:
    """A value of the metric `name`, with the metric's digits."""
    return format_number(value, spec(name).digits)


def format_interval(low: float, high: float, signed: bool = False) -> str:
    return f"[{format_number(low, INTERVAL_DIGITS, signed)}, {format_number(high, INTERVAL_DIGITS, signed)}]"


def definitions_markdown() -> str:
    """The README's table of metric definitions. Metrics defined alike share a row; a breakdown follows
    the metric it breaks down."""
    better = {1: "higher", -1: "lower", 0: "neither (never gates `bench compare`)"}
    lines = ["| metric | definition | undefined (None) when | better |", "|---|---|---|---|"]
    groups: list[list[MetricSpec]] = []
    for m in TABLE:
        last = groups[-1][0] if groups else None
        if last and (last.definition, last.undefined_when, last.direction) == (m.definition, m.undefined_when,
                                                                                m.direction):
            groups[-1].append(m)
        else:
            groups.append([m])
    for group in groups:
        first = group[0]
        names = ", ".join(f"`{m.name}`" for m in group)
        lines.append(f"| {names} | {first.definition} | {first.undefined_when} | {better[first.direction]} |")
        for b in BREAKDOWNS:
            if b.of in (m.name for m in group):
                lines.append(f"| `{b.name}` ({b.where}) | {b.definition} | {b.undefined_when} | |")
    return "\n".join(lines) + "\n"
