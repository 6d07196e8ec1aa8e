"""dogs_vs_cats/images.py: decoding every kind of image file, and judging the ones that cannot be used.

What TensorFlow 2.21's tf.io.decode_image(channels=3, expand_animations=False) does with each
file below (test_what_tensorflow_decodes pins it):
  zero-byte .jpg          InvalidArgumentError "Input is empty"
  truncated JPEG          InvalidArgumentError "jpeg::Uncompress failed" (libjpeg logs "Premature
                          end of JPEG data"); no partial image, but split also checks the
                          end-of-image marker so as not to depend on that
  text named .jpg         InvalidArgumentError "Unknown image file format"
  Thumbs.db               InvalidArgumentError "Unknown image file format"
  PNG / GIF under .jpg    decoded by content, not by name: (40, 40, 3)
  grayscale / CMYK JPEG   (40, 40, 3) RGB
  1x1, 4000x3000 JPEG     (1, 1, 3), (3000, 4000, 3)
"""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dogs_vs_cats import images
from dogs_vs_cats.images import decode_image, load_image
from helpers import EMPTY, TRUNCATED, UNREADABLE, image_array, jpeg_bytes, write_bad_files


def check_image(path):
    """Why split would skip `path`, or None when it is usable."""
    return images.read_image(path)[1]


@pytest.mark.parametrize("name", ["cat.102.jpg", "dog.103.jpg", "cat.105.jpg", "dog.106.jpg",
                                  "cat.107.jpg", "dog.108.jpg"])
def test_odd_but_usable_files_decode_to_rgb(tmp_path, name):
    expected = write_bad_files(tmp_path)
    image = decode_image(tf.io.read_file(str(tmp_path / name)))
    assert image.dtype == tf.uint8 and image.shape == (*expected[name], 3)
    assert load_image(str(tmp_path / name), 48).shape == (48, 48, 3)
    assert check_image(tmp_path / name) is None


def test_decoded_colours_match_pillow(tmp_path):
    """Grayscale and CMYK JPEGs come out as the same RGB that Pillow gives (CMYK not inverted)."""
    write_bad_files(tmp_path)
    for name in ("cat.105.jpg", "dog.106.jpg", "cat.102.jpg"):
        ours = decode_image(tf.io.read_file(str(tmp_path / name))).numpy().astype(int)
        pillow = np.asarray(Image.open(tmp_path / name).convert("RGB")).astype(int)
        assert np.abs(ours - pillow).max() <= 3, name


def test_what_tensorflow_decodes(tmp_path):
    """Pins the decoder's behaviour the module docstring describes."""
    expected = write_bad_files(tmp_path)
    for name, outcome in expected.items():
        data = (tmp_path / name).read_bytes()
        if outcome in (EMPTY, TRUNCATED, UNREADABLE) or name == "Thumbs.db":
            with pytest.raises(tf.errors.InvalidArgumentError):
                decode_image(data)
        elif isinstance(outcome, tuple):
            assert decode_image(data).shape == (*outcome, 3)


def test_truncated_jpeg_is_caught_even_by_a_lenient_decoder(tmp_path, monkeypatch):
    """If a decoder filled in a truncated JPEG's missing rows, split must still skip it."""
    write_bad_files(tmp_path)
    monkeypatch.setattr(images, "decode_image", lambda data: tf.zeros((1, 1, 3), tf.uint8))
    assert check_image(tmp_path / "cat.101.jpg") == TRUNCATED
    assert check_image(tmp_path / "cat.100.jpg") == EMPTY
    assert check_image(tmp_path / "dog.106.jpg") is None


def test_jpeg_with_bytes_after_the_end_marker_is_usable(tmp_path):
    path = tmp_path / "cat.1.jpg"
    path.write_bytes(jpeg_bytes(image_array("cat", 1)) + b"\x00trailing garbage\xff\xda\x00\x08")
    assert check_image(path) is None


def test_end_marker_check_on_tricky_jpegs():
    pixels = image_array("dog", 7, size=120)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", restart_marker_rows=1)  # RSTn inside the scan
    with_restarts = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", progressive=True)  # several scans
    progressive = buffer.getvalue()
    # An EXIF segment carrying a thumbnail, which has its own end-of-image marker.
    exif = b"Exif\x00\x00" + jpeg_bytes(pixels[:16, :16])
    plain = jpeg_bytes(pixels)
    with_thumbnail = plain[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + plain[2:]
    for data in (with_restarts, progressive, with_thumbnail, plain):
        assert images.jpeg_complete(data)
        for cut in (1, 2, 7, len(data) // 3, len(data) - 3):
            assert not images.jpeg_complete(data[:-cut]), cut
