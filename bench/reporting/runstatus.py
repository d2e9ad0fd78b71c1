"""The state of a run directory, in `status.json`: running, finished, or failed with the reason.

A run marks itself `running` before any work and `finished` after its last file is written; a run
that fails marks `failed` with the error. A run killed with `kill -9` stays `running`, with a pid
that no longer exists: `describe` says so. `leaderboard`, `compare` and `report` refuse a run
directory that is not finished (directories without a status, from older versions, are accepted)."""
from __future__ import annotations

import json
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.types import BenchError

STATUS_FILE = "status.json"
STATES = ("running", "finished", "failed")
STATUS_BYTES = 4096  # one block: a later status overwrites it in place if the disk fills up


def mark(run_dir: Path, state: str, reason: str | None = None) -> None:
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


def read(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as e:
        return {"state": "unreadable", "reason": f"{path}: {e}"}


def describe(status: dict[str, Any]) -> str:
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
    status = read(run_dir)
    if status is not None and status.get("state") != "finished":
        raise BenchError(f"{run_dir} is not a finished run ({describe(status)}); re-run it, or leave it out")


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
