"""Model-backed summarizers: transformers (causal LMs and seq2seq), vLLM, and OpenAI-compatible servers.

Constructors only store settings; models load on first use. A summary's cache key holds the summarizer's
config node (less its `run_settings`), bench's code hash and the content of its `input_files()`."""
from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.text.nlp import resolve_model_path
from bench.stages.summarize import Summarizer
from bench.types import BenchError, Document, Summary

log = logging.getLogger("bench")

DEFAULT_PROMPT = ("Summarize the following news article in at most three sentences. "
                  "State only facts that the article reports.\n\nArticle:\n{article}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class PromptedSummarizer(Summarizer):
    """Shared by the generative backends: the prompt and chat messages for one article."""

    def __init__(self, name: str, prompt: str = DEFAULT_PROMPT, system_prompt: str | None = None,
                 batch_size: int = 8):
        super().__init__(name)
        if "{article}" not in prompt:
            raise BenchError(f"summarizer '{name}': prompt must contain '{{article}}'")
        self.prompt, self.system_prompt, self.batch_size = prompt, system_prompt, batch_size

    seed: int | None = None
    temperature: float = 0.0

    @property
    def samples(self) -> bool:
        """Whether decoding samples: a temperature above 0 (the transformers backend: `do_sample`)."""
        return self.temperature != 0

    @property
    def cacheable(self) -> bool:
        """Greedy outputs, and sampled ones with a seed, are reproducible; unseeded samples are not cached."""
        return not self.samples or self.seed is not None

    def messages(self, article: str) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return msgs + [{"role": "user", "content": self.prompt.format(article=article)}]


def chunk_by_sentences(token_count, text: str, budget: int) -> list[str]:
    """Greedy packing of whole sentences into chunks of at most `budget` tokens (a sentence longer
    than the budget becomes its own chunk and is truncated by the caller)."""
    chunks: list[str] = []
    current: list[str] = []
    for sent in _SENTENCE_END.split(text.strip()):
        trial = " ".join(current + [sent])
        if current and token_count(trial) > budget:
            chunks.append(" ".join(current))
            current = [sent]
        else:
            current.append(sent)
    if current:
        chunks.append(" ".join(current))
    return chunks


class _TokenizedBackend(PromptedSummarizer):
    """Input-length handling shared by backends that own a tokenizer (transformers, vLLM).

    overflow: 'truncate' keeps the article's first tokens that fit; 'chunk' summarizes sentence-packed
    chunks and then the joined chunk summaries (map-reduce); 'fail' records the article as failed.
    What happened is recorded per article in the summary's meta (input_tokens, truncated, chunks)."""

    OVERFLOW = ("truncate", "chunk", "fail")

    def __init__(self, name: str, max_input_tokens: int = 1024, overflow: str = "truncate", **kw):
        super().__init__(name, **kw)
        if overflow not in self.OVERFLOW:
            raise BenchError(f"summarizer '{name}': overflow must be one of {self.OVERFLOW}, not {overflow!r}")
        self.max_input_tokens, self.overflow = max_input_tokens, overflow

    @abstractmethod
    def _count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def _truncate(self, text: str, n_tokens: int) -> str: ...

    @abstractmethod
    def _generate(self, articles: list[str]) -> list[tuple[str, int]]:
        """Article texts that fit -> (summary text, generated tokens)."""

    def _prompt_overhead(self) -> int:
        return self._count_tokens(self._render(""))

    def _render(self, article: str) -> str:
        return self.prompt.format(article=article)

    MAX_REDUCE_LEVELS = 4

    def summarize(self, docs: Sequence[Document], references=None) -> list[Summary]:
        overhead = self._prompt_overhead()
        budget = self.max_input_tokens - overhead
        if budget <= 0:
            raise BenchError(f"summarizer '{self.name}': the prompt alone uses {overhead} tokens, "
                             f"more than max_input_tokens={self.max_input_tokens}")
        out: list[Summary | None] = [None] * len(docs)
        metas: list[dict[str, Any]] = []
        ready: dict[int, str] = {}    # article index -> text for the final generation
        pending: dict[int, str] = {}  # chunk mode: texts still too long
        for i, d in enumerate(docs):
            n = self._count_tokens(d.text)
            metas.append({"input_tokens": n, "truncated": False, "chunks": 1, "generated_tokens": 0})
            if n <= budget:
                ready[i] = d.text
            elif self.overflow == "fail":
                out[i] = self._failed(d, metas[i], f"context overflow: article has {n} tokens, budget {budget}")
            elif self.overflow == "truncate":
                ready[i] = self._truncate(d.text, budget)
                metas[i].update(truncated=True, kept_tokens=budget)
            else:
                pending[i] = d.text
        level = 0
        while pending:  # map-reduce: summarize chunks, join their summaries, repeat until the text fits
            level += 1
            chunked = {i: [c if self._count_tokens(c) <= budget else self._truncate(c, budget)
                           for c in chunk_by_sentences(self._count_tokens, t, budget)] for i, t in pending.items()}
            results = iter(self._generate_many([c for cs in chunked.values() for c in cs]))
            still = {}
            for i, cs in chunked.items():
                rs = [next(results) for _ in cs]
                metas[i]["generated_tokens"] += sum(n for _, n in rs)
                metas[i].update(chunks=len(cs) if level == 1 else metas[i]["chunks"], reduce_levels=level)
                joined = "\n".join(t.strip() for t, _ in rs)
                size = self._count_tokens(joined)
                if size <= budget:
                    ready[i] = joined
                elif level >= self.MAX_REDUCE_LEVELS or size >= self._count_tokens(pending[i]):
                    out[i] = self._failed(docs[i], metas[i], f"context overflow: chunk summaries ({size} tokens) "
                                                             f"do not shrink below the budget {budget}")
                else:
                    still[i] = joined
            pending = still
        order = sorted(ready)
        for i, (text, n) in zip(order, self._generate_many([ready[i] for i in order])):
            metas[i]["generated_tokens"] += n
            out[i] = Summary(docs[i].cluster_id, docs[i].id, self.name, text.strip(), meta=metas[i])
        return out  # type: ignore[return-value]

    def _failed(self, doc: Document, meta: dict[str, Any], error: str) -> Summary:
        return Summary(doc.cluster_id, doc.id, self.name, None, error=error, meta=meta)

    def _generate_many(self, articles: list[str]) -> list[tuple[str, int]]:
        """Batches of similar length (less padding), results in input order."""
        order = sorted(range(len(articles)), key=lambda i: len(articles[i]))
        results: list[tuple[str, int] | None] = [None] * len(articles)
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            for i, r in zip(idx, self._generate([articles[i] for i in idx])):
                results[i] = r
        return results  # type: ignore[return-value]


def looks_like_local_path(model: str) -> bool:
    """A hub id is `name` or `owner/name`; anything absolute, relative (./, ../, ~) or deeper is a folder."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def model_location_error(model: str) -> str | None:
    """Why `model` cannot be found before anything loads: a missing package or local folder; None otherwise
    (hub ids are only checked when loaded)."""
    try:
        path = resolve_model_path(model)
    except BenchError as e:
        return str(e)
    if looks_like_local_path(model) and not Path(path).expanduser().exists():
        return f"the model folder {path} does not exist"
    return None


def local_model_path(model: str) -> str:
    """The folder or hub id to load, refusing a local folder that does not exist (instead of letting the
    hub client call it a malformed repo id)."""
    problem = model_location_error(model)
    if problem:
        raise BenchError(problem)
    path = resolve_model_path(model)
    return str(Path(path).expanduser()) if looks_like_local_path(model) else path


class TransformersSummarizer(_TokenizedBackend):
    """A causal LM through its chat template, or a seq2seq model (BART, T5, PEGASUS) through
    AutoModelForSeq2SeqLM.generate. `model` is a hub id, a local folder, or 'pypackage:NAME';
    `gguf_file` selects a GGUF file inside it. Decoding is greedy unless `generation.do_sample`."""

    def __init__(self, name: str, model: str, gguf_file: str | None = None, revision: str | None = None,
                 architecture: str = "auto", input_prefix: str = "", use_chat_template: bool = True,
                 generation: dict[str, Any] | None = None, seed: int | None = None, device: str = "auto",
                 dtype: str = "auto", trust_remote_code: bool = False, **kw):
        super().__init__(name, **kw)
        if architecture not in ("auto", "causal", "seq2seq"):
            raise BenchError(f"summarizer '{name}': architecture must be auto, causal or seq2seq")
        self.model_id, self.gguf_file, self.revision = model, gguf_file, revision
        self.architecture, self.input_prefix, self.use_chat_template = architecture, input_prefix, use_chat_template
        self.generation = {"max_new_tokens": 128, "do_sample": False, "num_beams": 1, **(generation or {})}
        self.seed, self.device, self.dtype, self.trust_remote_code = seed, device, dtype, trust_remote_code
        self._loaded: tuple[Any, Any, bool, str] | None = None
        self._lock = threading.Lock()

    @property
    def samples(self) -> bool:
        return bool(self.generation.get("do_sample"))

    def input_files(self) -> list[Path]:
        """A local model's files (identified by content); none for a hub id, which the config identifies
        by id and revision (pin one to be exact)."""
        path = Path(local_model_path(self.model_id))
        if not path.exists():
            return []
        return [path / self.gguf_file] if self.gguf_file else sorted(
            p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))

    # loading
    def load(self):
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
        return self._loaded

    def _load(self):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        path = local_model_path(self.model_id)
        kw = {"revision": self.revision, "trust_remote_code": self.trust_remote_code}
        if self.gguf_file:
            kw["gguf_file"] = self.gguf_file
        try:
            if self.architecture == "auto" and not self.gguf_file:
                seq2seq = bool(getattr(AutoConfig.from_pretrained(path, **kw), "is_encoder_decoder", False))
            else:  # GGUF holds decoder-only models; reading its config would parse the whole file once more
                seq2seq = self.architecture == "seq2seq"
            device = self.device if self.device != "auto" else (
                "cuda" if torch.cuda.is_available() else
                "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
            dtype = (getattr(torch, self.dtype) if self.dtype != "auto" else
                     (torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else
                      torch.float16 if device in ("cuda", "mps") else torch.float32))
            tok = AutoTokenizer.from_pretrained(path, **kw)
            cls = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
            model = cls.from_pretrained(path, dtype=dtype, **kw).to(device).eval()
        except OSError as e:
            raise BenchError(f"summarizer '{self.name}': cannot load model '{self.model_id}': {e}") from e
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "right" if seq2seq else "left"
        log.info("summarizer %s: loaded %s (%s) on %s, %s", self.name, self.model_id,
                 "seq2seq" if seq2seq else "causal", device, dtype)
        return tok, model, seq2seq, device

    # _TokenizedBackend hooks
    def _count_tokens(self, text: str) -> int:
        tok = self.load()[0]
        return len(tok(text, add_special_tokens=False).input_ids)

    def _truncate(self, text: str, n_tokens: int) -> str:
        tok = self.load()[0]
        return tok.decode(tok(text, add_special_tokens=False).input_ids[:n_tokens], skip_special_tokens=True)

    def _render(self, article: str) -> str:
        tok, _, seq2seq, _ = self.load()
        if seq2seq:
            return self.input_prefix + article
        if self.use_chat_template and tok.chat_template:
            return tok.apply_chat_template(self.messages(article), add_generation_prompt=True, tokenize=False)
        if self.use_chat_template:
            raise BenchError(f"summarizer '{self.name}': the tokenizer has no chat template; "
                             "set use_chat_template=false to send the plain prompt")
        return self.prompt.format(article=article)

    def _prompt_overhead(self) -> int:
        tok = self.load()[0]
        return len(tok(self._render(""), add_special_tokens=self.load()[2]).input_ids)

    def _generate(self, articles: list[str]) -> list[tuple[str, int]]:
        if self.generation.get("do_sample"):  # seeded per article, so a result never depends on its batch
            return [self._generate_batch([a], seed=self._seed_for(a))[0] for a in articles]
        return self._generate_batch(articles)

    def _seed_for(self, article: str) -> int:
        return int.from_bytes(hashlib.sha256(f"{self.seed}\0{article}".encode()).digest()[:4], "big")

    def _generate_batch(self, articles: list[str], seed: int | None = None) -> list[tuple[str, int]]:
        return self._generate_batch_rendered([self._render(a) for a in articles], seed)

    def _generate_batch_rendered(self, texts: list[str], seed: int | None = None) -> list[tuple[str, int]]:
        """Model inputs exactly as given (prompt already rendered) -> (text, generated tokens)."""
        import torch

        tok, model, seq2seq, device = self.load()
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=seq2seq).to(device)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(**enc, **self.generation, pad_token_id=tok.pad_token_id)
        generated = out if seq2seq else out[:, enc["input_ids"].shape[1]:]
        results = []
        for row in generated.tolist():
            if seq2seq and row and row[0] == getattr(model.config, "decoder_start_token_id", None):
                row = row[1:]
            n = next((i for i, t in enumerate(row) if t == tok.eos_token_id), len(row))
            while n and row[n - 1] == tok.pad_token_id:  # padding after a sequence that finished early
                n -= 1
            results.append((tok.decode(row[:n], skip_special_tokens=True), n))
        return results


class VLLMSummarizer(_TokenizedBackend):
    """vLLM's offline engine (optional: `pip install vllm`, needs a GPU). Chat models through their
    chat template; greedy by default."""

    def __init__(self, name: str, model: str, revision: str | None = None, max_new_tokens: int = 128,
                 temperature: float = 0.0, seed: int | None = None, engine: dict[str, Any] | None = None,
                 batch_size: int = 256, **kw):
        super().__init__(name, batch_size=batch_size, **kw)
        self.model_id, self.revision, self.max_new_tokens = model, revision, max_new_tokens
        self.temperature, self.seed, self.engine = temperature, seed, dict(engine or {})
        self._llm = None

    def _engine(self):
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as e:
                raise BenchError(f"summarizer '{self.name}' needs vLLM: pip install vllm (GPU only)") from e
            self._llm = LLM(model=local_model_path(self.model_id), revision=self.revision,
                            seed=self.seed or 0, **self.engine)
        return self._llm

    def _count_tokens(self, text: str) -> int:
        return len(self._engine().get_tokenizer().encode(text, add_special_tokens=False))

    def _truncate(self, text: str, n_tokens: int) -> str:
        tok = self._engine().get_tokenizer()
        return tok.decode(tok.encode(text, add_special_tokens=False)[:n_tokens], skip_special_tokens=True)

    def _render(self, article: str) -> str:
        return self._engine().get_tokenizer().apply_chat_template(self.messages(article), add_generation_prompt=True,
                                                                   tokenize=False)

    def _generate(self, articles: list[str]) -> list[tuple[str, int]]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=self.temperature, max_tokens=self.max_new_tokens, seed=self.seed)
        outs = self._engine().chat([self.messages(a) for a in articles], params, use_tqdm=False)
        return [(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outs]


class OpenAIChatSummarizer(PromptedSummarizer):
    """Any OpenAI-compatible /chat/completions server (vLLM, SGLang, Ollama, llama.cpp, OpenAI).

    The API key is read from the environment variable named by `api_key_env` at call time; it is
    never stored in the config, the results, or the cache key. Requests run `concurrency` at a time;
    429s, 5xx, timeouts and connection errors are retried with exponential backoff (honouring
    Retry-After). Per summary, token usage and latency are recorded."""

    RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
    run_settings = ("api_key_env", "concurrency", "timeout_s", "max_retries", "backoff_s", "batch_size")

    def __init__(self, name: str, model: str, base_url: str = "http://127.0.0.1:8000/v1",
                 api_key_env: str | None = "OPENAI_API_KEY", max_tokens: int = 256, temperature: float = 0.0,
                 seed: int | None = None, extra_body: dict[str, Any] | None = None, concurrency: int = 4,
                 timeout_s: float = 120.0, max_retries: int = 5, backoff_s: float = 1.0, batch_size: int = 32, **kw):
        super().__init__(name, batch_size=batch_size, **kw)
        self.model_id, self.base_url, self.api_key_env = model, base_url.rstrip("/"), api_key_env
        self.max_tokens, self.temperature, self.seed = max_tokens, temperature, seed
        self.extra_body = dict(extra_body or {})
        self.concurrency, self.timeout_s, self.max_retries, self.backoff_s = concurrency, timeout_s, max_retries, backoff_s
        self._client = None

    def _http(self):
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout_s,
                                        limits=httpx.Limits(max_connections=self.concurrency))
        return self._client

    def summarize(self, docs: Sequence[Document], references=None) -> list[Summary]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(self._one, docs))

    def _one(self, doc: Document) -> Summary:
        import httpx

        body = {"model": self.model_id, "messages": self.messages(doc.text), "max_tokens": self.max_tokens,
                "temperature": self.temperature, **self.extra_body}
        if self.seed is not None:
            body["seed"] = self.seed
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        started, attempts, error = time.perf_counter(), 0, None
        rng = random.Random(doc.text)
        while attempts <= self.max_retries:
            attempts += 1
            delay = self.backoff_s * 2 ** (attempts - 1) * (0.5 + rng.random())
            try:
                r = self._http().post(f"{self.base_url}/chat/completions", json=body, headers=headers)
            except httpx.TransportError as e:  # timeouts, refused connections, resets
                error = f"{type(e).__name__}: {e}"
            else:
                if r.status_code == 200:
                    return self._parse(doc, r, attempts, time.perf_counter() - started)
                error = f"HTTP {r.status_code}: {r.text[:300]}"
                if r.status_code not in self.RETRY_STATUS:
                    break
                retry_after = r.headers.get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    delay = float(retry_after)
            if attempts <= self.max_retries:
                time.sleep(delay)
        return Summary(doc.cluster_id, doc.id, self.name, None, error=error,
                       meta={"attempts": attempts, "latency_s": round(time.perf_counter() - started, 4)})

    def _parse(self, doc: Document, r, attempts: int, latency: float) -> Summary:
        meta: dict[str, Any] = {"attempts": attempts, "latency_s": round(latency, 4)}
        try:
            data = r.json()
            choice = data["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return Summary(doc.cluster_id, doc.id, self.name, None, error=f"malformed response: {e!r}", meta=meta)
        usage = data.get("usage") or {}
        meta.update(prompt_tokens=usage.get("prompt_tokens"), generated_tokens=usage.get("completion_tokens"),
                    finish_reason=choice.get("finish_reason"))
        return Summary(doc.cluster_id, doc.id, self.name, (text or "").strip(), meta=meta)
