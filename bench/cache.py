"""A content-addressed cache shared by runs: one SQLite file, safe for concurrent runs.

Keys are sha256 digests of everything that determines a value (see `key`). Values are JSON
(summaries, which people may want to inspect) or pickles (derived stage artifacts such as parsed
text and consensus, keyed by the hash of bench's own source code so a code change never reuses them).
Writes commit per batch, so a run killed with `kill -9` keeps everything it finished."""
from __future__ import annotations

import hashlib
import inspect
import json
import pickle
import sys
import sqlite3
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.types import BenchError

BUSY_TIMEOUT_S = 120.0


_CANONICAL_JSON = dict(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, **_CANONICAL_JSON).encode()).hexdigest()


def streamed_key(*parts: Any) -> str:
    """`key(*parts)`, the same digest, hashed piece by piece: for parts that hold whole runs (every score row,
    every article), whose JSON would otherwise be built in memory at once."""
    return streamed_sha256(parts)


def streamed_sha256(obj: Any) -> str:
    """sha256 of the canonical JSON of `obj`, fed to the hash piece by piece (lists two levels deep)."""
    digest = hashlib.sha256()
    for piece in _json_pieces(obj, depth=2):
        digest.update(piece.encode())
    return digest.hexdigest()


def _json_pieces(obj: Any, depth: int):
    """The canonical JSON of `obj` in pieces: lists and tuples down to `depth` are written element by element."""
    if depth and isinstance(obj, (list, tuple)):
        yield "["
        for i, item in enumerate(obj):
            if i:
                yield ","
            yield from _json_pieces(item, depth - 1)
        yield "]"
    else:
        yield json.dumps(obj, **_CANONICAL_JSON)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=1)
def code_hash() -> str:
    """Hash of bench's Python sources: derived artifacts are only reused by the code that made them."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def source_modules(part: object) -> set[str]:
    """The bench modules that make a part's outputs: those defining its class, its bases and the classes of
    the bench parts it holds (an oracle's matcher), and the bench modules those import names from."""
    modules = {cls.__module__ for obj in (part, *vars(part).values()) for cls in type(obj).__mro__
               if _is_bench(cls.__module__)}
    for name in list(modules):
        for value in vars(sys.modules[name]).values():
            origin = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
            if isinstance(origin, str) and _is_bench(origin) and (inspect.ismodule(value) or callable(value)):
                modules.add(origin)
    return modules


def source_hash(part: object) -> str:
    """Hash of the source files of `source_modules(part)`. A summary is keyed by it, so it is reused until the
    code that makes it changes; editing the report or the scorer does not regenerate model summaries."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted({Path(inspect.getsourcefile(sys.modules[m])).resolve() for m in source_modules(part)}):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _is_bench(module: str) -> bool:
    return module == "bench" or module.startswith("bench.")


class Cache:
    """`get_many`/`put_many` over namespaces. `path=None` disables caching (every lookup misses)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._conn: sqlite3.Connection | None = None
        self.hits = self.misses = 0
        self._counted: set[tuple[str, str]] = set()  # each distinct key is counted once per run

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                self._retry(lambda: conn.execute(
                    "CREATE TABLE IF NOT EXISTS entries (namespace TEXT NOT NULL, key TEXT NOT NULL, "
                    "format TEXT NOT NULL, value BLOB NOT NULL, created REAL NOT NULL, PRIMARY KEY (namespace, key))"))
            except sqlite3.DatabaseError as e:
                raise BenchError(f"cannot open the cache {self.path}: {e} (delete it or set cache.path=null)") from e
            self._conn = conn
        return self._conn

    @staticmethod
    def _retry(fn, attempts: int = 20):
        """busy_timeout covers most contention; WAL checkpoints can still raise 'locked' at once."""
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or i == attempts - 1:
                    raise
                time.sleep(min(0.05 * 2 ** i, 2.0))

    def get_many(self, namespace: str, keys: Sequence[str], count: bool = True) -> dict[str, Any]:
        """Cached values by key. Hits and misses count distinct keys, each once per run, at its first
        lookup (a key asked for twice is one miss, not two); `count=False` leaves the counters alone."""
        keys = list(dict.fromkeys(keys))
        out = self._lookup(namespace, keys) if self.enabled and keys else {}
        if count:
            first = [k for k in keys if (namespace, k) not in self._counted]
            self._counted.update((namespace, k) for k in first)
            found = sum(1 for k in first if k in out)
            self.hits += found
            self.misses += len(first) - found
        return out

    def _lookup(self, namespace: str, keys: list[str]) -> dict[str, Any]:
        db, out = self._db(), {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self._retry(lambda: db.execute(
                f"SELECT key, format, value FROM entries WHERE namespace=? AND key IN ({','.join('?' * len(chunk))})",
                [namespace, *chunk]).fetchall())
            for k, fmt, value in rows:
                out[k] = json.loads(value) if fmt == "json" else pickle.loads(value)
        return out

    def put_many(self, namespace: str, items: Iterable[tuple[str, Any]], fmt: str = "json") -> None:
        if not self.enabled:
            return
        rows = [(namespace, k, fmt, json.dumps(v, ensure_ascii=False) if fmt == "json" else pickle.dumps(v), time.time())
                for k, v in items]
        if not rows:
            return
        db = self._db()

        def write():
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._retry(write)

    def merge_from(self, sources: Sequence[str | Path]) -> dict[str, int]:
        """Fold other cache files (e.g. one per shard) into this one; returns the entries each added.
        Entries are content-addressed, so equal keys hold equal values and the first one kept wins."""
        if not self.enabled:
            raise BenchError("cache merge needs a destination file")
        db, added = self._db(), {}
        for src in sources:
            src = Path(src)
            if not src.is_file():
                raise BenchError(f"cache {src} does not exist")
            if src.resolve() == self.path.resolve():
                raise BenchError(f"cache {src} is the destination itself")
            try:
                with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as probe:
                    probe.execute("SELECT namespace, key, format, value, created FROM entries LIMIT 1")
            except sqlite3.DatabaseError as e:
                raise BenchError(f"{src} is not a bench cache ({e})") from None
            before = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

            def fold():
                db.execute("ATTACH DATABASE ? AS source", (str(src),))
                try:
                    db.execute("BEGIN IMMEDIATE")
                    db.execute("INSERT OR IGNORE INTO entries SELECT namespace, key, format, value, created "
                               "FROM source.entries")
                    db.execute("COMMIT")
                finally:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    db.execute("DETACH DATABASE source")
            self._retry(fold)
            added[str(src)] = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] - before
        return added

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def file_digest(path: str | Path, cache: Cache | None = None) -> str:
    """sha256 of a (model) file, memoised in the cache by (path, size, mtime)."""
    p = Path(path).resolve()
    st = p.stat()
    memo_key = key("file", str(p), st.st_size, st.st_mtime_ns)
    if cache is not None:
        hit = cache.get_many("file-digest", [memo_key], count=False)
        if hit:
            return hit[memo_key]
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        cache.put_many("file-digest", [(memo_key, digest)])
    return digest
