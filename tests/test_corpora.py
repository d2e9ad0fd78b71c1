"""Real multi-document corpora (Multi-News and WCEP layouts, through `datasets`) and human summaries,
on small local files written here: the hub ids need a network, these tests do not."""
import json

import pytest

from bench.stages.data import JsonlDataset, MultiNewsDataset, WcepDataset
from bench.runner.signature import data_hash
from bench.types import BenchError, Cluster
from tests.conftest import compose_cfg

MN_ROWS = [
    {"document": "Outlet one reports the bridge closed. NEWLINE_CHAR It reopens Monday. ||||| ||||| "
                 "Outlet three says the bridge closed for repairs. |||||",
     "summary": "– The bridge closed for repairs. It reopens Monday."},
    {"document": "A single report.", "summary": "– One source only."},
]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_multi_news_layout_from_local_json(tmp_path):
    ds = MultiNewsDataset(path="json", data_files=_write_jsonl(tmp_path / "mn.jsonl", MN_ROWS))
    first, second = ds.load()
    assert ds.split == "train"  # local data_files: the split `datasets` names them
    assert first.id == "train-0" and second.id == "train-1"
    # the empty piece between separators and the trailing one are dropped; ids keep the position k
    assert [(a.id, a.source, a.title) for a in first.articles] == [("train-0-0", "doc0", ""), ("train-0-2", "doc2", "")]
    assert first.articles[0].text == "Outlet one reports the bridge closed. \n It reopens Monday."
    assert first.articles[1].text == "Outlet three says the bridge closed for repairs."
    assert ds.dropped_empty == 2
    assert first.summary == "The bridge closed for repairs. It reopens Monday."  # leading "– " stripped
    assert second.summary == "One source only." and len(second.articles) == 1


def test_multi_news_parquet_with_id_column_and_renamed_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"story": ["s-17", "s-18"], "docs": [r["document"] for r in MN_ROWS],
                      "abstract": [r["summary"] for r in MN_ROWS]})
    pq.write_table(table, tmp_path / "mn.parquet")
    ds = MultiNewsDataset(path="parquet", data_files=str(tmp_path / "mn.parquet"), split="train",
                          columns={"document": "docs", "summary": "abstract", "id": "story"})
    clusters = ds.load()
    assert [c.id for c in clusters] == ["s-17", "s-18"]
    assert [a.id for a in clusters[0].articles] == ["s-17-0", "s-17-2"]
    assert clusters[1].summary == "One source only."


def test_multi_news_missing_document_column_is_a_clear_error(tmp_path):
    path = _write_jsonl(tmp_path / "mn.jsonl", [{"text": "x", "summary": "y"}])
    with pytest.raises(BenchError, match="no document column 'document'"):
        MultiNewsDataset(path="json", data_files=path).load()


def test_multi_news_without_summary_column_has_no_summary(tmp_path):
    path = _write_jsonl(tmp_path / "mn.jsonl", [{"document": "a ||||| b"}])
    (c,) = MultiNewsDataset(path="json", data_files=path).load()
    assert c.summary is None and [a.text for a in c.articles] == ["a", "b"]


WCEP_ROWS = [
    {"id": "ev1", "summary": "A storm hit the coast.",
     "articles": [{"text": "The storm hit.", "title": "Storm", "url": "https://www.bbc.co.uk/news/1", "date": "2019-01-02"},
                  {"text": "Coast hit by storm.", "domain": "cnn.com"},
                  {"text": "  ", "source": "Empty Wire"},
                  {"text": "Wire copy.", "source": "Reuters", "id": "r-99"}]},
    {"summary": "Second event.", "articles": [{"text": "Only text."}]},
]


def test_wcep_layout_sources_ids_and_summaries(tmp_path):
    ds = WcepDataset(path="json", data_files=_write_jsonl(tmp_path / "w.jsonl", WCEP_ROWS))
    ev1, ev2 = ds.load()
    assert ev1.id == "ev1" and ev2.id == "train-1"
    assert [(a.id, a.source) for a in ev1.articles] == [("ev1-0", "bbc.co.uk"), ("ev1-1", "cnn.com"), ("r-99", "Reuters")]
    first = ev1.articles[0]
    assert (first.title, first.url, first.date) == ("Storm", "https://www.bbc.co.uk/news/1", "2019-01-02")
    assert ds.dropped_empty == 1  # the blank article
    assert ev1.summary == "A storm hit the coast."
    assert [(a.id, a.source, a.text) for a in ev2.articles] == [("train-1-0", "doc0", "Only text.")]


def test_wcep_plain_string_articles_and_renamed_columns(tmp_path):
    rows = [{"event": "e", "docs": ["First text.", "Second text."], "gold": "Gold."}]
    ds = WcepDataset(path="json", data_files=_write_jsonl(tmp_path / "w.jsonl", rows),
                     columns={"articles": "docs", "summary": "gold", "id": "event"})
    (c,) = ds.load()
    assert c.id == "e" and c.summary == "Gold."
    assert [(a.id, a.source, a.text) for a in c.articles] == [("e-0", "doc0", "First text."), ("e-1", "doc1", "Second text.")]


def test_wcep_renamed_article_fields(tmp_path):
    rows = [{"summary": "S.", "articles": [{"body": "Text one.", "outlet": "AP"}, {"body": "Text two.", "outlet": "AFP"}]}]
    ds = WcepDataset(path="json", data_files=_write_jsonl(tmp_path / "w.jsonl", rows),
                     fields={"text": "body", "source": "outlet"})
    (c,) = ds.load()
    assert [(a.source, a.text) for a in c.articles] == [("AP", "Text one."), ("AFP", "Text two.")]


def test_wcep_duplicate_cluster_ids_and_bad_settings_are_errors(tmp_path):
    rows = [{"id": "x", "articles": ["a"], "summary": "s"}, {"id": "x", "articles": ["b"], "summary": "s"}]
    with pytest.raises(BenchError, match="'x' occurs twice"):
        WcepDataset(path="json", data_files=_write_jsonl(tmp_path / "w.jsonl", rows)).load()
    with pytest.raises(BenchError, match="unknown article field"):
        WcepDataset(path="json", fields={"body": "text"})
    with pytest.raises(BenchError, match="unknown column setting"):
        MultiNewsDataset(columns={"docs": "x"})


def test_default_is_the_hub_id_and_a_failed_download_is_a_clear_error(monkeypatch):
    import datasets

    calls = []

    def offline(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(BenchError, match="could not load dataset 'multi_news' \\(split 'test'\\): no network"):
        MultiNewsDataset().load()
    assert calls == [("multi_news", None, {"data_files": None, "split": "test", "revision": None})]


def _articles(tmp_path):
    rows = [{"cluster_id": c, "article_id": f"{c}-{i}", "source": f"s{i}", "title": "", "text": f"text {c} {i}"}
            for c in ("c1", "c2") for i in range(2)]
    return _write_jsonl(tmp_path / "clusters.jsonl", rows)


def test_jsonl_summaries_file(tmp_path):
    summaries = _write_jsonl(tmp_path / "summaries.jsonl", [{"cluster_id": "c2", "summary": "– Human text."}])
    c1, c2 = JsonlDataset(_articles(tmp_path), summaries=summaries).load()
    assert c1.summary is None and c2.summary == "Human text."
    assert JsonlDataset(_articles(tmp_path), summaries=summaries).identity()["summaries"] == summaries
    assert "summaries" not in JsonlDataset(_articles(tmp_path)).identity()


def test_jsonl_summaries_errors(tmp_path):
    articles = _articles(tmp_path)
    unknown = _write_jsonl(tmp_path / "s1.jsonl", [{"cluster_id": "nope", "summary": "x"}])
    with pytest.raises(BenchError, match="not in the data"):
        JsonlDataset(articles, summaries=unknown).load()
    twice = _write_jsonl(tmp_path / "s2.jsonl", [{"cluster_id": "c1", "summary": "x"}, {"cluster_id": "c1", "summary": "y"}])
    with pytest.raises(BenchError, match="second summary"):
        JsonlDataset(articles, summaries=twice).load()
    with pytest.raises(BenchError, match="does not exist"):
        JsonlDataset(articles, summaries=str(tmp_path / "missing.jsonl")).load()


def test_data_hash_covers_human_summaries_and_is_unchanged_without_them(tmp_path):
    (c,) = JsonlDataset(_write_jsonl(tmp_path / "a.jsonl", [
        {"cluster_id": "c", "article_id": "a", "source": "s", "title": "", "text": "t"}])).load()
    with_a, with_b = Cluster(c.id, c.articles, "A."), Cluster(c.id, c.articles, "B.")
    assert len({data_hash([c]), data_hash([with_a]), data_hash([with_b])}) == 3
    # a cluster without a human summary hashes as it did before the field existed (merges with older runs)
    from bench.runner.signature import stable_hash
    assert data_hash([c]) == stable_hash([[c.id, [[a.id, a.source, a.title, a.text, a.date, a.url] for a in c.articles]]])


@pytest.mark.parametrize("option,extra", [("multi_news", []), ("wcep", ["dataset.path=json"])])
def test_dataset_configs_build(option, extra):
    from hydra.utils import instantiate

    ds = instantiate(compose_cfg(f"dataset={option}", *extra).dataset)
    assert ds.name == option and ds.split == "test"
