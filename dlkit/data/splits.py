"""Seeded holdout: ``validation_split`` / ``test_split`` fractions of the training rows when no file is given."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dlkit.data.bundle import Split

log = logging.getLogger("dlkit.data")


def _size(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(n * fraction)))


def hold_out(splits: dict[str, Split], cfg: Any) -> dict[str, Split]:
    """Cut the missing validation/test splits out of ``train`` with one seeded permutation.

    Splits given as files are used as they are; the remaining training rows keep their file order (the
    pipeline shuffles them). The same seed and data always give the same split.
    """
    out = dict(splits)
    train = splits["train"]
    n = len(train)
    n_test = _size(n, cfg.data.test_split) if "test" not in splits else 0
    # Both fractions are of all the rows (the schema keeps their sum below 1): 0.2 + 0.2 -> 60/20/20.
    n_val = min(_size(n, cfg.data.validation_split), n - n_test - 1) if "validation" not in splits else 0
    if n_test == 0 and n_val == 0:
        return out
    order = np.random.default_rng(cfg.seed).permutation(n)
    if n_test:
        out["test"] = train.take(np.sort(order[:n_test]))
    if n_val:
        out["validation"] = train.take(np.sort(order[n_test : n_test + n_val]))
    out["train"] = train.take(np.sort(order[n_test + n_val :]))
    log.info("held out %d validation and %d test samples of %d (seed %d)", n_val, n_test, n, cfg.seed)
    return out
