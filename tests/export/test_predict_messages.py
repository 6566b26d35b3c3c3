"""Messages of dlkit predict for inputs TensorFlow cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlkit.errors import DataError
from dlkit.export.predict import read_inputs


def test_unreadable_image_gives_the_readable_part_of_the_tf_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(DataError) as err:
        read_inputs([bad], (8, 8, 1), None)
    assert str(err.value) == (
        f"{bad}  cannot read image: Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP required."
    )
