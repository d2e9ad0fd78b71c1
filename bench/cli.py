"""Command line. `bench [hydra overrides]` runs a benchmark; `bench leaderboard RUN_DIR...` merges runs.

This module only parses arguments and calls `bench.pipeline.run` or `bench.report`."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from bench.types import BenchError

SUBCOMMANDS = ("leaderboard",)


def config_dir() -> str:
    """The repository's configs/ in a source checkout; the packaged copy in a wheel install."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "configs", here / "configs"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise SystemExit("bench: cannot find its configs/ folder")


def compose(overrides: list[str] | None = None):
    """The run config, composed outside a Hydra app (for scripts and tests)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides or []))


def _fail(err: BenchError) -> None:
    print(f"bench: error: {err}", file=sys.stderr)
    raise SystemExit(2)


def _hydra_main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
    def task(cfg: DictConfig) -> None:
        from bench.pipeline import run

        out_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            board = run(cfg, out_dir)
        except BenchError as e:
            _fail(e)
        print((out_dir / "leaderboard.md").read_text())
        print(f"results: {out_dir}")
        if HydraConfig.get().mode.name == "RUN" and board["skipped"]:
            logging.getLogger("bench").info("%d item(s) skipped; see %s", len(board["skipped"]),
                                            out_dir / "skipped.jsonl")

    task()


def leaderboard_command(argv: list[str]) -> None:
    from bench.report import load_board, merge, write_board

    parser = argparse.ArgumentParser(prog="bench leaderboard", description="Merge run directories into one leaderboard.")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories holding leaderboard.json")
    parser.add_argument("--out", type=Path, default=None, help="write leaderboard.json/.md here")
    args = parser.parse_args(argv)
    try:
        board = merge([(str(r), load_board(r)) for r in args.runs])
    except BenchError as e:
        _fail(e)
    from bench.report import to_markdown

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_board(board, args.out)
    print(to_markdown(board))


def main(argv: list[str] | None = None) -> Any:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "leaderboard":
        return leaderboard_command(argv[1:])
    sys.argv = [sys.argv[0], *argv]
    return _hydra_main()


class MergeSweepLeaderboard:
    """Hydra callback: after a multirun, merge the jobs' leaderboards into the sweep directory."""

    def __init__(self, **_: Any):
        pass

    def on_multirun_start(self, config, **kwargs) -> None: ...
    def on_run_start(self, config, **kwargs) -> None: ...
    def on_run_end(self, config, **kwargs) -> None: ...
    def on_job_start(self, config, **kwargs) -> None: ...
    def on_job_end(self, config, job_return, **kwargs) -> None: ...
    def on_compile_config(self, config, **kwargs) -> None: ...

    def on_multirun_end(self, config, **kwargs) -> None:
        from bench.report import load_board, merge, write_board

        sweep = Path(config.hydra.sweep.dir)
        jobs = sorted((p for p in sweep.iterdir() if (p / "leaderboard.json").is_file()), key=lambda p: p.name)
        if not jobs:
            print(f"bench: no finished job under {sweep}; nothing to merge", file=sys.stderr)
            return
        try:
            board = merge([(p.name, load_board(p)) for p in jobs])
        except BenchError as e:
            print(f"bench: error: could not merge the sweep: {e}", file=sys.stderr)
            return
        md = write_board(board, sweep)
        print("\n=== combined leaderboard of the sweep ===\n" + md + f"results: {sweep}")
