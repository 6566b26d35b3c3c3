"""The one npz reader behind the training source, ``evaluate --data FILE.npz`` and ``predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlkit.data.npz_arrays import read_npz
from dlkit.errors import DataError

SAVEZ_HINT = "Write it with numpy.savez(path, x=..., y=...); object arrays are refused."


def _truncated(path: Path) -> None:
    np.savez(path, x=np.arange(100.0))
    path.write_bytes(path.read_bytes()[:60])  # starts like a zip, ends before the directory


def _corrupt_member(path: Path) -> None:
    np.savez_compressed(path, x=np.random.default_rng(0).random(1000), y=np.zeros(1000))
    data = bytearray(path.read_bytes())
    data[200:600] = bytes(b ^ 0xFF for b in data[200:600])  # the deflated bytes of the member
    path.write_bytes(bytes(data))


def _npy_named_npz(path: Path) -> None:
    with open(path, "wb") as fh:
        np.save(fh, np.zeros(3))


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (lambda p: p.write_text("a,b\n1,2\n"), "it is not a zip archive of arrays (numpy.savez writes one)"),
        (_truncated, "File is not a zip file"),
        (lambda p: p.write_bytes(b""), "No data left in file"),
        (_corrupt_member, "Error -3 while decompressing data"),
        (_npy_named_npz, "it holds a single .npy array, not an archive of named arrays"),
        (lambda p: p.mkdir(), "Is a directory"),
    ],
    ids=["text", "truncated-zip", "empty", "corrupt-member", "npy", "folder"],
)
def test_unreadable_files_are_data_errors_naming_file_and_key(tmp_path: Path, write, reason: str) -> None:
    path = tmp_path / "d.npz"
    write(path)
    with pytest.raises(DataError) as err:
        read_npz(path, ("x", "y"), where="data.train")
    assert err.value.exit_code == 3
    (problem,) = err.value.problems
    assert (problem.file, problem.path, problem.hint) == (str(path), "data.train", SAVEZ_HINT)
    assert problem.message.startswith("cannot read as .npz (") and reason in problem.message


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([1, "a", None], dtype=object), y=np.zeros(3))
    with pytest.raises(DataError) as err:
        read_npz(path, ("x", "y"), where="--data")
    assert str(err.value) == (
        f"{path}  --data: cannot read as .npz (Object arrays cannot be loaded when allow_pickle=False). {SAVEZ_HINT}"
    )


def test_missing_array_suggests_the_nearest_name_and_lists_the_arrays(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(DataError) as err:
        read_npz(path, ("features", "lables"), where="data.path", hint="set data.x_key / data.y_key.")
    assert err.value.exit_code == 3
    assert str(err.value) == (
        f"{path}  data.path: no array 'lables' in the archive. Did you mean 'labels'? "
        "Arrays: features, labels; set data.x_key / data.y_key."
    )


def test_missing_array_points_at_its_own_key_and_the_first_missing_wins(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, a=np.zeros(3))
    paths = {"x": "data.x_key", "y": "data.y_key"}
    with pytest.raises(DataError) as err:
        read_npz(path, ("x", "y"), where="data.train", name_paths=paths)
    assert str(err.value) == f"{path}  data.x_key: no array 'x' in the archive. Arrays: a."
    np.savez(path, x=np.zeros(3))
    with pytest.raises(DataError, match=r"  data\.y_key: no array 'y' in the archive\. Arrays: x\.$"):
        read_npz(path, ("x", "y"), where="data.train", name_paths=paths)


def test_empty_archive_says_it_holds_none(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    np.savez(path)
    with pytest.raises(DataError) as err:
        read_npz(path, ("x",), single=True)
    assert str(err.value) == f"{path}  no array 'x' in the archive. Arrays: none."


def test_single_array_fallback_only_when_asked_and_unambiguous(tmp_path: Path) -> None:
    one = tmp_path / "one.npz"
    np.savez(one, inputs=np.arange(6).reshape(3, 2))
    (x,) = read_npz(one, ("x",), single=True)
    assert x.tolist() == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(DataError, match=r"no array 'x' in the archive\. Arrays: inputs\.$"):
        read_npz(one, ("x",))
    with pytest.raises(DataError, match=r"no array 'x'"):  # two names asked: no guessing
        read_npz(one, ("x", "y"), single=True)
    two = tmp_path / "two.npz"
    np.savez(two, a=np.zeros(2), b=np.ones(2))
    with pytest.raises(DataError, match=r"no array 'x' in the archive\. Arrays: a, b\.$"):
        read_npz(two, ("x",), single=True)


def test_arrays_come_back_in_the_order_asked_with_their_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, y=np.array([1, 0], np.int64), x=np.full((2, 2), 7, np.uint8))
    x, y = read_npz(Path(path), ("x", "y"))
    assert (x.dtype, y.dtype) == (np.uint8, np.int64)
    assert x.tolist() == [[7, 7], [7, 7]] and y.tolist() == [1, 0]
    (again,) = read_npz(str(path), ("x",), single=True)  # the named array wins over the fallback
    assert again.dtype == np.uint8


def test_evaluate_data_and_predict_errors_come_from_the_shared_reader(tmp_path: Path) -> None:
    from dlkit.export.predict import read_inputs
    from dlkit.export.target import standalone_split

    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(DataError) as err:
        standalone_split(path, "test")
    assert str(err.value) == (
        f"{path}  --data: no array 'y' in the archive. "
        "Arrays: x, labels; outside a run folder dlkit reads the arrays named x and y."
    )
    np.savez(path, a=np.zeros((3, 2)), b=np.zeros(3))
    with pytest.raises(DataError) as err:
        read_inputs([path], (2,), None)
    assert str(err.value) == (
        f"{path}  no array 'x' in the archive. Arrays: a, b; save the inputs as 'x' or as the file's only array."
    )
    path.write_bytes(b"")
    for read in (lambda: standalone_split(path, "test"), lambda: read_inputs([path], (2,), None)):
        with pytest.raises(DataError, match=r"cannot read as \.npz \(No data left in file\)") as err:
            read()
        assert err.value.exit_code == 3


def test_training_reader_refuses_a_scalar_array(tmp_path):
    from data_helpers import make_config

    from dlkit.data import load_data

    path = tmp_path / "d.npz"
    np.savez(path, x=np.float32(5), y=np.arange(3))
    with pytest.raises(DataError) as info:
        load_data(make_config({"source": "npz", "path": str(path)}))
    problem = info.value.problems[0]
    assert problem.message == "'x' is a single number, not one row per sample"
    assert problem.file == str(path) and problem.path == "data.path"


def test_predict_refuses_non_numeric_npz_inputs(tmp_path):
    from dlkit.export.predict import read_inputs

    path = tmp_path / "words.npz"
    np.savez(path, x=np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(DataError) as info:
        read_inputs([path], (2,), None)
    assert info.value.exit_code == 3
    assert str(info.value) == f"{path}  inputs must be numeric (got <U1)"


def test_a_scalar_array_is_refused_for_evaluate_and_predict_too(tmp_path):
    from dlkit.export.predict import read_inputs
    from dlkit.export.target import standalone_split

    path = tmp_path / "s.npz"
    np.savez(path, x=np.float32(5), y=np.arange(3))
    for read in (lambda: standalone_split(path, "test"), lambda: read_inputs([path], (2,), None)):
        with pytest.raises(DataError) as info:
            read()
        assert info.value.problems[0].message == "'x' is a single number, not one row per sample"
