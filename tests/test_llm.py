"""Model-backed summarizers with tiny random models, the OpenAI-compatible backend against a real local
server, and the summary cache (hits, resume after kill -9, concurrent runs)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from hydra.utils import instantiate

from bench.cache import Cache
from bench.runner.caching import CachedSummarizer
from bench.summarizers.llm import OpenAIChatSummarizer, TransformersSummarizer
from tests import tiny_models
from tests.conftest import REPO, read_jsonl, run_cli
from tests.openai_server import ChatServer

GEN = {"max_new_tokens": 10, "min_new_tokens": 3}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {kind: str(tiny_models.build(kind, root / kind)) for kind in ("llama", "bart", "t5")}


@pytest.fixture(scope="session")
def docs(demo_docs):
    by_cluster, _ = demo_docs
    return [d for ds, _ in by_cluster.values() for d in ds]


def test_tiny_causal_batched_equals_one_at_a_time(tiny, docs):
    batched = TransformersSummarizer("t", model=tiny["llama"], batch_size=4, generation=GEN).summarize(docs)
    single = TransformersSummarizer("t", model=tiny["llama"], batch_size=1, generation=GEN).summarize(docs)
    assert [s.text for s in batched] == [s.text for s in single]
    assert all(s.ok and s.text for s in batched)
    assert all(3 <= s.meta["generated_tokens"] <= 10 for s in batched)


@pytest.mark.parametrize("kind,prefix", [("bart", ""), ("t5", "summarize: ")])
def test_tiny_seq2seq(tiny, docs, kind, prefix):
    s = TransformersSummarizer(kind, model=tiny[kind], input_prefix=prefix, batch_size=3,
                               generation={**GEN, "suppress_tokens": [0]})  # a random model may emit only padding
    assert s.load()[2] is True  # detected as encoder-decoder
    out = s.summarize(docs[:4])
    assert all(o.ok and o.text.strip() for o in out)
    assert all(o.meta["generated_tokens"] >= 3 for o in out)


def test_input_length_truncate_chunk_fail_recorded(tiny, docs):
    long_doc = max(docs, key=lambda d: len(d.text))
    common = dict(model=tiny["llama"], generation=GEN, max_input_tokens=120)
    t = TransformersSummarizer("t", overflow="truncate", **common).summarize([long_doc])[0]
    assert t.ok and t.meta["truncated"] and t.meta["kept_tokens"] < t.meta["input_tokens"]
    c = TransformersSummarizer("c", overflow="chunk", **common).summarize([long_doc])[0]
    assert c.ok and c.meta["chunks"] > 1 and not c.meta["truncated"]
    f = TransformersSummarizer("f", overflow="fail", **common).summarize([long_doc])[0]
    assert not f.ok and "context overflow" in f.error


def identity(name: str, target: str = "bench.summarizers.llm.TransformersSummarizer", **settings):
    """A summarizer's identity as a run computes it: from its config node (and its input files)."""
    node = {"_target_": target, **settings}
    return CachedSummarizer(instantiate(node, name=name), node, Cache(None)).identity


def test_identity_covers_weights_prompt_and_generation(tiny):
    base = identity("a", model=tiny["llama"], generation=GEN)
    assert base == identity("b", model=tiny["llama"], generation=GEN)  # name is not identity
    assert "model.safetensors" in base["files"]
    assert base != identity("a", model=tiny["llama"], generation={**GEN, "max_new_tokens": 11})
    assert base != identity("a", model=tiny["llama"], generation=GEN, prompt="TL;DR {article}")
    hub = identity("h", model="org/not-local", revision="abc123")
    assert (hub["model"], hub["revision"], "files" in hub) == ("org/not-local", "abc123", False)
    sampled = TransformersSummarizer("s", model=tiny["llama"], generation={"do_sample": True})
    assert not sampled.cacheable
    assert TransformersSummarizer("s", model=tiny["llama"], generation={"do_sample": True}, seed=1).cacheable


def test_seeded_sampling_is_reproducible(tiny, docs):
    gen = {**GEN, "do_sample": True, "temperature": 1.0}
    a = TransformersSummarizer("s", model=tiny["llama"], generation=gen, seed=7, batch_size=4).summarize(docs[:3])
    b = TransformersSummarizer("s", model=tiny["llama"], generation=gen, seed=7, batch_size=1).summarize(docs[:3])
    assert [x.text for x in a] == [x.text for x in b]


def test_openai_backend_against_local_server(tiny, docs, monkeypatch):
    monkeypatch.setenv("BENCH_TEST_KEY", "sk-test-secret")
    with ChatServer(tiny["llama"], fail_first=2) as srv:
        s = OpenAIChatSummarizer("api", model="tiny", base_url=srv.base_url, api_key_env="BENCH_TEST_KEY",
                                 max_tokens=8, concurrency=3, backoff_s=0.01)
        out = s.summarize(docs[:5])
        local = TransformersSummarizer("local", model=tiny["llama"], generation={"max_new_tokens": 8,
                                                                                  "min_new_tokens": 2})
        expected = [local._generate_batch_rendered([local.load()[0].apply_chat_template(
            s.messages(d.text), add_generation_prompt=True, tokenize=False)])[0][0].strip() for d in docs[:5]]
    assert [o.text for o in out] == expected  # the server answered from the transformers backend
    assert all(o.ok and o.meta["generated_tokens"] >= 2 and o.meta["prompt_tokens"] > 0 and o.meta["latency_s"] > 0
               for o in out)
    assert sum(o.meta["attempts"] - 1 for o in out) == 2  # the two 429s were retried
    assert set(srv.auth_headers) == {"Bearer sk-test-secret"}
    assert "sk-test-secret" not in json.dumps(identity("api", "bench.summarizers.llm.OpenAIChatSummarizer", model="tiny",
                                                       base_url=srv.base_url, api_key_env="BENCH_TEST_KEY"))


def test_openai_backend_records_failures(docs):
    s = OpenAIChatSummarizer("api", model="x", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01,
                             timeout_s=2)
    out = s.summarize(docs[:2])
    assert all(not o.ok and o.meta["attempts"] == 2 for o in out)
    assert all("Connect" in o.error for o in out)


def _summary_count(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM entries WHERE namespace='summary'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _rows(run_dir):
    board = json.loads((run_dir / "leaderboard.json").read_text())
    return [{k: r[k] for k in ("summarizer", "means", "n_defined", "n_scored", "n_failed")} for r in board["rows"]]


def _run_dir(results):
    return next(p.parent for p in results.rglob("leaderboard.json"))


def test_cli_openai_resume_after_kill(tiny, tmp_path):
    """kill -9 mid-run, re-run: nothing finished is recomputed, and the leaderboard equals an uninterrupted run's."""
    with ChatServer(tiny["llama"], delay_s=0.4) as srv:
        common = ["summarizer=openai", f"summarizer.openai.base_url={srv.base_url}", "summarizer.openai.model=tiny",
                  "summarizer.openai.max_tokens=8", "summarizer.openai.batch_size=1", "summarizer.openai.concurrency=1"]
        db = tmp_path / "cache.sqlite"
        proc = subprocess.Popen([sys.executable, "-m", "bench", *common, f"cache.path={db}",
                                 f"results_dir={tmp_path / 'killed'}"], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while _summary_count(db) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = _summary_count(db)
        assert 3 <= done_before < 9
        served_before = len(srv.requests)

        resumed = run_cli(*common, f"cache.path={db}", f"results_dir={tmp_path / 'resumed'}")
        assert resumed.returncode == 0, resumed.stderr
        assert len(srv.requests) - served_before == 9 - done_before  # only the unfinished ones
        board = json.loads((_run_dir(tmp_path / "resumed") / "leaderboard.json").read_text())
        assert board["throughput"]["openai"]["cached"] == done_before

        again = run_cli(*common, f"cache.path={db}", f"results_dir={tmp_path / 'again'}")
        assert again.returncode == 0 and len(srv.requests) - served_before == 9 - done_before  # recomputes nothing

        fresh = run_cli(*common, f"cache.path={tmp_path / 'other.sqlite'}", f"results_dir={tmp_path / 'fresh'}")
        assert fresh.returncode == 0, fresh.stderr
    assert _rows(_run_dir(tmp_path / "resumed")) == _rows(_run_dir(tmp_path / "fresh"))
    assert _rows(_run_dir(tmp_path / "again")) == _rows(_run_dir(tmp_path / "fresh"))
    for path in (tmp_path / "resumed").rglob("*"):
        if path.is_file():
            assert "OPENAI_API_KEY=" not in path.read_text(errors="ignore")


def test_missing_model_folder_fails_before_any_work(tmp_path):
    """A local model folder that does not exist is found by the validation pass (issue 11): one line,
    exit 2, in seconds, no run folder, instead of a full run whose summarizer fails every article."""
    proc = run_cli("summarizer=[lead3,hf_causal]", f"summarizer.hf_causal.model={tmp_path / 'missing-model'}",
                   f"results_dir={tmp_path / 'results'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"the model folder {tmp_path / 'missing-model'} does not exist" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_missing_model_package_fails_before_any_work(tmp_path):
    proc = run_cli("summarizer=[lead3,hf_causal]", "summarizer.hf_causal.model=pypackage:not_a_pkg",
                   f"results_dir={tmp_path / 'results'}")
    assert proc.returncode == 2 and "model package 'not_a_pkg' is not installed" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_summarizer_that_cannot_run_is_recorded_and_the_run_finishes(tmp_path):
    """Where only loading can tell (a hub id, a package removed after validation), the summarizer fails
    every article with the reason and the rest of the run is scored."""
    from bench.types import Article, Document

    node = {"_target_": "bench.summarizers.llm.TransformersSummarizer", "model": "pypackage:not_a_pkg"}
    s = CachedSummarizer(instantiate(node, name="gone"), node, Cache(None))
    assert s.identity and "not_a_pkg" in s.cannot_run
    docs = [Document("c", Article(f"a{i}", "outlet", "", "Some text."), "Some text.", (), ()) for i in range(3)]
    summaries = s.summarize(docs, [None] * 3)
    assert [sm.ok for sm in summaries] == [False] * 3 and all("not_a_pkg" in sm.error for sm in summaries)
    assert "not_a_pkg" in s.cannot_run  # later chunks fail at once too
    stats = s.throughput.report()
    assert stats["failed"] == 3 and stats["cached"] == 0


def test_cache_two_writers_no_lock_errors(tmp_path):
    db = tmp_path / "shared.sqlite"
    code = ("import sys; from bench.cache import Cache; c = Cache(sys.argv[1]); tag = sys.argv[2]\n"
            "for i in range(60):\n"
            "    c.put_many('x', [(f'{tag}-{i}-{j}', {'v': j}) for j in range(20)])\n"
            "    assert len(c.get_many('x', [f'{tag}-{i}-{j}' for j in range(20)])) == 20\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db), tag], cwd=REPO, stderr=subprocess.PIPE, text=True)
             for tag in ("a", "b", "c")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert Cache(db).get_many("x", [f"{t}-59-19" for t in "abc"]) == {f"{t}-59-19": {"v": 19} for t in "abc"}


def test_two_concurrent_runs_share_a_cache(tmp_path):
    args = ["summarizer=[lead3,textrank]", f"cache.path={tmp_path / 'cache.sqlite'}"]
    procs = [subprocess.Popen([sys.executable, "-m", "bench", *args, f"results_dir={tmp_path / str(i)}"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert _rows(_run_dir(tmp_path / "0")) == _rows(_run_dir(tmp_path / "1"))


def test_real_smollm2_in_the_default_run(demo_run):
    """The packaged SmolLM2 (GGUF through transformers) summarizes every demo article, and is scored."""
    out, board = demo_run
    rows = [r for r in read_jsonl(out / "summaries.jsonl") if r["summarizer"] == "smollm2"]
    assert len(rows) == 9 and all(r["error"] is None and len(r["text"].split()) >= 5 for r in rows)
    assert all(r["meta"]["generated_tokens"] > 0 and r["meta"]["input_tokens"] > 0 for r in rows)
    row = next(r for r in board["rows"] if r["summarizer"] == "smollm2")
    assert row["n_scored"] == 9 and row["n_failed"] == 0 and row["means"]["consensus_recall"] is not None
    t = board["throughput"]["smollm2"]
    assert t["generated_tokens"] > 0 and t["generated_tokens_per_second"] > 0


def test_vllm_backend_code_path_with_a_stand_in_engine(tiny, docs, monkeypatch):
    """No GPU or vLLM here: a stand-in `vllm` module checks what bench sends to the engine and reads back."""
    import types

    from transformers import AutoTokenizer

    from bench.summarizers.llm import VLLMSummarizer

    calls = {}

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class LLM:
        def __init__(self, model, revision=None, seed=0, **engine):
            calls["init"] = dict(model=model, revision=revision, seed=seed, **engine)
            self.tok = AutoTokenizer.from_pretrained(model)

        def get_tokenizer(self):
            return self.tok

        def chat(self, conversations, params, use_tqdm=False):
            calls.setdefault("batches", []).append(len(conversations))
            calls["params"] = params.kw
            out = types.SimpleNamespace
            return [out(outputs=[out(text=f" summary of: {c[-1]['content'][-20:]}", token_ids=[1, 2, 3])])
                    for c in conversations]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    s = VLLMSummarizer("v", model=tiny["llama"], max_input_tokens=120, batch_size=4, engine={"max_model_len": 512})
    out = s.summarize(docs)
    assert calls["init"]["max_model_len"] == 512 and calls["params"] == {"temperature": 0.0, "max_tokens": 128,
                                                                          "seed": None}
    assert calls["batches"] == [4, 4, 1]
    assert all(o.ok and o.text.startswith("summary of:") and o.meta["generated_tokens"] == 3 for o in out)
    assert any(o.meta["truncated"] for o in out) and s.cacheable
