import json

import pytest

from bench.stages.data import FolderDataset, HFDataset, JsonlDataset
from bench.types import BenchError


def test_demo_has_two_clusters_of_five():
    clusters = FolderDataset().load()
    assert [c.id for c in clusters] == ["brackwater-wildfire", "port-alder-bridge"]
    assert [len(c.articles) for c in clusters] == [5, 5]
    gazette = next(a for a in clusters[1].articles if a.id == "gazette")
    assert gazette.source == "Port Alder Gazette" and gazette.date == "2026-03-04" and gazette.url


def test_single_cluster_folder(tmp_path):
    (tmp_path / "a.txt").write_text("One.")
    (tmp_path / "b.txt").write_text("Two.")
    (c,) = FolderDataset(str(tmp_path)).load()
    assert c.id == tmp_path.name and [a.id for a in c.articles] == ["a", "b"] and c.articles[0].source == "a"


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="holds no .txt files"):
        FolderDataset(str(tmp_path)).load()


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="does not exist"):
        FolderDataset(str(tmp_path / "nope")).load()


def _rows():
    return [{"cluster_id": "c1", "article_id": f"a{i}", "source": f"s{i}", "title": "t", "text": f"text {i}"}
            for i in range(3)]


def test_jsonl_roundtrip(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _rows()) + "\n")
    (c,) = JsonlDataset(str(path)).load()
    assert [a.text for a in c.articles] == ["text 0", "text 1", "text 2"]


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    lines = [json.dumps(r) for r in _rows()]
    lines.insert(2, '{"cluster_id": "c1", "article_id": ')
    path.write_text("\n".join(lines))
    with pytest.raises(BenchError, match=r"x\.jsonl:3: malformed JSON"):
        JsonlDataset(str(path)).load()


def test_jsonl_missing_field(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"cluster_id": "c", "article_id": "a", "text": "t"}) + "\n")
    with pytest.raises(BenchError, match="lacks field"):
        JsonlDataset(str(path)).load()


def test_hf_loader_with_column_mapping(tmp_path):
    path = tmp_path / "x.json"
    rows = [{"story": "c1", "id": f"a{i}", "outlet": "o", "headline": "h", "body": f"b{i}"} for i in range(2)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ds = HFDataset("json", data_files=str(path), columns={"cluster_id": "story", "article_id": "id",
                                                          "source": "outlet", "title": "headline", "text": "body"})
    (c,) = ds.load()
    assert [a.text for a in c.articles] == ["b0", "b1"]


def test_hf_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="could not load dataset"):
        HFDataset("json", data_files=str(tmp_path / "missing.json")).load()
