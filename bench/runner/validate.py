"""One validation pass over a composed run config, before any work is done or any model loads.

Checked: values that are required and unset (`???`), interpolations, the type of every key (plain
sections by the pydantic models below, `_target_` nodes by their class's constructor annotations),
ranges and choices (`RULES`, by parameter name, for bench's own classes), and paths: the results and
cache folders must be writable, dataset files and local model folders must exist.

Every problem is one line naming the key, the value and what is allowed; `validate_config` raises
them all at once as a `ConfigError`."""
from __future__ import annotations

import importlib
import inspect
import os
import tempfile
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from bench.matchers.base import ALIGNMENTS
from bench.types import BenchError

HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")
PROBABILITY = Field(gt=0, lt=1, description="a number in (0, 1), both ends excluded")
UNIT_INTERVAL = Field(ge=0, le=1, description="a number in [0, 1]")
COUNT = Field(ge=1, description="a whole number >= 1")
NON_NEGATIVE = Field(ge=0, description="a number >= 0")
POSITIVE = Field(gt=0, description="a number > 0")
RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")

# Ranges and choices by constructor parameter name; applied to classes under `bench.` only.
RULES: dict[str, Any] = {
    "align_threshold": UNIT_INTERVAL, "support_threshold": UNIT_INTERVAL, "entity_weight": UNIT_INTERVAL,
    "copy_threshold": UNIT_INTERVAL, "min_copied_share": UNIT_INTERVAL, "min_language_confidence": UNIT_INTERVAL,
    "min_support": COUNT, "max_postings": COUNT, "max_candidates": COUNT, "min_shared_words": NON_NEGATIVE,
    "passage_words": COUNT, "min_passages": COUNT, "min_words": NON_NEGATIVE, "max_chars": COUNT,
    "heading_max_words": NON_NEGATIVE, "min_content_words": NON_NEGATIVE,
    "k": COUNT, "batch_size": COUNT, "iterations": COUNT, "damping": PROBABILITY, "tolerance": POSITIVE,
    "max_input_tokens": COUNT, "max_new_tokens": COUNT, "max_tokens": COUNT, "max_length": COUNT,
    "concurrency": COUNT, "timeout_s": POSITIVE, "max_retries": NON_NEGATIVE, "backoff_s": NON_NEGATIVE,
    "temperature": NON_NEGATIVE,
    "alignment": Literal[ALIGNMENTS],
    "overflow": Literal["truncate", "chunk", "fail"],
    "architecture": Literal["auto", "causal", "seq2seq"],
}
INJECTED = {"name", "matcher"}  # passed by the pipeline at instantiation, never by the config


class ConfigError(BenchError):
    """One or more configuration problems, one per line."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class StatsSettings(_Strict):
    seed: int
    resamples: Annotated[int, COUNT]
    confidence: Annotated[float, PROBABILITY]
    alpha: Annotated[float, PROBABILITY]


class CacheSettings(_Strict):
    enabled: bool
    path: str | None
    per_shard: bool | Literal["auto"] = "auto"


class ScoreSettings(_Strict):
    rouge_use_stemmer: bool


class RunSettings(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")  # the sections are checked one by one
    results_dir: Annotated[str, Field(min_length=1)]
    run_name: Annotated[str, Field(min_length=1)]
    html: bool = True
    html_clusters: Annotated[int, COUNT] | None = None


SECTIONS: dict[str, type[BaseModel]] = {"stats": StatsSettings, "cache": CacheSettings, "score": ScoreSettings}
TARGETS = ("dataset", "clean", "facts", "matcher", "consensus")


def validate_config(cfg: DictConfig, check_results_dir: bool = True) -> None:
    """Raise a ConfigError listing every problem, one line each; return quietly when there is none.
    `check_results_dir=False` when the caller writes elsewhere (`pipeline.run`'s own out_dir)."""
    errors = list(config_errors(cfg, check_results_dir))
    if errors:
        raise ConfigError("\n".join(errors))


def config_errors(cfg: DictConfig, check_results_dir: bool = True) -> Iterator[str]:
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra")]
    if missing:
        yield from (f"config {k}: a value is required and none is set; add {k}=VALUE to the command line"
                    for k in missing)
        return
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        yield f"config: cannot resolve a value: {str(e).splitlines()[0]}"
        return
    resolved.pop("hydra", None)
    yield from _model_errors(RunSettings, resolved, "")
    for section, model in SECTIONS.items():
        if section in resolved:
            yield from _model_errors(model, resolved[section], f"{section}.")
    for section in TARGETS:
        if section in resolved:
            yield from _target_errors(resolved[section], section)
    summarizers = resolved.get("summarizer") or {}
    if not isinstance(summarizers, dict):
        yield f"config summarizer={summarizers!r}: must be a mapping of summarizer name to settings"
        return
    for name, node in summarizers.items():
        yield from _target_errors(node, f"summarizer.{name}")
    yield from _path_errors(resolved, check_results_dir)


def _model_errors(model: type[BaseModel], values: Any, prefix: str) -> Iterator[str]:
    try:
        model.model_validate(values)
    except ValidationError as e:
        for err in e.errors():
            where = prefix + ".".join(str(x) for x in err["loc"])
            if err["type"] == "extra_forbidden":
                known = ", ".join(k for k in model.model_fields if k not in INJECTED)
                yield f"config {where}: unknown key; the keys here are {known}"
            elif err["type"] == "missing":
                yield f"config {where}: a value is required and none is set"
            else:
                yield f"config {where}={err['input']!r}: {_allowed(err, model)}"


def _allowed(err: dict[str, Any], model: type[BaseModel]) -> str:
    """pydantic's message, said as what is allowed ('must be ...')."""
    field = model.model_fields.get(str(err["loc"][0]))
    if err["type"] in RANGE_ERRORS and field is not None and field.description:
        return f"must be {field.description}"
    if err["type"] == "literal_error":
        return f"must be one of {err['ctx']['expected']}"
    msg = err["msg"]
    for pydantic_says, we_say in (("Input should ", "must "), ("String should ", "must ")):
        if msg.startswith(pydantic_says):
            return we_say + msg[len(pydantic_says):]
    return msg


def _target_errors(node: Any, where: str) -> Iterator[str]:
    if not isinstance(node, dict) or "_target_" not in node:
        yield f"config {where}: must be a settings node with a _target_ class, got {node!r}"
        return
    target = node["_target_"]
    try:
        module_name, _, attr = target.rpartition(".")
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        yield f"config {where}._target_={target!r}: cannot be imported ({type(e).__name__}: {e})"
        return
    model = _constructor_model(cls)
    values = {k: v for k, v in node.items() if k not in HYDRA_KEYS}
    yield from _model_errors(model, values, f"{where}.")
    if cls.__module__.startswith("bench.") and isinstance(values.get("model"), str):
        from bench.summarizers.llm import model_location_error

        problem = model_location_error(values["model"])
        if problem:
            yield f"config {where}.model={values['model']!r}: {problem}"


def _constructor_model(cls: type) -> type[BaseModel]:
    """A strict pydantic model of the keyword arguments `cls(...)` accepts, following the constructors
    of its base classes through `**kwargs`; bench's own classes also get `RULES`."""
    fields: dict[str, Any] = {}
    open_kwargs = True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # noqa: BLE001 - an unresolvable annotation: that class's types go unchecked
            hints = {}
        params = list(inspect.signature(init).parameters.values())[1:]
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in fields:
                continue
            hint = hints.get(p.name, Any)
            rule = RULES.get(p.name) if cls.__module__.startswith("bench.") else None
            if rule is not None:
                hint = rule if typing.get_origin(rule) is Literal else Annotated[hint, rule]
            if p.name in INJECTED:
                hint, default = Any, None
            else:
                default = ... if p.default is p.empty else p.default
            fields[p.name] = (_checkable(hint), default)
        open_kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
        if not open_kwargs:
            break
    extra = "allow" if open_kwargs else "forbid"
    return create_model(f"{cls.__name__}Settings", __config__=ConfigDict(strict=True, extra=extra,
                                                                         arbitrary_types_allowed=True), **fields)


def _checkable(hint: Any) -> Any:
    """Hints pydantic cannot check (arbitrary classes such as Matcher) are left unchecked."""
    try:
        TypeAdapter(hint)
        return hint
    except Exception:  # noqa: BLE001 - pydantic raises several schema errors for such types
        return Any


def _path_errors(resolved: Mapping[str, Any], check_results_dir: bool) -> Iterator[str]:
    results_dir = Path(resolved["results_dir"])
    results_problem = writable_dir_error(results_dir) if check_results_dir else None
    if results_problem:
        yield f"config results_dir={resolved['results_dir']!r}: {results_problem}"
    cache = resolved.get("cache") or {}
    inside_failed_results = results_problem and Path(cache.get("path") or "").is_relative_to(results_dir)
    if cache.get("enabled") and cache.get("path") and not inside_failed_results:  # one cause, one line
        path = Path(cache["path"])
        problem = ("is a folder, not a file" if path.is_dir() else
                   writable_dir_error(path.parent) or (None if not path.exists() or os.access(path, os.R_OK | os.W_OK)
                                                       else "cannot be read and written"))
        if problem:
            yield f"config cache.path={cache['path']!r}: {problem} (or set cache.enabled=false)"
    dataset = resolved.get("dataset") or {}
    target, path = dataset.get("_target_"), dataset.get("path")
    if target == "bench.stages.data.FolderDataset" and path is not None and not Path(path).expanduser().is_dir():
        yield f"config dataset.path={path!r}: must be an existing folder of .txt files (or of such folders)"
    if target == "bench.stages.data.JsonlDataset" and not Path(path).expanduser().is_file():
        yield f"config dataset.path={path!r}: must be an existing JSON Lines file"


def writable_dir_error(path: Path) -> str | None:
    """Why `path` cannot be used as an output folder, or None. Creates nothing: tries a real write in
    `path` or, when it does not exist yet, in its nearest existing parent (permission bits say nothing
    for root, nor about read-only file systems)."""
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot be created: {existing} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        return f"cannot be {'written' if existing == path.absolute() else 'created'} ({e.strerror or e}: {existing})"
    return None
