"""Stage 1, data: load clusters of articles from a folder, a JSONL file or any `datasets` source."""
from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.types import Article, BenchError, Cluster, Skip

REQUIRED_FIELDS = ("cluster_id", "article_id", "source", "title", "text")
OPTIONAL_FIELDS = ("date", "url")
DEMO_PATH = Path(__file__).resolve().parent.parent / "demo"


class Dataset(ABC):
    """A source of clusters. Constructors only store settings; `load` reads."""

    name: str = "dataset"
    skipped: tuple[Skip, ...] = ()  # files that `load` could not read, with the reason (set by `load`)

    @abstractmethod
    def load(self) -> list[Cluster]: ...

    def identity(self) -> dict[str, Any]:
        return {"name": self.name}


def rows_to_clusters(rows: Iterable[Mapping[str, Any]], origin: str) -> list[Cluster]:
    """Group standard rows (REQUIRED_FIELDS + OPTIONAL_FIELDS) into clusters, keeping first-seen order."""
    grouped: dict[str, list[Article]] = {}
    for n, row in enumerate(rows, start=1):
        missing = [f for f in REQUIRED_FIELDS if row.get(f) is None]
        if missing:
            raise BenchError(f"{origin}: record {n} lacks field(s) {', '.join(missing)}")
        text = row["text"]
        if not isinstance(text, str):
            raise BenchError(f"{origin}: record {n}: 'text' must be a string, got {type(text).__name__}")
        article = Article(
            id=str(row["article_id"]), source=str(row["source"]), title=str(row["title"]), text=text,
            date=None if row.get("date") is None else str(row["date"]),
            url=None if row.get("url") is None else str(row["url"]),
        )
        articles = grouped.setdefault(str(row["cluster_id"]), [])
        if any(a.id == article.id for a in articles):
            raise BenchError(f"{origin}: record {n}: duplicate article_id {article.id!r} in cluster {row['cluster_id']!r}")
        articles.append(article)
    if not grouped:
        raise BenchError(f"{origin}: no articles found")
    return [Cluster(id=cid, articles=tuple(arts)) for cid, arts in grouped.items()]


class FolderDataset(Dataset):
    """A folder of `.txt` files is one cluster; a folder of such folders is many.

    An optional `metadata.jsonl` in a cluster folder gives per-file `source`, `title`, `date`, `url`
    (keyed by `file`). Without it, the source is the file name without extension and the title is empty.
    """

    name = "folder"

    def __init__(self, path: str | None = None, encoding: str = "utf-8"):
        self.path = path
        self.encoding = encoding

    def root(self) -> Path:
        return DEMO_PATH if self.path is None else Path(self.path).expanduser()

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.root())}

    def load(self) -> list[Cluster]:
        root = self.root()
        if not root.is_dir():
            raise BenchError(f"dataset folder {root} does not exist or is not a folder")
        top_files = sorted(root.glob("*.txt"))
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*.txt")))
        if top_files and subdirs:
            raise BenchError(f"{root} holds both .txt files and cluster folders; use one layout")
        cluster_dirs = [root] if top_files else subdirs
        if not cluster_dirs:
            raise BenchError(f"dataset folder {root} holds no .txt files (nor folders of them)")
        rows: list[dict[str, Any]] = []
        skipped = []
        for cdir in cluster_dirs:
            meta = self._metadata(cdir)
            for f in sorted(cdir.glob("*.txt")):
                text, problem = self._read(f)
                if problem:
                    skipped.append(Skip("data", cdir.name, f"{f.name}: {problem}", f.stem))
                    continue
                m = meta.get(f.name, {})
                rows.append({
                    "cluster_id": cdir.name, "article_id": f.stem, "source": m.get("source", f.stem),
                    "title": m.get("title", ""), "text": text, "date": m.get("date"), "url": m.get("url"),
                })
        self.skipped = tuple(skipped)
        return rows_to_clusters(rows, str(root))

    def _read(self, f: Path) -> tuple[str, str | None]:
        """The file's text, or why it is not text: NUL bytes (binary) or bytes invalid in the encoding."""
        data = f.read_bytes()
        nul = data.find(b"\0")
        if nul >= 0:
            return "", f"binary file, not text (NUL byte at offset {nul})"
        try:
            return data.decode(self.encoding), None
        except UnicodeDecodeError as e:
            return "", f"not valid {self.encoding} text ({e.reason} at byte {e.start})"

    def _metadata(self, cdir: Path) -> dict[str, dict[str, Any]]:
        path = cdir / "metadata.jsonl"
        if not path.exists():
            return {}
        return {rec["file"]: rec for rec in read_jsonl(path) if "file" in rec}


def read_jsonl(path: Path, keep: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """Parse JSON Lines strictly, naming the first bad line. `keep`: a cheap test of a raw line; lines it
    rejects are not parsed."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip() or (keep is not None and not keep(line)):
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise BenchError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(rec, dict):
                raise BenchError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            records.append(rec)
    return records


class JsonlDataset(Dataset):
    """One article per line with the fields cluster_id, article_id, source, title, text (date, url optional).
    `summaries`: an optional JSONL file of {cluster_id, summary}, the clusters' human summaries."""

    name = "jsonl"

    def __init__(self, path: str, columns: Mapping[str, str] | None = None, summaries: str | None = None):
        self.path = path
        self.columns = dict(columns or {})
        self.summaries = summaries

    def identity(self) -> dict[str, Any]:
        out = {"name": self.name, "path": str(self.path), "columns": self.columns}
        if self.summaries is not None:  # absent otherwise: identities of runs without summaries are unchanged
            out["summaries"] = str(self.summaries)
        return out

    def load(self) -> list[Cluster]:
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise BenchError(f"JSONL file {path} does not exist")
        records = read_jsonl(path)  # strict: a bad line is an error naming the line
        if not records:
            raise BenchError(f"{path}: no records")
        clusters = rows_to_clusters(_renamed(records, self.columns), str(path))
        if self.summaries is None:
            return clusters
        return with_summaries(clusters, read_summaries(Path(self.summaries).expanduser()))


def _renamed(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, str]) -> Iterable[dict[str, Any]]:
    """Map dataset columns onto the standard fields: `columns` is {standard_field: source_column}."""
    for row in rows:
        out = dict(row)
        for field_name, column in columns.items():
            if column not in row:
                raise BenchError(f"column {column!r} (mapped to {field_name!r}) is not in the data; "
                                 f"columns are {sorted(row)}")
            out[field_name] = row[column]
        yield out


class HFDataset(Dataset):
    """Any `datasets` source: a builder name or hub id (`path`), optional `name`, `data_files`, `split`,
    and a column mapping {standard_field: source_column}. Hub ids need a network; local files do not."""

    name = "hf"

    def __init__(self, path: str, split: str = "train", config_name: str | None = None,
                 data_files: Any = None, columns: Mapping[str, str] | None = None, revision: str | None = None):
        self.path, self.split, self.config_name = path, split, config_name
        self.data_files, self.revision = data_files, revision
        self.columns = dict(columns or {})

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "split": self.split, "config_name": self.config_name,
                "data_files": self.data_files, "columns": self.columns, "revision": self.revision}

    def load(self) -> list[Cluster]:
        import datasets

        data_files = self.data_files
        if data_files is not None and not isinstance(data_files, (str, list, dict)):
            data_files = json.loads(json.dumps(data_files))  # OmegaConf containers -> plain
        try:
            ds = datasets.load_dataset(self.path, self.config_name, data_files=data_files, split=self.split,
                                       revision=self.revision)
        except Exception as e:  # datasets raises many types; all mean "could not load"
            raise BenchError(f"could not load dataset {self.path!r} (split {self.split!r}): {e}") from None
        return rows_to_clusters(_renamed(ds, self.columns), self.path)


# ---------------------------------------------------------------------------------------------------------
# Human summaries, and real multi-document corpora (Multi-News, WCEP) through `datasets`
# ---------------------------------------------------------------------------------------------------------

def read_summaries(path: Path) -> dict[str, str]:
    """A JSONL file of {cluster_id, summary}: one human summary per cluster."""
    if not path.is_file():
        raise BenchError(f"summaries file {path} does not exist")
    out: dict[str, str] = {}
    for n, rec in enumerate(read_jsonl(path), start=1):
        cid, summary = rec.get("cluster_id"), rec.get("summary")
        if cid is None or not isinstance(summary, str):
            raise BenchError(f"{path}: record {n} needs a cluster_id and a string summary")
        if str(cid) in out:
            raise BenchError(f"{path}: record {n}: a second summary for cluster {cid!r}")
        out[str(cid)] = summary
    return out


def with_summaries(clusters: list[Cluster], summaries: Mapping[str, str]) -> list[Cluster]:
    """Attach human summaries by cluster id. A summary for a cluster that is not in the data is an error
    (most likely the wrong file); a cluster without one simply has none. Blank summaries count as none."""
    ids = {c.id for c in clusters}
    unknown = sorted(set(summaries) - ids)
    if unknown:
        raise BenchError(f"human summaries given for {len(unknown)} cluster(s) not in the data, e.g. "
                         f"{', '.join(map(repr, unknown[:3]))}")
    return [Cluster(c.id, c.articles, clean_summary(summaries.get(c.id))) for c in clusters]


def clean_summary(summary: Any) -> str | None:
    """Multi-News summaries start with "– " (and raw files carry NEWLINE_CHAR for newlines): both go."""
    if summary is None:
        return None
    if not isinstance(summary, str):
        raise BenchError(f"a human summary must be a string, got {type(summary).__name__}")
    text = summary.replace("NEWLINE_CHAR", "\n").strip()
    text = re.sub(r"^[–—-]\s+", "", text).strip()
    return text or None


def _load_rows(path: str, config_name: str | None, data_files: Any, split: str, revision: str | None):
    """Rows from any `datasets` source: a hub id (needs a network) or a builder (json, csv, parquet) with files."""
    import datasets

    if data_files is not None and not isinstance(data_files, (str, list, dict)):
        data_files = json.loads(json.dumps(data_files))  # OmegaConf containers -> plain
    try:
        return datasets.load_dataset(path, config_name, data_files=data_files, split=split, revision=revision)
    except Exception as e:  # datasets raises many types; all mean "could not load"
        raise BenchError(f"could not load dataset {path!r} (split {split!r}): {e}") from None


def _column(row: Mapping[str, Any], column: str | None, what: str, n: int, origin: str, required: bool = True) -> Any:
    if column is None or column not in row:
        if required:
            raise BenchError(f"{origin}: row {n} has no {what} column {column!r}; columns are {sorted(row)}")
        return None
    return row[column]


def _unique_clusters(clusters: list[Cluster], origin: str) -> list[Cluster]:
    seen: set[str] = set()
    for c in clusters:
        if c.id in seen:
            raise BenchError(f"{origin}: cluster id {c.id!r} occurs twice")
        seen.add(c.id)
        ids = [a.id for a in c.articles]
        if len(set(ids)) != len(ids):
            raise BenchError(f"{origin}: cluster {c.id!r} has duplicate article ids")
    if not clusters:
        raise BenchError(f"{origin}: no rows")
    return clusters


class _CorpusDataset(Dataset):
    """Shared settings of the one-row-per-cluster corpora: a `datasets` source and column names."""

    COLUMNS: dict[str, str | None] = {}

    def __init__(self, path: str, split: str | None = None, config_name: str | None = None, data_files: Any = None,
                 revision: str | None = None, columns: Mapping[str, Any] | None = None):
        # no split given: "train" for local data_files (the name `datasets` gives them), "test" for a hub id
        split = split or ("train" if data_files is not None else "test")
        self.path, self.split, self.config_name = path, split, config_name
        self.data_files, self.revision = data_files, revision
        unknown = set(columns or {}) - set(self.COLUMNS)
        if unknown:
            raise BenchError(f"{self.name}: unknown column setting(s) {sorted(unknown)}; known: {sorted(self.COLUMNS)}")
        self.columns = {**self.COLUMNS, **dict(columns or {})}
        self.dropped_empty = 0  # empty source documents dropped by the last load

    def identity(self) -> dict[str, Any]:
        data_files = self.data_files
        if data_files is not None and not isinstance(data_files, (str, list, dict)):
            data_files = json.loads(json.dumps(data_files))
        return {"name": self.name, "path": self.path, "split": self.split, "config_name": self.config_name,
                "data_files": data_files, "revision": self.revision, "columns": self.columns}

    def origin(self) -> str:
        return f"{self.path}" + (f" ({self.data_files})" if self.data_files else "") + f" [{self.split}]"

    def cluster_id(self, row: Mapping[str, Any], index: int) -> str:
        """The row's id column when the data has one, else `<split>-<row index>` (stable for a fixed split)."""
        value = row.get(self.columns["id"]) if self.columns.get("id") else None
        return str(value) if value is not None and str(value) != "" else f"{self.split}-{index}"

    def load(self) -> list[Cluster]:
        self.dropped_empty = 0
        origin = self.origin()
        clusters = [self.cluster(row, i, origin)
                    for i, row in enumerate(_load_rows(self.path, self.config_name, self.data_files, self.split,
                                                       self.revision))]
        if self.dropped_empty:
            import logging

            logging.getLogger("bench").info("%s: dropped %d empty source document(s)", origin, self.dropped_empty)
        return _unique_clusters(clusters, origin)

    @abstractmethod
    def cluster(self, row: Mapping[str, Any], index: int, origin: str) -> Cluster: ...


class MultiNewsDataset(_CorpusDataset):
    """The `multi_news` layout: one row per cluster; `document` holds the source articles joined by `|||||`,
    `summary` the human multi-document summary. From the hub (`path: multi_news`, needs a network) or from
    local files in that layout (`path: json|parquet|csv` with `data_files`).

    Cluster id: the `id` column if there is one, else `<split>-<row index>`. Article k (its position between
    separators, counted before empty pieces are dropped) gets id `<cluster>-<k>` and source `doc<k>`: Multi-News
    does not name outlets, so every document counts as its own source. Titles are empty. `NEWLINE_CHAR`
    (the raw release's newline token) becomes a newline; the summary loses its leading "– "."""

    name = "multi_news"
    COLUMNS = {"document": "document", "summary": "summary", "id": "id"}

    def __init__(self, path: str = "multi_news", split: str | None = None, config_name: str | None = None,
                 data_files: Any = None, revision: str | None = None, columns: Mapping[str, Any] | None = None,
                 separator: str = "|||||"):
        super().__init__(path, split, config_name, data_files, revision, columns)
        if not separator:
            raise BenchError("multi_news: separator must not be empty")
        self.separator = separator

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "separator": self.separator}

    def cluster(self, row: Mapping[str, Any], index: int, origin: str) -> Cluster:
        cid = self.cluster_id(row, index)
        document = _column(row, self.columns["document"], "document", index, origin)
        if not isinstance(document, str):
            raise BenchError(f"{origin}: row {index}: the document column must be a string, "
                             f"got {type(document).__name__}")
        articles = []
        for k, piece in enumerate(document.split(self.separator)):
            text = piece.replace("NEWLINE_CHAR", "\n").strip()
            if not text:
                self.dropped_empty += 1
                continue
            articles.append(Article(id=f"{cid}-{k}", source=f"doc{k}", title="", text=text))
        summary = _column(row, self.columns["summary"], "summary", index, origin, required=False)
        return Cluster(cid, tuple(articles), clean_summary(summary))


class WcepDataset(_CorpusDataset):
    """The WCEP layout: one row per event with a list of articles and a human `summary`. Each article is a
    dict (text, and optionally title, url, source or domain, date, id) or a plain string (its text).

    Columns are set with `columns` (articles, summary, id) and per-article field names with `fields`.
    Cluster id: the id column if present, else `<split>-<row index>`. Article id: its own id field if present,
    else `<cluster>-<k>`. Source: the source field, else the domain field, else the URL's host (without
    `www.`), else `doc<k>`. Articles with empty text are dropped."""

    name = "wcep"
    COLUMNS = {"articles": "articles", "summary": "summary", "id": "id"}
    FIELDS = {"text": "text", "title": "title", "url": "url", "source": "source", "domain": "domain",
              "date": "date", "id": "id"}

    def __init__(self, path: str, split: str | None = None, config_name: str | None = None, data_files: Any = None,
                 revision: str | None = None, columns: Mapping[str, Any] | None = None,
                 fields: Mapping[str, Any] | None = None):
        super().__init__(path, split, config_name, data_files, revision, columns)
        unknown = set(fields or {}) - set(self.FIELDS)
        if unknown:
            raise BenchError(f"wcep: unknown article field setting(s) {sorted(unknown)}; known: {sorted(self.FIELDS)}")
        self.fields = {**self.FIELDS, **dict(fields or {})}

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "fields": self.fields}

    def cluster(self, row: Mapping[str, Any], index: int, origin: str) -> Cluster:
        cid = self.cluster_id(row, index)
        items = _column(row, self.columns["articles"], "articles", index, origin)
        if not isinstance(items, (list, tuple)):
            raise BenchError(f"{origin}: row {index}: the articles column must be a list, got {type(items).__name__}")
        articles = []
        for k, item in enumerate(items):
            article = self._article(item, cid, k, f"{origin}: row {index}, article {k}")
            if article is None:
                self.dropped_empty += 1
            else:
                articles.append(article)
        summary = _column(row, self.columns["summary"], "summary", index, origin, required=False)
        return Cluster(cid, tuple(articles), clean_summary(summary))

    def _article(self, item: Any, cid: str, k: int, where: str) -> Article | None:
        if isinstance(item, str):
            item = {self.fields["text"]: item}
        if not isinstance(item, Mapping):
            raise BenchError(f"{where}: an article must be a dict or a string, got {type(item).__name__}")
        f = self.fields

        def get(name: str) -> str | None:
            value = item.get(f[name]) if f.get(name) else None
            return None if value is None or str(value).strip() == "" else str(value).strip()

        text = item.get(f["text"])
        if text is not None and not isinstance(text, str):
            raise BenchError(f"{where}: text must be a string, got {type(text).__name__}")
        if text is None or not text.strip():
            return None
        url = get("url")
        host = urlparse(url).hostname if url else None
        if host and host.startswith("www."):
            host = host[4:]
        source = get("source") or get("domain") or host or f"doc{k}"
        return Article(id=get("id") or f"{cid}-{k}", source=source, title=get("title") or "", text=text.strip(),
                       date=get("date"), url=url)
