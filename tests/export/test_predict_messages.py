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


def test_tf_message_keeps_only_the_readable_part() -> None:
    from dlkit.errors import tf_message

    error = ValueError(
        "{{function_node __wrapped__DecodeImage_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
        "Unknown image file format. [Op:DecodeImage] name: \nsecond line"
    )
    assert tf_message(error) == "Unknown image file format."
    assert tf_message(ValueError("")) == "ValueError"
