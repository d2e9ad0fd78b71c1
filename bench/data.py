"""Stage 1, data: load clusters of articles from a folder, a JSONL file or any `datasets` source."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.types import Article, BenchError, Cluster, Skip

REQUIRED_FIELDS = ("cluster_id", "article_id", "source", "title", "text")
OPTIONAL_FIELDS = ("date", "url")
DEMO_PATH = Path(__file__).parent / "demo"


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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse JSON Lines strictly, naming the first bad line."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
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
    """One article per line with the fields cluster_id, article_id, source, title, text (date, url optional)."""

    name = "jsonl"

    def __init__(self, path: str, columns: Mapping[str, str] | None = None):
        self.path = path
        self.columns = dict(columns or {})

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "columns": self.columns}

    def load(self) -> list[Cluster]:
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise BenchError(f"JSONL file {path} does not exist")
        records = read_jsonl(path)  # strict: a bad line is an error naming the line
        if not records:
            raise BenchError(f"{path}: no records")
        return rows_to_clusters(_renamed(records, self.columns), str(path))


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
