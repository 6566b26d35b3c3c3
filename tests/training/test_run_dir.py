"""Run folder numbering, name safety and run.json updates."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from dlkit.errors import UsageError
from dlkit.training import run_dir as rd


def test_new_run_dir_numbers_and_never_reuses(tmp_path):
    first = rd.new_run_dir(tmp_path, "exp")
    second = rd.new_run_dir(tmp_path, "exp")
    assert (first.name, second.name) == ("001", "002")
    assert first.parent == tmp_path.resolve() / "exp"


def test_new_run_dir_is_race_safe(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: rd.new_run_dir(tmp_path, "exp"), range(16)))
    assert len({p.name for p in made}) == 16


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "", "x y"])
def test_run_name_must_be_plain(tmp_path, name):
    with pytest.raises(UsageError, match="plain name"):
        rd.new_run_dir(tmp_path, name)
    assert not any(tmp_path.parent.glob("escape"))


def test_resolve_run_dir_picks_newest_numbered_run(tmp_path):
    for n in ("001", "002", "010"):
        (tmp_path / "exp" / n).mkdir(parents=True)
        (tmp_path / "exp" / n / "config.yaml").write_text("name: exp\n")
    assert rd.resolve_run_dir(tmp_path / "exp").name == "010"
    assert rd.resolve_run_dir(tmp_path / "exp" / "002").name == "002"
    with pytest.raises(UsageError, match="not a dlkit run folder"):
        rd.resolve_run_dir(tmp_path / "nope")


def test_update_run_json_merges_nested_dicts(tmp_path):
    rd.update_run_json(tmp_path, status="running", timings={"load_s": 1.0})
    data = rd.update_run_json(tmp_path, status="completed", timings={"train_s": 2.0})
    assert data == {"status": "completed", "timings": {"load_s": 1.0, "train_s": 2.0}}
    assert json.loads((tmp_path / "run.json").read_text()) == data
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp files left behind
