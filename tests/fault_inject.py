"""Run `bench` with a kill -9 at a chosen point of one stage, for the fault suite (tests/test_faults.py).

    python -m tests.fault_inject STAGE K COUNTS_JSON -- [bench arguments]

Each stage's work is a set of calls (below). Entering and leaving each call are its fault points,
numbered from 1 in the order they happen; at point K of STAGE the process sends itself SIGKILL, as
`kill -9` from outside would, with no chance to clean up. K = 0 kills nothing and writes how many
points each stage had to COUNTS_JSON, so that a test can draw K at random within a stage."""
from __future__ import annotations

import atexit
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path


def stage_calls():
    """(stage, owner, attribute): the calls that do each stage's work."""
    import bench.stages.clean
    import bench.stages.consensus
    import bench.stages.facts
    import bench.runner.pipeline
    import bench.stages.score
    import bench.summarizers.extractive

    return [("cleaning", bench.stages.clean.Cleaner, "clean"),
            ("facts", bench.stages.facts.ClauseFacts, "extract"),
            ("consensus", bench.stages.consensus.ConsensusBuilder, "build"),
            ("summarizing", bench.summarizers.extractive.LeadK, "summarize"),
            ("summarizing", bench.summarizers.extractive.RandomK, "summarize"),
            ("scoring", bench.stages.score.Scorer, "score"),
            ("writing", bench.runner.pipeline, "write_board"),
            ("writing", bench.runner.pipeline, "write_html")]


def install(stage: str, kill_at: int, counts_path: Path) -> None:
    points: Counter[str] = Counter()
    extractions = Counter()

    def point(name: str) -> None:
        points[name] += 1
        if name == stage and points[name] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(name, fn):
        def wrapper(*args, **kwargs):
            extractions[name] += 1
            # the facts stage is the first extraction (fresh cache); later ones parse summaries (scoring)
            this = "scoring" if name == "facts" and extractions[name] > 1 else name
            point(this)
            out = fn(*args, **kwargs)
            point(this)
            return out
        return wrapper

    for name, owner, attr in stage_calls():
        setattr(owner, attr, wrap(name, getattr(owner, attr)))
    if kill_at == 0:
        atexit.register(lambda: counts_path.write_text(json.dumps(dict(points))))


def main() -> None:
    stage, kill_at, counts = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    assert sys.argv[4] == "--"
    install(stage, kill_at, counts)
    from bench.cli import main as bench_main

    sys.argv = ["bench", *sys.argv[5:]]
    bench_main()


if __name__ == "__main__":
    main()
