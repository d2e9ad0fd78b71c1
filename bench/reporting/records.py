"""A run directory: what a run writes there, and every read of one.

Files (README "Results schema"): the stage records `<name>.jsonl` (RECORD_FILES), written line by line by
`RecordWriter` while the run goes; `leaderboard.json` (`Board`, checked against
schemas/leaderboard.schema.json whenever it is loaded) and `leaderboard.md`; `config.yaml`; and
`status.json`, the run's state.

Run status: a run marks itself `running` before any work and `finished` after its last file is written;
a run that fails marks `failed` with the error. A run killed with `kill -9` stays `running`, with a pid
that no longer exists: `describe_status` says so. `leaderboard`, `compare` and `report` refuse a run
directory that is not finished (directories without a status, from older versions, are accepted)."""
# no `from __future__ import annotations` here: TypedDict reads NotRequired[...] only from evaluated annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sys
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from bench.stages.data import read_jsonl as parse_jsonl
from bench.types import BenchError

SCHEMA_VERSION = "1.1"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "leaderboard.schema.json"
BOARD_FILE, MARKDOWN_FILE, CONFIG_FILE, STATUS_FILE = "leaderboard.json", "leaderboard.md", "config.yaml", "status.json"
RECORD_FILES = ("articles", "consensus", "sources", "summaries", "scores", "skipped")  # each <name>.jsonl
DATA_FILES = ("articles", "consensus", "sources")  # equal across runs with equal data and scorer
STATES = ("running", "finished", "failed")
STATUS_BYTES = 4096  # one block: a later status overwrites it in place if the disk fills up


# --- typed records: leaderboard.json and scores.jsonl, key by key ------------------------------------------
class ScoreRow(TypedDict):
    """One line of scores.jsonl: one summarizer on one article. Metrics are None where undefined."""
    summarizer: str
    cluster_id: str
    article_id: str
    status: str                          # "ok" or "failed"
    error: NotRequired[str | None]       # failed rows: why
    metrics: dict[str, float | None] | None  # {metric: value}; None for a failed row
    # ok rows only, from here on
    recall_by_support: NotRequired[dict[str, float]]  # {weight k: recall among the units of weight k}
    units_by_support: NotRequired[dict[str, int]]     # {weight k: attainable units of weight k}
    n_reference_units: NotRequired[int]
    n_attainable_units: NotRequired[int]
    n_summary_facts: NotRequired[int]
    covered_units: NotRequired[list[str]]  # unit ids
    missed_units: NotRequired[list[str]]
    unsupported_facts: NotRequired[list[dict[str, Any]]]  # [{text, start, end}]: spans in the summary text


class ConfidenceInterval(TypedDict):
    """A cluster-bootstrap confidence interval of a mean."""
    low: float
    high: float
    n_clusters: int


class Comparison(TypedDict):
    """A paired test of two rows on the main metric (None values: the rows share no article)."""
    better: str                          # the higher-ranked row
    worse: str
    difference: float | None             # exact mean of better - worse on shared articles
    low: float | None                    # paired cluster-bootstrap CI of the difference
    high: float | None
    p_value: float | None                # cluster sign-flip permutation test, two-sided
    significant: bool | None             # p_value < alpha
    n: int                               # shared articles
    n_clusters: NotRequired[int]


class Throughput(TypedDict):
    """One summarizer's work in the run."""
    articles: int
    computed: int
    cached: int
    failed: int
    compute_seconds: float               # time in summarizer calls, model loading included
    articles_per_second: NotRequired[float | None]  # over computed articles; None when nothing was computed
    generated_tokens: NotRequired[int | None]
    generated_tokens_per_second: NotRequired[float | None]
    cacheable: NotRequired[bool]


class Row(TypedDict):
    """One summarizer's line of the leaderboard."""
    summarizer: str
    identity: dict[str, Any]             # class and parameters (model file hashes included)
    n_articles: int
    n_scored: int
    n_failed: int
    means: dict[str, float | None]       # {metric: exact mean over articles where defined}
    n_defined: dict[str, int]            # {metric: articles the mean is over}
    ci: dict[str, ConfidenceInterval | None]  # {metric: confidence interval}
    vs_next: Comparison | None           # against the next row; None for the last
    rank: NotRequired[int | None]        # None: main metric never measured, not ranked
    throughput: NotRequired[Throughput | None]
    recall_by_support: NotRequired[dict[str, dict[str, float | int]]]  # {weight k: {recall, units}}, pooled
    run: NotRequired[str]                # after a merge: the run the row was taken from ...
    run_dirs: NotRequired[list[str]]     # ... and its directories (several for a combined shard set)


class Signature(TypedDict):
    """What the results depend on."""
    bench_version: str
    config_hash: str | list[str]         # sha256 of the semantic config; a list after a merge
    data_hash: str
    scorer_hash: str
    shards: NotRequired[dict[str, Any]]  # {index, count, assignment}, or {count, combined, assignment}
    python: str
    packages: dict[str, str | None]
    git: dict[str, Any]                  # {commit, dirty}
    bootstrap: dict[str, Any]            # {seed, resamples, confidence, alpha}
    signature_string: str


class Statistics(TypedDict):
    method: str
    metric_tested: str
    paired_test: str
    seed: int
    resamples: int
    confidence: float
    alpha: float
    p_floor: NotRequired[str]            # why no difference can be significant (too few clusters)


class Board(TypedDict):
    """leaderboard.json of a run or a merge."""
    schema_version: str
    created: str                         # UTC ISO time (a merge: its newest run's)
    signature: Signature
    main_metric: str
    metrics: list[str]                   # column order
    rows: list[Row]                      # sorted by the main metric
    statistics: Statistics
    comparisons: list[Comparison]        # every pair of rows, in rank order
    dataset: NotRequired[dict[str, Any] | None]  # identity, n_clusters, n_articles, n_scored_clusters, ...
    throughput: NotRequired[dict[str, Throughput | None]]
    skipped: NotRequired[list[dict[str, Any]]]   # as in skipped.jsonl
    cache: NotRequired[dict[str, Any]]   # path, hits, misses, replayed_chunks
    timings: NotRequired[dict[str, Any]]  # seconds per stage
    runtime_seconds: NotRequired[float]
    runs: NotRequired[list[str]]         # after a merge: its runs ...
    notes: NotRequired[list[str]]        # ... and what merging them decided
    warnings: NotRequired[list[str]]


# --- writing ---------------------------------------------------------------------------------------------
class RecordWriter:
    """The run's stage records (RECORD_FILES), open for the whole run and appended to chunk by chunk. While
    `recorded` is a dict, every line also goes there, per file, so that a chunk can be replayed."""

    def __init__(self, out_dir: Path):
        self.files = {n: open(Path(out_dir) / f"{n}.jsonl", "w") for n in RECORD_FILES}
        self.digests = {"scores": hashlib.sha256()}  # the statistics' cache key (bench.runner.caching)
        self.recorded: dict[str, list[str]] | None = None

    def write(self, name: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self.files[name].write(line)
        if name in self.digests:
            self.digests[name].update(line.encode())
        if self.recorded is not None:
            if name == "summaries":  # as a warm run writes it: read from the cache
                line = json.dumps({**record, "meta": {**record["meta"], "cached": True}}, ensure_ascii=False) + "\n"
            self.recorded.setdefault(name, []).append(line)

    def replay(self, recorded: dict[str, list[str]]) -> None:
        for name, lines in recorded.items():
            text = "".join(lines)
            self.files[name].write(text)
            if name in self.digests:
                self.digests[name].update(text.encode())

    def digest(self, name: str) -> str:
        """sha256 of what has been written to `<name>.jsonl` so far (kept for scores.jsonl only)."""
        return self.digests[name].hexdigest()

    def flush(self) -> None:
        for fh in self.files.values():
            fh.flush()

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


def write_config(out_dir: Path, yaml_text: str) -> None:
    (Path(out_dir) / CONFIG_FILE).write_text(yaml_text)


def write_board(board: Board, out_dir: Path, markdown: str) -> None:
    """leaderboard.json, and its Markdown rendering as leaderboard.md."""
    (Path(out_dir) / BOARD_FILE).write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n")
    (Path(out_dir) / MARKDOWN_FILE).write_text(markdown)


def write_merged(board: Board, score_rows: Sequence[ScoreRow], sources: Sequence[Path], out_dir: Path,
                 markdown: str) -> None:
    """A merge directory holds the same files as a run (the HTML report is the caller's), so it can be
    merged, compared and reported again."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dirs_of = {r["summarizer"]: [str(d) for d in r.get("run_dirs", [r["run"]])] for r in board["rows"]}
    _write_scores(out_dir / "scores.jsonl", score_rows, dirs_of)
    with open(out_dir / "summaries.jsonl", "w", encoding="utf-8") as fh:
        for src in sources:
            fh.writelines(line for name, line in _summarizer_lines(Path(src) / "summaries.jsonl")
                          if str(src) in dirs_of.get(name, ()))
    # the data-side files are equal across runs of one dataset; shards hold one part each
    whole = board["rows"][0].get("run_dirs", [str(sources[0])]) if board["rows"] else [str(sources[0])]
    for name in DATA_FILES:
        parts = [Path(d) / f"{name}.jsonl" for d in whole]
        target = out_dir / f"{name}.jsonl"
        if all(p.is_file() for p in parts) and all(p.resolve() != target.resolve() for p in parts):
            with open(target, "wb") as out:
                for p in parts:
                    with open(p, "rb") as part:
                        shutil.copyfileobj(part, out)
    write_board(board, out_dir, markdown)


def _write_scores(path: Path, score_rows: Sequence[ScoreRow], dirs_of: dict[str, list[str]]) -> None:
    """The merged scores: each summarizer's rows, in `score_rows` order (summarizer by summarizer, its runs
    in order), copied as lines from the runs they were read from; encoded afresh if those lines do not
    account for the rows one to one."""
    names = list(dict.fromkeys(r["summarizer"] for r in score_rows))
    files = {d: _summarizer_lines(Path(d) / "scores.jsonl") for d in dict.fromkeys(
        d for name in names for d in dirs_of.get(name, ()))}
    lines = [line for name in names for d in dirs_of.get(name, ()) for of, line in files[d] if of == name]
    if len(lines) != len(score_rows) or any(_spelled_ids(line) != (r["summarizer"], r["cluster_id"], r["article_id"])
                                            for line, r in zip(lines, score_rows)):
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in score_rows]
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(lines)


# --- reading ---------------------------------------------------------------------------------------------
_CLUSTER_FIELD = re.compile(r'"cluster_id": ("(?:[^"\\]|\\.)*")')
_SUMMARIZER_FIELD = re.compile(r'"summarizer": ("(?:[^"\\]|\\.)*")')
_ARTICLE_FIELD = re.compile(r'"article_id": ("(?:[^"\\]|\\.)*")')


def _spelled_ids(line: str) -> tuple[Any, Any, Any]:
    """(summarizer, cluster_id, article_id) of a score line, from its fields as the writer spells them."""
    fields = (_SUMMARIZER_FIELD.search(line), _CLUSTER_FIELD.search(line), _ARTICLE_FIELD.search(line))
    return tuple(_unquoted(f.group(1)) if f else None for f in fields)


def _unquoted(spelled: str) -> str:
    """A JSON string literal's value (the common case, no escapes, without a parse)."""
    return spelled[1:-1] if "\\" not in spelled else json.loads(spelled)


def _summarizer_lines(path: Path) -> list[tuple[str, str]]:
    """A run file's lines (summaries or scores) in order, each with its `"summarizer"` field as the writer
    spells it, read without parsing the line. A line whose field is not spelled so, or that does not end
    its object (a truncated line), is parsed strictly."""
    if not path.is_file():
        raise BenchError(f"{path} is missing (is {path.parent} a finished bench run directory?)")
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            field = _SUMMARIZER_FIELD.search(line) if line.rstrip().endswith("}") else None  # else: parsed, strictly
            try:
                name = _unquoted(field.group(1)) if field else json.loads(line)["summarizer"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise BenchError(f"{path}:{lineno}: not a record with a summarizer") from None
            out.append((name, line if line.endswith("\n") else line + "\n"))
    return out


def read_jsonl(path: Path, keep: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """A run file, parsed strictly (bench.stages.data.read_jsonl; `keep`: which raw lines to parse), with a
    clear error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path} is missing (is {path.parent} a finished bench run directory?)")
    return parse_jsonl(path, keep)


def read_records(run_dir: Path, name: str, clusters: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The stage records `<name>.jsonl` of a run (one of RECORD_FILES); with `clusters`, only theirs (lines of
    other clusters are recognised by their `"cluster_id"` field, as the writer spells it, and not parsed)."""
    assert name in RECORD_FILES, name
    path = Path(run_dir) / f"{name}.jsonl"
    if clusters is None:
        return read_jsonl(path)
    wanted = set(clusters)
    spelled = {json.dumps(c, ensure_ascii=False) for c in wanted}

    def maybe_wanted(line: str) -> bool:
        field = _CLUSTER_FIELD.search(line)
        return field is None or field.group(1) in spelled

    return [r for r in read_jsonl(path, maybe_wanted) if r.get("cluster_id") in wanted]


def record_cluster_ids(run_dir: Path, name: str) -> set[str]:
    """The cluster ids of a run's `<name>.jsonl` records, read from each line's `"cluster_id"` field as the
    writer spells it; only lines without that field are parsed."""
    assert name in RECORD_FILES, name
    ids: set[str] = set()

    def unless_spelled(line: str) -> bool:
        field = _CLUSTER_FIELD.search(line)
        if field is not None:
            ids.add(json.loads(field.group(1)))
        return field is None

    parsed = read_jsonl(Path(run_dir) / f"{name}.jsonl", unless_spelled)
    return ids | {r["cluster_id"] for r in parsed if isinstance(r.get("cluster_id"), str)}


def has_records(run_dir: Path, name: str) -> bool:
    assert name in RECORD_FILES, name
    return (Path(run_dir) / f"{name}.jsonl").is_file()


def has_board(run_dir: Path) -> bool:
    return (Path(run_dir) / BOARD_FILE).is_file()


def read_board_markdown(run_dir: Path) -> str:
    """leaderboard.md as the run wrote it."""
    return (Path(run_dir) / MARKDOWN_FILE).read_text()


def load_board(run_dir: Path) -> Board:
    """leaderboard.json of a run or merge directory, checked against the JSON Schema: a board that does not
    match is one line naming the file and the first failing key."""
    path = Path(run_dir) / BOARD_FILE
    if not path.is_file():
        raise BenchError(f"{run_dir} has no {BOARD_FILE} (is it a finished bench run directory?)")
    try:
        board = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}: not valid JSON ({e.msg})") from None
    if not isinstance(board, dict):
        raise BenchError(f"{path}: expected a JSON object, got {type(board).__name__}")
    if str(board.get("schema_version", "")) != SCHEMA_VERSION:
        raise BenchError(f"{path}: schema_version {board.get('schema_version')!r} is not {SCHEMA_VERSION}")
    problem = schema_problem(board)
    if problem:
        raise BenchError(f"{path}: {problem}")
    return board


def load_run(run_dir: Path) -> tuple[Board, list[ScoreRow]]:
    """A run (or merge) directory: its leaderboard and its per-article scores."""
    return load_board(run_dir), read_records(run_dir, "scores")


def schema_problem(board: dict[str, Any]) -> str | None:
    """The first way `board` breaks the leaderboard JSON Schema, as one line naming the key; None if none."""
    from jsonschema.exceptions import best_match

    error = best_match(_board_validator().iter_errors(board))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    message = " ".join(error.message.split())
    if len(message) > 200:
        message = message[:197] + "..."
    return f"does not match the leaderboard schema at {where}: {message}"


@lru_cache(maxsize=1)
def _board_validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# --- run status ------------------------------------------------------------------------------------------
def mark_status(run_dir: Path, state: str, reason: str | None = None) -> None:
    """Write the status atomically (a reader never sees half a file). Where that cannot be done (a full
    disk has no block for a new file), the record is rewritten in place over the blocks the previous one
    holds (records are padded to STATUS_BYTES for this); failing that too, a warning on stderr."""
    assert state in STATES, state
    record = json.dumps({"state": state, "reason": reason, "pid": os.getpid(), "host": socket.gethostname(),
                         "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    record = record.ljust(STATUS_BYTES - 1) + "\n"
    path = Path(run_dir) / STATUS_FILE
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}.tmp")
    try:
        tmp.write_text(record)
        os.replace(tmp, path)
        return
    except OSError as e:
        tmp.unlink(missing_ok=True)
        error = e
    if path.is_file() and path.stat().st_size == len(record):
        try:
            with open(path, "r+") as fh:
                fh.write(record)
            return
        except OSError as e:
            error = e
    print(f"bench: warning: could not write {path} ({error.strerror or error})", file=sys.stderr)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as e:
        return {"state": "unreadable", "reason": f"{path}: {e}"}


def describe_status(status: dict[str, Any]) -> str:
    """'failed: REASON', 'killed (...)', 'still running (...)' or 'finished'."""
    state = status.get("state")
    if state == "running":
        if status.get("host") == socket.gethostname() and not _alive(status.get("pid")):
            return f"killed or crashed (its process {status.get('pid')} is gone, status last written {status.get('updated')})"
        return f"still running, or killed on another machine (pid {status.get('pid')} on {status.get('host')})"
    if state in ("failed", "unreadable"):
        return f"{state}: {status.get('reason')}"
    return str(state)


def require_finished(run_dir: Path) -> None:
    status = read_status(run_dir)
    if status is not None and status.get("state") != "finished":
        raise BenchError(f"{run_dir} is not a finished run ({describe_status(status)}); re-run it, or leave it out")


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
