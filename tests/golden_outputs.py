"""What a run's outputs must keep across refactors: leaderboard.json and scores.jsonl, without the parts
that change from run to run or with the code's layout (creation time, signature, timings, cache counters,
compute speeds, the summarizers' identities and the dataset's path)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VOLATILE_BOARD_KEYS = ("created", "signature", "timings", "runtime_seconds", "cache")
VOLATILE_THROUGHPUT_KEYS = ("compute_seconds", "articles_per_second", "generated_tokens_per_second")


def _steady_throughput(t: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in t.items() if k not in VOLATILE_THROUGHPUT_KEYS}


def steady_board(board: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in board.items() if k not in VOLATILE_BOARD_KEYS}
    identity = dict(board["dataset"].get("identity") or {})
    identity.pop("path", None)  # where the checkout stands
    out["dataset"] = {**board["dataset"], "identity": identity}
    out["throughput"] = {name: _steady_throughput(t) for name, t in board.get("throughput", {}).items()}
    # a row's identity names the summarizer's class and settings: provenance, like the signature
    out["rows"] = [{**{k: v for k, v in r.items() if k != "identity"},
                    **({"throughput": _steady_throughput(r["throughput"])} if "throughput" in r else {})}
                   for r in board["rows"]]
    return out


def steady_outputs(run_dir: Path) -> dict[str, Any]:
    board = json.loads((run_dir / "leaderboard.json").read_text())
    scores = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines() if line.strip()]
    return {"leaderboard": steady_board(board), "scores": scores}


GOLDEN = Path(__file__).resolve().parent / "golden"


def regenerate() -> None:
    """Rewrite tests/golden/ from the current code (only for a change meant to alter results)."""
    import tempfile

    from bench.runner.pipeline import run
    from tests.conftest import SEED, compose_cfg
    from tests.test_golden import seed_overrides

    for name, overrides in (("demo_run", lambda d: [f"cache.path={d}/cache.sqlite"]),
                            ("seed_run", lambda d: seed_overrides(str(SEED), d))):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            run(compose_cfg(*overrides(out)), out)
            (GOLDEN / f"{name}.json").write_text(
                json.dumps(steady_outputs(out), indent=1, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    regenerate()
