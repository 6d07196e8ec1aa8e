"""Issue 4: dirty image folders, bad split parameters, and an interrupted extract.

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
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import yaml
from PIL import Image

from stages import common, extract, split
from stages.common import FEATURES_DIR, SPLIT_DIR, SPLIT_REPORT, decode_image, load_image

from conftest import copy_project, image_array, make_raw, save_image, subprocess_env, write_params


def check_image(path):
    """Why split would skip `path`, or None when it is usable."""
    return common.read_image(path)[1]


EMPTY = "empty file"
TRUNCATED = "truncated JPEG (no end-of-image marker)"
UNREADABLE = "not a readable image (corrupt, truncated or not an image format extract reads)"
NO_CLASS = "name matches no class"


def jpeg_bytes(pixels, mode="RGB"):
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "JPEG")
    return buffer.getvalue()


def large_smooth_image():
    """4000 x 3000 RGB, smooth so that the JPEG stays small."""
    y, x = np.mgrid[0:3000, 0:4000]
    return np.stack([x * 255 // 4000, y * 255 // 3000, np.full_like(x, 90)], axis=-1).astype(np.uint8)


def write_bad_files(raw):
    """Beside good images, every kind of dirty file; returns {file name: expected outcome}.

    The outcome is a skip reason, or the (H, W) of a file that must be usable.
    """
    raw.mkdir(parents=True, exist_ok=True)
    expected = {}

    def put(name, data, outcome):
        (raw / name).write_bytes(data)
        expected[name] = outcome

    put("cat.100.jpg", b"", EMPTY)
    whole = jpeg_bytes(image_array("cat", 101, size=200))
    put("cat.101.jpg", whole[:len(whole) // 2], TRUNCATED)
    for name, fmt in (("cat.102.jpg", "PNG"), ("dog.103.jpg", "GIF")):  # wrong extension
        buffer = io.BytesIO()
        Image.fromarray(image_array(name[:3], 0)).save(buffer, fmt)
        put(name, buffer.getvalue(), (40, 40))
    put("dog.104.jpg", b"This is not a picture of a dog.\n", UNREADABLE)
    put("cat.105.jpg", jpeg_bytes(image_array("cat", 105), "L"), (40, 40))
    put("dog.106.jpg", jpeg_bytes(image_array("dog", 106), "CMYK"), (40, 40))
    put("cat.107.jpg", jpeg_bytes(np.full((1, 1, 3), 200, np.uint8)), (1, 1))
    put("dog.108.jpg", jpeg_bytes(large_smooth_image()), (3000, 4000))
    # An OLE compound file, as Windows leaves in image folders.
    put("Thumbs.db", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000), NO_CLASS)
    put("bird.1.jpg", jpeg_bytes(image_array("cat", 1)), NO_CLASS)
    return expected


@pytest.fixture
def dirty(project):
    """A flat raw folder: 6 good images per class plus the dirty files; cwd is the project."""
    raw = project / "data/raw"
    make_raw(raw, 6)
    return project, write_bad_files(raw)


def test_split_skips_unusable_files_and_reports_why(dirty, capsys):
    project, expected = dirty
    # Every usable image is needed (6 good + 3 odd-but-usable per class): all must pass.
    write_params(project, {"split": {"train": 5, "validation": 2, "test": 2}})
    split.main()

    report = json.loads(SPLIT_REPORT.read_text())
    assert report["usable"] == {"cats": 9, "dogs": 9}
    reasons = {}
    for name, outcome in expected.items():
        if isinstance(outcome, str):
            reasons.setdefault(outcome, []).append(name)
    assert {reason: sorted(os.path.basename(f) for f in files)
            for reason, files in report["skipped_files"].items()} == {
        reason: sorted(names) for reason, names in reasons.items()}
    assert report["skipped"] == {reason: len(names) for reason, names in reasons.items()}

    out = capsys.readouterr().out
    for reason, names in reasons.items():
        assert f"skipped {len(names)} file(s), {reason}" in out
    assert "report: data/split/report.json" in out

    # Every usable odd file was picked, and loads as an RGB image of the conv base's input size.
    picked = {p.name: p for p in SPLIT_DIR.rglob("*.jpg")}
    for name, outcome in expected.items():
        if isinstance(outcome, tuple):
            assert name in picked, name
            assert load_image(str(picked[name]), 32).shape == (32, 32, 3)
    assert len(picked) == 18


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
    expected = write_bad_files(tmp_path)
    for name in ("cat.105.jpg", "dog.106.jpg", "cat.102.jpg"):
        ours = decode_image(tf.io.read_file(str(tmp_path / name))).numpy().astype(int)
        pillow = np.asarray(Image.open(tmp_path / name).convert("RGB")).astype(int)
        assert np.abs(ours - pillow).max() <= 3, name
    assert expected


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
    monkeypatch.setattr(common, "decode_image", lambda data: tf.zeros((1, 1, 3), tf.uint8))
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
        assert common.jpeg_complete(data)
        for cut in (1, 2, 7, len(data) // 3, len(data) - 3):
            assert not common.jpeg_complete(data[:-cut]), cut


def test_per_class_folders_with_junk(project):
    raw = project / "data/raw"
    make_raw(raw, 4, "folders")
    (raw / "Cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(100))
    (raw / "Dog" / "broken.jpg").write_bytes(b"")
    save_image(raw / "Bird" / "1.jpg", "cat", 1)
    (raw / "README.txt").write_text("PetImages\n")
    write_params(project, {"split": {"train": 2, "validation": 1, "test": 1}})
    split.main()
    report = json.loads(SPLIT_REPORT.read_text())
    assert report["usable"] == {"cats": 4, "dogs": 4}
    names = {reason: sorted(os.path.relpath(f, raw) for f in files)
             for reason, files in report["skipped_files"].items()}
    assert names == {UNREADABLE: ["Cat/Thumbs.db"], EMPTY: ["Dog/broken.jpg"],
                     NO_CLASS: ["Bird/1.jpg", "README.txt"]}


# --- Parameter validation: a SystemExit naming the parameter, before anything is written ----------


@pytest.mark.parametrize("overrides, parameter", [
    ({"raw_dir": None}, "split.raw_dir"),
    ({"raw_dir": "data/nowhere"}, "split.raw_dir"),
    ({"train": 0}, "split.train"),
    ({"validation": -2}, "split.validation"),
    ({"test": 0}, "split.test"),
    ({"test": 1.5}, "split.test"),
    ({"seed": "abc"}, "split.seed"),
])
def test_bad_split_params_name_the_parameter(project, overrides, parameter):
    make_raw(project / "data/raw", 8)
    write_params(project, {"split": overrides})
    with pytest.raises(SystemExit) as error:
        split.main()
    assert parameter in str(error.value.code)
    assert not SPLIT_DIR.exists()


def test_missing_raw_dir_key(project):
    make_raw(project / "data/raw", 8)
    params = write_params(project)
    del params["split"]["raw_dir"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit, match=r"split\.raw_dir"):
        split.main()
    assert not SPLIT_DIR.exists()


@pytest.mark.parametrize("layout", ["flat", "folders"])
def test_a_class_without_images(project, layout):
    make_raw(project / "data/raw", 8, layout)
    for path in list((project / "data/raw").rglob("*")):
        if "dog" in str(path.relative_to(project / "data/raw")).lower() and path.is_file():
            path.unlink()
    write_params(project)
    with pytest.raises(SystemExit) as error:
        split.main()
    message = str(error.value.code)
    assert "split.raw_dir" in message and "dogs" in message
    assert not SPLIT_DIR.exists()


# --- An interrupted extract leaves no half-written output ----------------------------------------


@pytest.mark.slow
def test_interrupted_extract_leaves_nothing_and_reruns_cleanly(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    make_raw(project / "data/raw", 32, size=64)
    write_params(project, {"split": {"train": 30, "validation": 1, "test": 1},
                           "conv_base": {"input_size": 96}, "extract": {"batch_size": 4}})
    split.main()
    assert len(list((SPLIT_DIR / "train").rglob("*.jpg"))) == 60

    # The uninterrupted result, for comparison.
    monkeypatch.setattr(sys, "argv", ["stages/extract.py", "train"])
    extract.main()
    out, tmp = FEATURES_DIR / "train", FEATURES_DIR / ".train.tmp"
    reference = {name: (out / name).read_bytes() for name in ("features.npy", "labels.npy", "files.txt")}
    shutil.rmtree(out)

    command = [sys.executable, "-m", "stages.extract", "train"]
    process = subprocess.Popen(command, cwd=project, env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (tmp / "features.npy").exists():  # it has started writing
            assert process.poll() is None, "extract ended before it was interrupted"
            assert time.monotonic() < deadline, "extract never started writing"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL, "extract finished before it could be killed"
    assert not out.exists(), "a killed extract must not leave data/features/train"

    subprocess.run(command, cwd=project, env=subprocess_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not tmp.exists(), "the stale temporary folder is cleaned up"
    assert sorted(p.name for p in out.iterdir()) == sorted(reference)
    for name, data in reference.items():
        assert (out / name).read_bytes() == data, f"{name} differs from an uninterrupted run"
