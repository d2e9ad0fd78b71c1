from bench.stages.clean import Cleaner
from bench.stages.data import FolderDataset
from bench.types import Article
from tests.conftest import SEED


def _clean(cluster, article_id):
    c = next(c for c in FolderDataset().load() if c.id == cluster)
    return Cleaner().clean(next(a for a in c.articles if a.id == article_id))


def test_demo_boilerplate_removed_and_news_kept():
    ca, reason = _clean("port-alder-bridge", "gazette")
    assert reason is None
    reasons = {r.reason for r in ca.removed}
    assert {"byline", "date or weather header", "related links", "subscription prompt", "author bio"} <= reasons
    assert "Helen Marsh" not in ca.text and "newsletter" not in ca.text and "8°C" not in ca.text
    assert "Twelve people were injured in the collapse" in ca.text


def test_repeated_paragraph_and_author_box():
    ca, _ = _clean("port-alder-bridge", "metro-daily")
    assert ca.text.count("temporary ferry service") == 1
    assert "Tom Becker" not in ca.text
    assert any(r.reason == "repeated paragraph" for r in ca.removed)


def test_all_boilerplate_page_is_dropped_with_reason():
    ca, reason = _clean("brackwater-wildfire", "social-embed")
    assert reason and "boilerplate" in reason


def test_empty_and_huge_articles_are_recorded_skips():
    cleaner = Cleaner(max_chars=1000)
    assert cleaner.clean(Article("a", "s", "t", "   \n"))[1] == "empty article"
    assert "over clean.max_chars" in cleaner.clean(Article("a", "s", "t", "word " * 500))[1]


def test_seed_cluster_boilerplate():
    import pytest

    if not SEED.is_dir():
        pytest.skip("seed cluster not present")
    from bench.stages.data import FolderDataset as F

    (cluster,) = F(str(SEED)).load()
    cleaned = {a.id[:3]: Cleaner().clean(a)[0] for a in cluster.articles}
    assert "seasoned financial analyst" not in cleaned["004"].text
    assert "To be updated with all the latest news" not in cleaned["004"].text
    assert "By Simone McCarthy" not in cleaned["002"].text and "Back to top" not in cleaned["002"].text
    assert cleaned["002"].text.startswith("Thousands of North Koreans")
    assert "follow our latest updates" not in cleaned["003"].text
    assert "© Getty Images" not in cleaned["000"].text
    assert "Kim Il Sung Square" in cleaned["000"].text
