"""Data problems seen through the CLI (exit 3, no traceback, nothing written) and the quickstart config's data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlkit.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def test_train_dry_run_reports_bad_data_with_exit_3(tmp_path, write_config, runner):
    (tmp_path / "train.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,,0\n7,8,1\n")
    config = write_config(
        """
        data: {source: csv, train: train.csv, label: label, validation_split: 0}
        model:
          input_shape: [2]
          layers: [{type: Dense, units: 2, activation: softmax}]
        loss: sparse_categorical_crossentropy
        """
    )
    runs = tmp_path / "runs"
    result = runner.invoke(cli, ["train", str(config), "--dry-run", "--runs-dir", str(runs)])
    assert result.exit_code == 3, result.output
    assert f"{tmp_path / 'train.csv'}:4  data.train: column 'b' is nan." in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not runs.exists()


def test_train_dry_run_reports_loss_label_mismatch(tmp_path, write_config, runner):
    np.savez(tmp_path / "d.npz", x=np.ones((20, 3), dtype=np.float32), y=np.arange(20) % 2)
    config = write_config(
        """
        data: {source: npz, path: d.npz}
        model:
          input_shape: [3]
          layers: [{type: Dense, units: 2, activation: softmax}]
        loss: categorical_crossentropy
        """
    )
    result = runner.invoke(cli, ["train", str(config), "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 3, result.output
    assert "Did you mean 'sparse_categorical_crossentropy'?" in result.stderr


def test_quickstart_data_fits_its_model():
    from dlkit.config.loader import load_config
    from dlkit.data import load_data, preflight
    from dlkit.models import build_model

    cfg = load_config([ROOT / "configs" / "quickstart.yaml"]).config
    bundle = load_data(cfg)
    assert cfg.data.source == "sklearn:digits" and bundle.arrays["train"][0].shape[1:] == (8, 8, 1)
    assert bundle.counts["test"] > 0 and bundle.validation is not None
    model = build_model(cfg, preprocessing=bundle.preprocessing)
    preflight(cfg, bundle, model)
    assert any(type(layer).__name__ == "Rescaling" for layer in model.layers)
