"""Plumbing of scripts/bench.py: process measurement, read-back of both sides' timings, ratios and report.

The fast tests run no TensorFlow; one slow test runs the script end to end at --quick sizes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("dlkit_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["dlkit_bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_alternate_puts_each_side_first_equally_often(bench):
    assert bench.alternate(("a", "b"), 3) == ["a", "b", "b", "a", "a", "b"]
    assert bench.alternate(("a", "b"), 1) == ["a", "b"]


def test_steady_state_skips_the_first_epoch(bench):
    assert bench.steady_state([100.0, 300.0, 500.0, 400.0]) == 400.0
    assert bench.steady_state([250.0]) == 250.0
    assert bench.steady_state([]) is None
    assert bench.median([None, 2.0, 4.0]) == 3.0
    assert bench.ratio(3.0, 0.0) is None


def test_run_process_measures_this_childs_peak_rss_wall_time_and_exit_code(tmp_path):
    """Measured from a small parent, as bench.py runs: Linux records the pre-exec image's peak in the
    child's ru_maxrss, so inside a pytest process that already holds TensorFlow (~1 GB) every child
    would read at least that much."""
    code = f"""
import importlib.util, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("dlkit_bench", {str(SCRIPT)!r})
bench = importlib.util.module_from_spec(spec)
sys.modules["dlkit_bench"] = bench
spec.loader.exec_module(bench)
tmp_path = Path({str(tmp_path)!r})
""" + textwrap.dedent(
        """
        big = bench.run_process(
            "big", [sys.executable, "-c", "b = b'x' * (160 * 2**20); import sys; sys.exit(3)"], tmp_path / "big.log"
        )
        small = bench.run_process("small", [sys.executable, "-c", "print('hi')"], tmp_path / "small.log")
        assert big.returncode == 3 and not big.ok
        assert big.peak_rss_mb > 160, big.peak_rss_mb
        assert small.ok and small.stdout == "hi\\n"
        assert small.peak_rss_mb < 100, small.peak_rss_mb  # RUSAGE_CHILDREN would report the big child's peak
        assert 0 < small.cpu_s < big.cpu_s + 1
        t0 = time.perf_counter()
        slow = bench.run_process("sleep", [sys.executable, "-c", "import time; time.sleep(0.3)"], tmp_path / "s.log")
        assert 0.3 <= slow.wall_s <= time.perf_counter() - t0
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_run_process_tty_gives_the_child_a_terminal_and_keeps_its_output(bench, tmp_path):
    code = "import sys; sys.stderr.write('progress\\n'); sys.exit(0 if sys.stderr.isatty() else 9)"
    on_tty = bench.run_process("tty", [sys.executable, "-c", code], tmp_path / "tty.log", tty=True)
    to_file = bench.run_process("file", [sys.executable, "-c", code], tmp_path / "file.log")
    assert on_tty.returncode == 0 and "progress" in Path(on_tty.log).read_text()
    assert to_file.returncode == 9 and "progress" in Path(to_file.log).read_text()


def test_read_metrics_csv_uses_dlkit_columns_or_falls_back_to_epoch_time(bench, tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,loss,accuracy,lr,time,samples_per_s\n1,2.3,0.1,0.001,4.0,2048.0\n2,2.2,0.2,0.001,2.0,4096.0\n"
    )
    assert bench.read_metrics_csv(path, 8192) == {"samples_per_second": [2048.0, 4096.0], "epoch_seconds": [4.0, 2.0]}
    path.write_text("epoch,loss,time\n1,2.3,4.0\n2,2.2,2.0\n")
    assert bench.read_metrics_csv(path, 8192)["samples_per_second"] == [2048.0, 4096.0]


def test_first_step_is_measured_from_process_start(bench, tmp_path):
    timing = tmp_path / "timing.json"
    timing.write_text(json.dumps({"first_step_time": 1005.5, "samples_per_second": [1.0, 2.0]}))
    assert bench.read_baseline_timing(timing, 1000.0)["first_step_s"] == pytest.approx(5.5)
    run_json = tmp_path / "run.json"
    run_json.write_text(json.dumps({"timings": {"first_step_at": "2026-01-01T00:00:04+00:00"}}))
    start = bench.dt.datetime(2026, 1, 1, tzinfo=bench.dt.timezone.utc).timestamp()
    assert bench.read_dlkit_first_step(run_json, start) == pytest.approx(4.0)
    run_json.write_text(json.dumps({"timings": {"first_step_at": start + 2.5}}))
    assert bench.read_dlkit_first_step(run_json, start) == pytest.approx(2.5)
    run_json.write_text(json.dumps({"timings": {}}))
    assert bench.read_dlkit_first_step(run_json, start) is None


def _run(bench, wall, sps, rss, first, cpu=None):
    extra = {"samples_per_second": sps, "first_step_s": first, "samples_per_cpu_second": [s / 2 for s in sps]}
    return bench.ProcRun("x", [], 0, wall, rss, 0.0, "", cpu_s=cpu, extra=extra)


def test_summarize_pairs_takes_the_median_of_side_by_side_ratios(bench):
    dlkit = [_run(bench, 10.0, [1.0, 400.0, 400.0], 800, 4.5, 10), _run(bench, 20.0, [1.0, 200.0, 200.0], 800, 5.0, 20)]
    keras = [_run(bench, 12.0, [1.0, 200.0, 200.0], 720, 4.0, 15), _run(bench, 22.0, [1.0, 100.0, 100.0], 880, 4.0, 30)]
    failed = bench.ProcRun("x", [], 1, 1.0, 1.0, 0.0, "")
    out = bench.summarize_pairs([*dlkit, failed], [*keras, failed])
    assert out["dlkit"]["runs"] == 3 and out["dlkit"]["ok"] == 2
    assert out["dlkit"]["samples_per_second"] == 300.0
    assert out["ratios"]["samples_per_second"] == 2.0
    assert out["dlkit"]["samples_per_cpu_second"] == 150.0 and out["ratios"]["samples_per_cpu_second"] == 2.0
    assert out["dlkit"]["cpu_s"] == 15 and out["ratios"]["cpu"] == 1.5
    assert out["ratios"]["wall"] == pytest.approx((1.2 + 1.1) / 2)
    assert out["ratios"]["peak_rss"] == pytest.approx((800 / 720 + 800 / 880) / 2)
    assert out["ratios"]["first_step_added_s"] == pytest.approx(0.75)


def test_case_configs_are_valid_dlkit_configs(bench, tmp_path):
    from dlkit.config.schema import Config

    for case in bench.TRAIN_CASES:
        config = Config.model_validate(bench.case_config(case, 64, 2, tmp_path / f"{case}.npz"))
        assert config.data.source == "npz" and config.data.path == str(tmp_path / f"{case}.npz")
        assert config.data.validation_split == 0.0
        assert config.data.batch_size == 32 and config.training.epochs == 2
    bf16 = Config.model_validate(
        bench.case_config("cnn", 64, 1, tmp_path / "c.npz", batch_size=256, precision="mixed_bfloat16")
    )
    assert bf16.data.batch_size == 256 and bf16.training.precision == "mixed_bfloat16"


def test_both_sides_read_one_data_file_with_the_model_s_shapes(bench, tmp_path):
    import numpy as np

    for case, spec in bench.TRAIN_CASES.items():
        path = bench.write_case_data(case, 16, tmp_path / f"{case}.npz")
        with np.load(path) as arrays:
            x, y = arrays["x"], arrays["y"]
        assert x.shape == (16, *spec["input_shape"]) and x.dtype == np.float32
        assert y.shape == (16,) and set(y.tolist()) <= set(range(10))
        if case == "cnn":
            assert x.min() >= 0 and x.max() <= 255 and np.array_equal(x, np.round(x))
    before = (tmp_path / "cnn.npz").stat().st_mtime_ns
    bench.write_case_data("cnn", 16, tmp_path / "cnn.npz")
    assert (tmp_path / "cnn.npz").stat().st_mtime_ns == before, "written once per size, then reused"


def test_report_flags_missed_targets(bench):
    dlkit = [_run(bench, 10.0, [1.0, 300.0], 800, 5.0)]
    keras = [_run(bench, 9.0, [1.0, 250.0], 700, 3.0)]
    results = {"cnn": bench.summarize_pairs(dlkit, keras) | {"title": "t", "samples": 64, "epochs": 2}}
    report = {
        "date": "now",
        "command": "python scripts/bench.py --quick",
        "repeats": 1,
        "quick": True,
        "elapsed_s": 1.0,
        "machine": bench.machine_info(),
        "loadavg_end": [0.0],
        "results": results,
        "failures": [],
    }
    text = bench.render_markdown(report)
    assert "| cnn | 1.20x (MISSED) | 0.90x (MISSED) | +2.00 s (MISSED) | 1.14x (MISSED) |" in text
    assert "`python scripts/bench.py --quick`" in text


def test_unknown_benchmark_is_a_usage_error(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--only", "cnn,gpu"])
    assert exc.value.code == 2
    assert "unknown benchmark(s) gpu" in capsys.readouterr().err


def test_epochs_override_the_train_cases_and_must_leave_a_steady_epoch(bench, tmp_path, capsys):
    runner = bench.Bench(tmp_path, 1, False, print, epochs=10)
    assert runner.sizes("cnn") == (8192, 10) and runner.sizes("mlp") == (32768, 10)
    assert bench.Bench(tmp_path, 1, True, print).sizes("cnn") == (256, 2)
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--epochs", "1"])
    assert exc.value.code == 2 and "--epochs must be at least 2" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_end_to_end_writes_the_report(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--only", "cnn,latency", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "benchmarks.json").read_text())
    cnn = report["results"]["cnn"]
    for side in ("dlkit", "keras"):
        assert cnn[side]["ok"] == 1
        assert cnn[side]["samples_per_second"] > 0
        assert cnn[side]["peak_rss_mb"] > 100
        assert cnn[side]["first_step_s"] > 0
        assert cnn[side]["samples_per_cpu_second"] > 0
    assert cnn["ratios"]["wall"] > 0
    latency = report["results"]["latency"]
    assert latency["tflite_int8_bytes"] < latency["tflite_float32_bytes"]
    assert latency["tflite_float32_max_abs_diff"] < 1e-4
    assert "## dlkit train vs the hand-written Keras script" in (tmp_path / "BENCHMARKS.md").read_text()


def _report(bench, date, command, results, runs=()):
    return {
        "date": date,
        "command": command,
        "repeats": 3,
        "quick": False,
        "elapsed_s": 1.0,
        "machine": bench.machine_info(),
        "loadavg_end": [0.0],
        "results": results,
        "failures": [],
        "runs": [{"label": label} for label in runs],
    }


def test_torch_section_skips_in_one_line_without_torch(bench, tmp_path, monkeypatch):
    find_spec = bench.importlib.util.find_spec
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: None if name == "torch" else find_spec(name))
    said = []
    runner = bench.Bench(tmp_path, 1, True, said.append)
    runner.torch()
    assert len(said) == 1 and said[0].startswith("torch: skipped, torch is not importable")
    assert runner.runs == [] and "skipped" in runner.results["torch"]
    text = bench.render_markdown(_report(bench, "now", "python scripts/bench.py", runner.results))
    assert "## dlkit train vs PyTorch eager" in text and "Skipped: torch is not importable" in text


def test_merge_keeps_unmeasured_sections_and_says_which_run_each_came_from(bench):
    dlkit = [_run(bench, 10.0, [1.0, 300.0], 800, 4.0)]
    torch = [_run(bench, 8.0, [1.0, 250.0], 500, 2.0)]
    keras = [_run(bench, 12.0, [1.0, 200.0], 700, 4.0)]
    torch_result = bench.summarize_pairs(dlkit, torch, names=("dlkit", "pytorch")) | {"samples": 64, "epochs": 2}
    cnn = bench.summarize_pairs(dlkit, keras) | {"title": "t", "samples": 64, "epochs": 2}
    old_cli = {"dlkit --help": {"wall_s": 0.2, "walls": [0.2], "peak_rss_mb": 50.0}}
    old = _report(
        bench,
        "2026-01-01 00:00 UTC",
        "python scripts/bench.py --repeats 3",
        {"cnn": {"stale": True}, "cli": old_cli},
        runs=["cnn-dlkit", "cnn-keras", "dlkit --help", "latency-worker"],
    )
    new = _report(
        bench,
        "2026-01-02 00:00 UTC",
        "python scripts/bench.py --only cnn,torch",
        {"cnn": cnn, "torch": torch_result},
        runs=["cnn-dlkit", "torch-pytorch"],
    )
    merged = bench.merge_reports(new, old)
    assert merged["results"]["cnn"] is cnn and merged["results"]["cli"] == old_cli
    assert merged["sources"]["cli"]["date"] == "2026-01-01 00:00 UTC"
    assert merged["sources"]["torch"]["command"] == "python scripts/bench.py --only cnn,torch"
    assert [r["label"] for r in merged["runs"]] == ["cnn-dlkit", "torch-pytorch", "dlkit --help", "latency-worker"]
    text = bench.render_markdown(merged)
    assert "_Figures: cli from the run of 2026-01-01 00:00 UTC._" in text
    assert "_Figures: cnn from the run of 2026-01-02 00:00 UTC._" in text
    assert "images/s ratio dlkit / PyTorch: **1.20x** (target: ahead of PyTorch eager, met)" in text
    # merging again keeps the earliest run's label on the sections carried over
    again = bench.merge_reports(_report(bench, "2026-01-03 00:00 UTC", "x", {"torch": torch_result}), merged)
    assert again["sources"]["cli"]["date"] == "2026-01-01 00:00 UTC"
    assert again["sources"]["cnn"]["date"] == "2026-01-02 00:00 UTC"
    # a single run's report has no per-section source lines
    assert "_Figures:" not in bench.render_markdown(new)


@pytest.mark.slow
def test_torch_baseline_writes_the_timing_the_benchmark_reads(bench, tmp_path):
    pytest.importorskip("torch")
    timing = tmp_path / "timing.json"
    script = REPO / "scripts" / "bench_baselines" / "torch_cnn.py"
    cmd = [sys.executable, str(script), "--samples", "64", "--epochs", "2", "--timing-out", str(timing)]
    run = bench.run_process("torch", cmd, tmp_path / "t.log")
    assert run.ok, Path(run.log).read_text()
    read = bench.read_baseline_timing(timing, run.start_time)
    assert len(read["samples_per_second"]) == 2 and all(v > 0 for v in read["samples_per_second"])
    assert 0 < read["first_step_s"] < run.wall_s
    assert read["memory_format"] == "channels_last"


@pytest.mark.slow
def test_display_cost_times_the_bar_itself_against_the_measured_epoch(bench, tmp_path):
    # the worker drives dlkit's Progress callback on a pseudo-terminal and on a file; the difference is the bar
    runner = bench.Bench(tmp_path, 1, True, lambda message: None)
    measured = _run(bench, 5.0, [100.0, 200.0, 200.0], 800, 4.0)
    measured.extra |= {"steps_per_epoch": 5, "steps_per_execution": 2}
    runner.pair_runs["progress"] = {"terminal": [measured], "file": [measured]}
    runner.results["progress"] = bench.summarize_pairs([measured], [measured], names=("terminal", "file"))
    runner.results["progress"]["note"] = "n"
    runner._display_cost(samples=120)  # epochs of 120 / 200 = 0.6 s (the bar appears at 0.5 s), 1.2 CPU-s
    display = runner.results["progress"]["display"]
    assert display["updates_per_epoch"] == 3 and display["epoch_s"] == pytest.approx(0.6)
    assert display["bar_drawn"] and "━" in (tmp_path / "progress-terminal.log").read_text(encoding="utf-8")
    assert display["terminal_cpu_s"] > display["file_cpu_s"] > 0  # the live bar redraws; the file gets one line
    assert display["of_epoch_cpu"] == pytest.approx(display["display_cpu_s"] / 1.2)
    text = bench.render_markdown(_report(bench, "now", "python scripts/bench.py", runner.results))
    assert "The bar's own work, timed directly" in text and "3 update(s) over a 0.60 s epoch" in text
    assert "never did here" not in text
