"""Embedding, NLI (tiny random model) and combined matchers; blocking in alignment."""
import numpy as np
import pytest
from hydra.utils import instantiate

from bench.matchers.lexical import LexicalMatcher
from bench.matchers.neural import COMBINED_FEATURES, CombinedMatcher, EmbeddingMatcher, NLIMatcher
from bench.text.words import segments
from bench.types import BenchError
from tests import tiny_models
from tests.conftest import compose_cfg

PREMISE = ("The Carver Street Bridge collapsed on Tuesday morning, and twelve people were hurt. "
           "Mayor Elena Ruiz ordered an inspection of every bridge in the city.")
PARAPHRASE = "Twelve people were injured when the Carver Street Bridge collapsed."
UNRELATED = "The football team won the championship final on penalties."


def test_segments_are_whole_sentences_and_clauses():
    segs = segments(PREMISE)
    assert segs[0] == PREMISE
    assert "Mayor Elena Ruiz ordered an inspection of every bridge in the city." in segs
    assert "twelve people were hurt." in segs


@pytest.fixture(scope="module")
def embedding():
    return instantiate(compose_cfg("matcher=embedding").matcher)


def test_embedding_matcher_prefers_paraphrase_and_encodes_each_text_once(embedding):
    assert isinstance(embedding, EmbeddingMatcher)
    para, other = embedding.support([(PREMISE, PARAPHRASE), (PREMISE, UNRELATED)])
    assert para > embedding.support_threshold > other
    n = len(embedding.encoder._sentence)
    embedding.support([(PREMISE, PARAPHRASE)])
    assert len(embedding.encoder._sentence) == n  # cached
    sim = embedding.similarity([(PARAPHRASE, PREMISE)])[0]
    assert 0 < sim <= 1


def test_combined_matcher_uses_shipped_parameters(embedding):
    m = instantiate(compose_cfg("matcher=combined").matcher)
    assert isinstance(m, CombinedMatcher) and set(m.coefficients) == set(COMBINED_FEATURES)
    x = m.featurize([(PREMISE, PARAPHRASE), (PREMISE, UNRELATED), (PREMISE, "The bridge did not collapse.")])
    assert x.shape == (3, len(COMBINED_FEATURES)) and np.isfinite(x).all()
    assert x[2, COMBINED_FEATURES.index("negation_mismatch")] == 1.0
    para, other, _ = m.probabilities(x)
    assert 0 <= other < m.support_threshold < para <= 1


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory):
    import torch
    from tokenizers import processors
    from transformers import RobertaConfig, RobertaForSequenceClassification

    out = tmp_path_factory.mktemp("nli")
    tok = tiny_models.tokenizer(out, with_chat_template=False)
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.bos_token_id), ("</s>", tok.eos_token_id)])
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, max_position_embeddings=520, pad_token_id=tok.pad_token_id,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, num_labels=3,
                        id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"},
                        label2id={"CONTRADICTION": 0, "NEUTRAL": 1, "ENTAILMENT": 2})
    RobertaForSequenceClassification(cfg).save_pretrained(out)
    return str(out)


def test_nli_matcher_code_path_with_a_tiny_model(tiny_nli):
    m = instantiate(compose_cfg("matcher=nli", f"matcher.model={tiny_nli}").matcher)
    assert isinstance(m, NLIMatcher)
    scores = m.support([(PREMISE, PARAPHRASE), (PREMISE, UNRELATED)])
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert m.load()[2] == 2  # the ENTAILMENT column, found by name
    assert m.support([(PREMISE, PARAPHRASE)]) == scores[:1]  # deterministic, memoised
    whole = NLIMatcher(tiny_nli, segment_premise=False)
    assert whole.support([(PREMISE, PARAPHRASE)])[0] <= scores[0] + 1e-9  # segments can only raise the max
    with pytest.raises(BenchError, match="entailment label"):
        NLIMatcher(tiny_nli, entailment_label="yes").support([(PREMISE, PARAPHRASE)])
    with pytest.raises(BenchError, match="cannot load NLI model"):
        NLIMatcher("/nonexistent/nli-model").support([(PREMISE, PARAPHRASE)])


def test_blocking_compares_far_fewer_pairs_than_all_pairs():
    from scripts.perf import demo_like_cluster
    from bench.types import Document

    cfg = compose_cfg()
    extractor, matcher = instantiate(cfg.facts), instantiate(cfg.matcher)
    builder = instantiate(cfg.consensus, matcher=matcher)
    arts = demo_like_cluster(40)
    parsed = extractor.extract([(a.id, a.text) for a in arts])
    builder.build("c", [Document("c", a, a.text, p.sentences, p.facts) for a, p in zip(arts, parsed)])
    stats = builder.last_blocking
    assert stats["compared_pairs"] <= stats["facts"] * builder.max_candidates
    assert stats["compared_pairs"] < stats["all_pairs"] / 10


def test_lexical_shortcuts_decide_as_the_generic_matcher_does():
    """LexicalMatcher.supporting and .states (index-pruned) and .covers (one union premise) give Matcher's all-pairs decisions."""
    import random

    from bench.matchers.base import Matcher

    rng = random.Random(3)
    words = ("Putin Kim arrived in Pyongyang on Tuesday for talks the first visit 24 years two officials said "
             "Moscow welcomed crowds square 12 troops not never cheering Kim's summit deal").split()
    text = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))  # noqa: E731
    for threshold in (0.3, 0.6, 0.9):
        fast = LexicalMatcher(support_threshold=threshold)
        for _ in range(200):
            premises = [text() for _ in range(rng.randint(0, 6))]
            hypotheses = [text() for _ in range(rng.randint(0, 5))]
            assert fast.states(premises, hypotheses) == Matcher.states(fast, premises, hypotheses)
            assert (fast.supporting(premises, hypotheses, 0.8)
                    == Matcher.supporting(fast, premises, hypotheses, 0.8))
            units = [[text() for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(0, 4))]
            assert fast.covers(premises, units) == Matcher.covers(fast, premises, units)
