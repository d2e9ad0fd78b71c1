"""Command line. `bench [hydra overrides]` runs a benchmark; `bench leaderboard RUN_DIR...` merges runs;
`bench compare BASE NEW` compares two runs and gates on regressions; `bench report RUN_DIR` writes the HTML.

This module only parses arguments and calls `bench.pipeline.run` or `bench.report`."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from bench.types import BenchError

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
    from bench.report import load_run, merge, to_markdown, write_merged

    parser = argparse.ArgumentParser(prog="bench leaderboard", description="Merge run directories into one leaderboard.")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories holding leaderboard.json")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the merged run directory here (leaderboard, scores, summaries, report)")
    args = parser.parse_args(argv)
    try:
        board, scores = merge([(str(r), *load_run(r)) for r in args.runs])
        if args.out:
            write_merged(board, scores, args.runs, args.out)
    except BenchError as e:
        _fail(e)
    print(to_markdown(board))
    if args.out:
        print(f"results: {args.out}")


def compare_command(argv: list[str]) -> None:
    from bench.compare import compare, write
    from bench.score import MAIN_METRIC

    parser = argparse.ArgumentParser(
        prog="bench compare", description="Compare two runs (paired, per article). Exit 1 when the gate metric "
        "regresses significantly by more than the tolerance, or when failures grow; 2 on bad input.")
    parser.add_argument("base", type=Path, help="the baseline run (or merge) directory")
    parser.add_argument("new", type=Path, help="the new run (or merge) directory")
    parser.add_argument("--metric", default=MAIN_METRIC, help=f"gate metric (default {MAIN_METRIC})")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="largest drop of the gate metric that never fails the gate (default 0.01)")
    parser.add_argument("--alpha", type=float, default=None, help="significance level (default: the run's stats.alpha)")
    parser.add_argument("--md", type=Path, default=None, help="also write the Markdown here (e.g. $GITHUB_STEP_SUMMARY)")
    parser.add_argument("--json", type=Path, default=None, help="write the full result as JSON here")
    parser.add_argument("--max-listed", type=int, default=20, help="worse articles listed per summarizer")
    args = parser.parse_args(argv)
    try:
        result = compare(args.base, args.new, args.metric, args.tolerance, args.alpha, args.max_listed)
    except BenchError as e:
        _fail(e)
    print(write(result, args.md, args.json))
    raise SystemExit(1 if result["regressed"] else 0)


def report_command(argv: list[str]) -> None:
    from bench.html_report import write_html

    parser = argparse.ArgumentParser(prog="bench report", description="Write the self-contained HTML report of a "
                                     "run or merge directory.")
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: RUN/report.html")
    args = parser.parse_args(argv)
    try:
        path = write_html(args.run, args.out)
    except BenchError as e:
        _fail(e)
    print(f"report: {path}")


def meta_eval_command(argv: list[str]) -> None:
    from hydra.errors import HydraException
    from hydra.utils import instantiate

    from bench import metaeval

    parser = argparse.ArgumentParser(prog="bench meta-eval", description=metaeval.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a directory in the REALSumm layout")
    parser.add_argument("--matcher", default=None, help="a matcher config (default: the run default)")
    parser.add_argument("--settings", default="human,auto", help="human, auto, or both (default human,auto)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds by document (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="write JSON here (and Markdown beside it)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. matcher.support_threshold=0.7")
    args = parser.parse_args(argv)
    settings = tuple(x.strip() for x in args.settings.split(",") if x.strip())
    if set(settings) - {"human", "auto"} or not settings:
        _fail(BenchError(f"--settings takes human and/or auto, not {args.settings!r}"))
    try:
        cfg = compose(([f"matcher={args.matcher}"] if args.matcher else []) + args.overrides)
        matcher, extractor = instantiate(cfg.matcher), instantiate(cfg.facts)
        result = metaeval.meta_evaluate(args.data, matcher, extractor, settings, args.folds)
    except BenchError as e:
        _fail(e)
    except HydraException as e:
        _fail(BenchError(str(e).splitlines()[0]))
    print(metaeval.write(result, args.out))


def cache_command(argv: list[str]) -> None:
    from bench.cache import Cache

    parser = argparse.ArgumentParser(prog="bench cache", description="Cache maintenance.")
    sub = parser.add_subparsers(dest="action", required=True)
    merge_parser = sub.add_parser("merge", help="fold cache files (e.g. one per shard) into one, so that a later "
                                  "run with cache.path=INTO recomputes nothing they hold")
    merge_parser.add_argument("into", type=Path, help="the destination cache (created when missing)")
    merge_parser.add_argument("sources", nargs="+", type=Path, help="cache files to fold in")
    args = parser.parse_args(argv)
    cache = Cache(args.into)
    try:
        added = cache.merge_from(args.sources)
    except BenchError as e:
        _fail(e)
    finally:
        cache.close()
    for src, n in added.items():
        print(f"{src}: {n} new entries")
    print(f"cache: {args.into}")


def main(argv: list[str] | None = None) -> Any:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"leaderboard": leaderboard_command, "compare": compare_command, "report": report_command,
                "meta-eval": meta_eval_command, "cache": cache_command}
    if argv and argv[0] in commands:
        return commands[argv[0]](argv[1:])
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
        from bench.report import load_run, merge, write_merged

        sweep = Path(config.hydra.sweep.dir)
        jobs = sorted((p for p in sweep.iterdir() if (p / "leaderboard.json").is_file()), key=lambda p: p.name)
        if not jobs:
            print(f"bench: no finished job under {sweep}; nothing to merge", file=sys.stderr)
            return
        try:
            board, scores = merge([(str(p), *load_run(p)) for p in jobs])
            md = write_merged(board, scores, jobs, sweep)
        except BenchError as e:
            print(f"bench: error: could not merge the sweep: {e}", file=sys.stderr)
            return
        print("\n=== combined leaderboard of the sweep ===\n" + md + f"results: {sweep}")
