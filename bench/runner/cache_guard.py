"""A corrupted cache file is detected before a run uses it, set aside (renamed, never deleted) and
rebuilt from scratch, with a warning. Corruption: not an SQLite file, or SQLite's own quick check
fails (torn pages after a crash of the machine, a disk error, a stray write)."""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("bench")
SQLITE_HEADER = b"SQLite format 3\x00"


def corruption(path: Path) -> str | None:
    """Why the cache file at `path` is unusable, or None (also when it does not exist or is empty)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as fh:
        if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return "not an SQLite database"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            return None  # in use by another run: not corruption
        return str(e)
    except sqlite3.DatabaseError as e:
        return str(e)
    return None if verdict == "ok" else "integrity check: " + " ".join(str(verdict).split())


def set_aside_if_corrupt(path: str | Path | None) -> Path | None:
    """Rename a corrupted cache (and its -wal/-shm files) to `NAME.corrupt-TIMESTAMP`, so that the run builds
    a new one; return the new name, or None when the cache is fine."""
    if path is None:
        return None
    path = Path(path)
    problem = corruption(path)
    if problem is None:
        return None
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{aside}{suffix}"))
    log.warning("the cache %s is corrupted (%s); set aside as %s, and a new cache is built (everything is "
                "recomputed once)", path, problem, aside)
    return aside
