"""Every config file instantiates (as in lightning-hydra-template), without loading any model."""
from pathlib import Path

import pytest
from hydra.utils import instantiate

from bench.cli import config_dir
from bench.stages.data import Dataset
from bench.stages.facts import FactExtractor
from bench.matchers.base import Matcher
from bench.runner.parts import build_parts
from bench.stages.summarize import Summarizer
from tests.conftest import compose_cfg

GROUPS = {"dataset": Dataset, "facts": FactExtractor, "matcher": Matcher}
REQUIRED = {"folder": ["dataset.path=x"], "jsonl": ["dataset.path=x"], "hf": ["dataset.path=json"],
            "wcep": ["dataset.path=json"]}


def options(group):
    return sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_group_option_instantiates(group, option):
    cfg = compose_cfg(f"{group}={option}", *REQUIRED.get(option, []))
    assert isinstance(instantiate(cfg[group]), GROUPS[group])


@pytest.mark.parametrize("option", options("summarizer"))
def test_every_summarizer_config_builds(option):
    cfg = compose_cfg(f"summarizer={option}")
    parts = build_parts(cfg)
    assert [s.name for s in parts["summarizers"]] == [option]
    assert all(isinstance(s, Summarizer) for s in parts["summarizers"])


def test_default_selects_the_baselines_and_smollm2():
    cfg = compose_cfg()
    assert list(cfg.summarizer) == ["lead3", "random3", "textrank", "smollm2", "oracle"]
