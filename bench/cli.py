"""Command line. `bench [hydra overrides]` runs a benchmark; `bench leaderboard RUN_DIR...` merges runs;
`bench compare BASE NEW` compares two runs and gates on regressions; `bench report RUN_DIR` writes the HTML;
`bench validity RUN_DIR...` correlates consensus recall with ROUGE against human summaries across summarizers.

This module only parses arguments and calls `bench.runner.pipeline.run` or `bench.reporting`. Errors caused by
input, configuration or the environment are one line on stderr and exit 2; a closed pipe exits quietly."""
from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from bench.types import BenchError

log = logging.getLogger("bench")
COMMANDS = {
    "leaderboard": "merge run directories into one leaderboard",
    "compare": "compare two runs (paired, per article) and gate on regressions",
    "report": "write the self-contained HTML report of a run",
    "meta-eval": "how well a matcher agrees with human judges (REALSumm layout)",
    "validity": "does consensus recall rank summarizers like ROUGE against human summaries? (cluster data)",
    "cache": "merge shard caches into one (`bench cache merge INTO FROM...`)",
}

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


def _fail(err: BenchError | str) -> None:
    """One line per problem on stderr; exit 2. (A run logs its error to cli.log before calling this.)"""
    for line in str(err).splitlines() or [""]:
        print(f"bench: error: {line}", file=sys.stderr)
    raise SystemExit(2)


def _print(text: str) -> None:
    """print(), where a reader that went away (`bench ... | head`) ends the output, not the command."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def environment_error(e: OSError | sqlite3.Error) -> str:
    """An OSError or SQLite error as one line: what failed, on which file, and the system's reason."""
    if isinstance(e, sqlite3.Error):
        while isinstance(e.__context__, sqlite3.Error):  # e.g. a failed ROLLBACK hides the 'disk is full'
            e = e.__context__
        return f"the cache database failed: {e} (free space, or set cache.path elsewhere or cache.enabled=false)"
    where = f"cannot read or write {e.filename}" if e.filename else "a read or write of results or cache failed"
    hint = " (the disk is full)" if e.errno == errno.ENOSPC else ""
    return f"{where}: {e.strerror or e}{hint}"


def help_text() -> str:
    groups = sorted(p for p in Path(config_dir()).iterdir() if p.is_dir())
    usage = {"[OVERRIDE ...]": "run a benchmark; overrides are Hydra's KEY=VALUE or GROUP=OPTION",
             "-m OVERRIDE ...": "a sweep: one job folder per combination, then one merged leaderboard",
             **{f"{name} ...": what for name, what in COMMANDS.items()}, "--version": "print bench's version"}
    lines = [f"{'usage:' if i == 0 else '':<6} bench {args:<18} {what}" for i, (args, what) in enumerate(usage.items())]
    lines += ["",
              "Each subcommand has its own -h. Config groups (GROUP=OPTION):"]
    lines += [f"  {g.name}: {', '.join(sorted(p.stem for p in g.glob('*.yaml')))}" for g in groups]
    lines += ["", "Examples:", "  bench summarizer=[lead3,textrank] dataset=folder dataset.path=../shared/data/seed-cluster",
              "  bench -m summarizer=lead3,textrank", "  bench --cfg job            print the composed config",
              "  bench --hydra-help         Hydra's own options",
              "", "Configs are validated before any work: each problem is one line, exit 2."]
    return "\n".join(lines)


MULTIRUN_FLAGS = ("-m", "--multirun")
_hydra_started = False  # set when Hydra starts a run or sweep (its callbacks); an error before that is the command line's


def multirun_flag_first(argv: list[str]) -> list[str]:
    """`-m` moved in front of the overrides: Hydra's parser takes it only before them, and the sweep
    flag is easily appended to a run's command line (`bench dataset=jsonl ... -m shard=range(2)`)."""
    flags = [a for a in argv if a in MULTIRUN_FLAGS]
    return flags + [a for a in argv if a not in MULTIRUN_FLAGS]


def _hydra_main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    OmegaConf.register_new_resolver("bench_job_dir", job_dir_name, replace=True)

    from bench.reporting.records import mark_status, read_board_markdown

    @hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
    def task(cfg: DictConfig) -> None:
        from bench.runner.pipeline import run

        out_dir = Path(HydraConfig.get().runtime.output_dir)
        mark_status(out_dir, "running")
        try:
            board = run(cfg, out_dir)
        except KeyboardInterrupt:
            mark_status(out_dir, "failed", "interrupted (Ctrl-C)")
            log.error("run interrupted (Ctrl-C)")
            print("bench: interrupted; finished summaries are cached, a re-run resumes", file=sys.stderr)
            raise SystemExit(130) from None
        except (BenchError, OSError, sqlite3.Error) as e:  # input, configuration or environment: one line
            reason = str(e) if isinstance(e, BenchError) else environment_error(e)
            mark_status(out_dir, "failed", reason)
            log.error("run failed: %s", reason.replace("\n", "; "))
            if HydraConfig.get().mode.name == "MULTIRUN":  # the other jobs go on; the sweep fails at its end
                print(f"bench: error: job {out_dir.name}: {reason}", file=sys.stderr)
                return
            _fail(reason)
        except Exception as e:  # a bug: marked, and logged and raised with its traceback
            mark_status(out_dir, "failed", f"{type(e).__name__}: {e}")
            log.exception("run failed")
            raise
        mark_status(out_dir, "finished")
        _print(read_board_markdown(out_dir))
        _print(f"results: {out_dir}")
        if HydraConfig.get().mode.name == "RUN" and board["skipped"]:
            logging.getLogger("bench").info("%d item(s) skipped; see %s", len(board["skipped"]),
                                            out_dir / "skipped.jsonl")

    task()


def leaderboard_command(argv: list[str]) -> None:
    from bench.reporting.html import DRILL_DOWN_CLUSTERS, write_html
    from bench.reporting.leaderboard import merge, to_markdown
    from bench.reporting.records import load_run, write_merged

    parser = argparse.ArgumentParser(prog="bench leaderboard", description="Merge run directories into one leaderboard.")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories holding leaderboard.json")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the merged run directory here (leaderboard, scores, summaries, report)")
    args = parser.parse_args(argv)
    try:
        _require_finished(args.runs)
        board, scores = merge([(str(r), *load_run(r)) for r in args.runs])
        if args.out:
            write_merged(board, scores, args.runs, args.out, to_markdown(board))
            write_html(args.out, max_clusters=DRILL_DOWN_CLUSTERS)
    except BenchError as e:
        _fail(e)
    except OSError as e:  # e.g. --out on a full or read-only disk
        _fail(environment_error(e))
    _print(to_markdown(board))
    if args.out:
        _print(f"results: {args.out}")


def compare_command(argv: list[str]) -> None:
    from bench.metrics import MAIN_METRIC
    from bench.reporting.compare import compare, write

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
        _require_finished([args.base, args.new])
        result = compare(args.base, args.new, args.metric, args.tolerance, args.alpha, args.max_listed)
    except BenchError as e:
        _fail(e)
    except OSError as e:  # e.g. --out on a full or read-only disk
        _fail(environment_error(e))
    _print(write(result, args.md, args.json))
    raise SystemExit(1 if result["regressed"] else 0)


def _cluster_count(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a positive whole number or 'all', not {text!r}")
    return int(text)


def report_command(argv: list[str]) -> None:
    from bench.reporting.html import DRILL_DOWN_CLUSTERS, write_html

    parser = argparse.ArgumentParser(prog="bench report", description="Write the self-contained HTML report of a "
                                     "run or merge directory.")
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: RUN/report.html")
    parser.add_argument("--clusters", type=_cluster_count, default=DRILL_DOWN_CLUSTERS,
                        metavar="N|all", help="clusters with a per-article drill-down, the first N by id "
                        f"(default {DRILL_DOWN_CLUSTERS}; all: every one)")
    args = parser.parse_args(argv)
    try:
        _require_finished([args.run])
        path = write_html(args.run, args.out, max_clusters=args.clusters)
    except BenchError as e:
        _fail(e)
    except OSError as e:  # e.g. --out on a full or read-only disk
        _fail(environment_error(e))
    _print(f"report: {path}")


def meta_eval_command(argv: list[str]) -> None:
    from hydra.errors import HydraException
    from hydra.utils import instantiate

    from bench.reporting import metaeval

    parser = argparse.ArgumentParser(prog="bench meta-eval", description=metaeval.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a directory in the REALSumm layout")
    parser.add_argument("--matcher", default=None, help="a matcher config (default: the run default)")
    parser.add_argument("--settings", default="human,auto", help="human, auto, or both (default human,auto)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds by document (default 5)")
    parser.add_argument("--params", choices=metaeval.PARAMS, default="refit",
                        help="refit: a fitted (combined) matcher is refitted inside the cross-validation (default); "
                             "shipped: evaluated with its configured parameters as they are, nothing refitted")
    parser.add_argument("--out", type=Path, default=None, help="write JSON here (and Markdown beside it)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. matcher.support_threshold=0.7")
    args = parser.parse_args(argv)
    settings = tuple(x.strip() for x in args.settings.split(",") if x.strip())
    if set(settings) - {"human", "auto"} or not settings:
        _fail(BenchError(f"--settings takes human and/or auto, not {args.settings!r}"))
    try:
        cfg = compose(([f"matcher={args.matcher}"] if args.matcher else []) + args.overrides)
        matcher, extractor = instantiate(cfg.matcher), instantiate(cfg.facts)
        result = metaeval.meta_evaluate(args.data, matcher, extractor, settings, args.folds, args.params)
    except BenchError as e:
        _fail(e)
    except OSError as e:  # e.g. --out on a full or read-only disk
        _fail(environment_error(e))
    except HydraException as e:
        _fail(BenchError(str(e).splitlines()[0]))
    _print(metaeval.write(result, args.out))


def _require_finished(run_dirs) -> None:
    from bench.reporting.records import require_finished

    for run_dir in run_dirs:
        require_finished(run_dir)


def validity_command(argv: list[str]) -> None:
    from bench.metrics import MAIN_METRIC
    from bench.reporting import validity

    parser = argparse.ArgumentParser(prog="bench validity", description=validity.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path,
                        help="a run (or merge) directory; several are merged as `bench leaderboard` does")
    parser.add_argument("--metric", default=MAIN_METRIC, help=f"the reference-free metric (default {MAIN_METRIC})")
    parser.add_argument("--against", default=validity.DEFAULT_AGAINST,
                        help=f"the metric against the human summary (default {validity.DEFAULT_AGAINST})")
    parser.add_argument("--summarizers", default=None,
                        help="comma-separated summarizers to correlate across (default: all in the run)")
    parser.add_argument("--json", type=Path, default=None, help="write the full result as JSON here")
    args = parser.parse_args(argv)
    try:
        _require_finished(args.runs)
        systems, scores = validity.load(args.runs)
        if args.summarizers:
            wanted = [x.strip() for x in args.summarizers.split(",") if x.strip()]
            unknown = [x for x in wanted if x not in systems]
            if unknown:
                raise BenchError(f"summarizer(s) {', '.join(unknown)} not in the run (it has {', '.join(systems)})")
            systems = wanted
        result = validity.validity(scores, systems, args.metric, args.against)
        text = validity.write(result, args.json)
    except BenchError as e:
        _fail(e)
    except OSError as e:  # e.g. --json on a full or read-only disk
        _fail(environment_error(e))
    _print(text)


def cache_command(argv: list[str]) -> None:
    from bench.cache import Cache

    parser = argparse.ArgumentParser(prog="bench cache", description="Cache maintenance.")
    sub = parser.add_subparsers(dest="action", required=True)
    merge_parser = sub.add_parser("merge", help="fold cache files (e.g. one per shard) into one, so that a later "
                                  "run with cache.path=INTO recomputes nothing they hold")
    merge_parser.add_argument("into", type=Path, help="the destination cache (created when missing)")
    merge_parser.add_argument("sources", nargs="+", type=Path, help="cache files to fold in")
    args = parser.parse_args(argv)
    import sqlite3

    try:
        cache = Cache(args.into)
        try:
            added = cache.merge_from(args.sources)
        finally:
            cache.close()
    except BenchError as e:
        _fail(e)
    except (OSError, sqlite3.Error) as e:  # an unwritable destination, a full disk, a file that is not SQLite
        _fail(environment_error(e) if isinstance(e, OSError) else BenchError(f"cache merge: {e}"))
    for src, n in added.items():
        print(f"{src}: {n} new entries")
    print(f"cache: {args.into}")


def main(argv: list[str] | None = None) -> Any:
    argv = sys.argv[1:] if argv is None else argv
    # a log line that cannot be written (cli.log on a full disk) must not print a traceback; the failure
    # itself reaches the user as the one `bench: error:` line
    logging.raiseExceptions = False
    commands = {"leaderboard": leaderboard_command, "compare": compare_command, "report": report_command,
                "meta-eval": meta_eval_command, "validity": validity_command,
                "cache": cache_command}
    try:
        if argv and argv[0] in commands:
            return commands[argv[0]](argv[1:])
        if argv and argv[0] in ("-h", "--help"):
            return _print(help_text())
        if argv and argv[0] in ("-V", "--version"):
            from bench.runner.signature import bench_version

            return _print(f"bench {bench_version()}")
        sys.argv = [sys.argv[0], *multirun_flag_first(argv)]
        try:
            return _hydra_main()
        except ValueError as e:  # Hydra's own check of its flags (e.g. --cfg with -m), before any run or sweep
            if _hydra_started:
                raise
            _fail(str(e))
    except BrokenPipeError:  # output cut short by the reader (e.g. `| head`): not an error of ours
        _silence_stdout()
        raise SystemExit(0) from None
    except KeyboardInterrupt:  # Ctrl-C before a run started, or in a reporting command: nothing to keep
        print("bench: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def job_dir_name(num: Any, override_dirname: str) -> str:
    """A sweep job's folder: its number, then its own overrides, made safe as one path component."""
    safe = re.sub(r"[^A-Za-z0-9._=,+\-\[\]]+", "_", str(override_dirname)).strip("_")
    return f"{num}_{safe[:120]}" if safe else str(num)


def _mark_hydra_started() -> None:
    global _hydra_started
    _hydra_started = True


class ValidateBeforeRun(Callback):
    """Hydra callback: the one validation pass, before Hydra creates any output folder. A single run
    is validated whole; a sweep's results folder is checked once here and each job in `run`."""

    def on_run_start(self, config, **kwargs) -> None:
        _mark_hydra_started()
        from omegaconf import OmegaConf

        from bench.runner.validate import ConfigError, validate_config

        task_cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        try:
            validate_config(task_cfg)
        except ConfigError as e:
            _fail(e)

    def on_multirun_start(self, config, **kwargs) -> None:
        _mark_hydra_started()
        from bench.runner.validate import writable_dir_error

        problem = writable_dir_error(Path(config.results_dir))
        if problem:
            _fail(f"config results_dir={config.results_dir!r}: {problem}")


@contextmanager
def _sweep_statistics(config):
    """The merged board's statistics, through the cache file the shards shared (`cache.path`, when it exists),
    so that a warm sweep does not redo its bootstrap; computed afresh otherwise (no new file is made)."""
    from bench.reporting.leaderboard import statistics
    from bench.runner.caching import CachedStatistics, cache_path, open_cache

    whole = {"index": 0, "count": 1}
    path = cache_path(config.cache, whole)
    if path is None or not path.is_file():
        yield statistics
        return
    cache = open_cache(config.cache, whole)
    try:
        yield CachedStatistics(cache).compute
    finally:
        cache.close()


class MergeSweepLeaderboard(Callback):
    """Hydra callback: after a multirun, merge the jobs' leaderboards into the sweep directory."""

    def on_multirun_end(self, config, **kwargs) -> None:
        from bench.reporting.html import DRILL_DOWN_CLUSTERS, write_html
        from bench.reporting.leaderboard import merge, to_markdown
        from bench.reporting.records import describe_status, has_board, load_run, read_status, write_merged

        sweep = Path(config.hydra.sweep.dir)

        jobs, unfinished = [], []
        for p in sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: p.name):
            status = read_status(p)
            if status is not None and status.get("state") != "finished":
                unfinished.append(f"{p.name} ({describe_status(status)})")
            elif has_board(p):
                jobs.append(p)
        if not jobs:
            _fail(f"no finished job under {sweep}; nothing to merge"
                  + (f" (not finished: {'; '.join(unfinished)})" if unfinished else ""))
        try:
            with _sweep_statistics(config) as statistics_of:
                board, scores = merge([(str(p), *load_run(p)) for p in jobs], statistics_of)
            md = to_markdown(board)
            write_merged(board, scores, jobs, sweep, md)
            if config.get("html", True):
                write_html(sweep, max_clusters=config.get("html_clusters", DRILL_DOWN_CLUSTERS), board=board)
        except BenchError as e:  # e.g. an incomplete set of shards: the sweep fails, its job folders stay
            _fail(f"could not merge the sweep: {e}")
        print("\n=== combined leaderboard of the sweep ===\n" + md + f"results: {sweep}")
        if unfinished:  # the finished jobs are merged above; the sweep still fails
            _fail(f"{len(unfinished)} job(s) of the sweep did not finish and are left out of the merge: "
                  + "; ".join(unfinished))
