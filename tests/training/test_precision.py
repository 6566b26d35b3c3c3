"""The precision policy picked for each device."""

from __future__ import annotations

import pytest

from dlkit.training.precision import Device, choose_policy


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        (Device("cpu", "x86_64"), "float32"),
        (Device("gpu", "NVIDIA H200", 1, (9, 0)), "mixed_bfloat16"),
        (Device("gpu", "NVIDIA A100", 1, (8, 0)), "mixed_bfloat16"),
        (Device("gpu", "Tesla V100", 1, (7, 0)), "mixed_float16"),
        (Device("gpu", "Tesla T4", 1, (7, 5)), "mixed_float16"),
        (Device("gpu", "Tesla P100", 1, (6, 0)), "float32"),
        (Device("tpu", "TPU", 8), "mixed_bfloat16"),
    ],
)
def test_auto_policy(device, expected):
    assert choose_policy("auto", device) == expected


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_explicit_policy_is_honoured(policy):
    assert choose_policy(policy, Device("gpu", "NVIDIA H200", 1, (9, 0))) == policy


def test_device_as_dict_records_compute_capability():
    assert Device("gpu", "NVIDIA H200", 1, (9, 0)).as_dict() == {
        "kind": "gpu",
        "name": "NVIDIA H200",
        "count": 1,
        "compute_capability": "9.0",
    }
