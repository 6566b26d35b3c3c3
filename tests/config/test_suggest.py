from __future__ import annotations

import pytest

from dlkit.config.suggest import did_you_mean


@pytest.mark.parametrize(
    ("name", "candidates", "expected"),
    [
        ("epoch", ["epochs", "precision"], "epochs"),
        ("activaton", ["activation", "units"], "activation"),
        ("mixed_fp16", ["auto", "float32", "mixed_float16", "mixed_bfloat16"], "mixed_float16"),
        ("maxpooling2d", ["MaxPooling2D", "MaxPooling1D"], "MaxPooling2D"),
        ("conv_2d", ["Conv2D", "Conv1D"], "Conv2D"),
        ("zzz", ["epochs", "precision"], None),
        ("", ["a"], None),
        (3, ["3"], None),
        ("epochs", ["epochs"], None),
    ],
)
def test_did_you_mean(name, candidates, expected):
    assert did_you_mean(name, candidates) == expected
