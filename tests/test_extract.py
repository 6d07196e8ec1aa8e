"""stages/extract.py and dogs_vs_cats/conv_base.py: preprocessing, the conv base, features, interruptions."""

import collections
import errno
import io
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dogs_vs_cats.conv_base import build_conv_base, weightless_conv_base
from dogs_vs_cats.core.atomic import DiskFull
from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.layout import FEATURES_DIR, SPLIT_DIR
from dogs_vs_cats.core.params import ConvBase, ParamError
from dogs_vs_cats.images import load_image
from helpers import REPO, TEST_PARAMS, copy_project, make_raw, merged, subprocess_env, write_params
from stages import extract, split

# What shutil.disk_usage returns (a named tuple), with the free space a test sets.
DiskUsage = collections.namedtuple("DiskUsage", "total used free")


def conv_base_params(**overrides):
    return ConvBase(**merged(TEST_PARAMS, {"conv_base": overrides})["conv_base"])


@pytest.fixture(scope="module")
def vgg16_32():
    """The random, seeded VGG16 conv base at 32x32 and its preprocessing function."""
    return build_conv_base(conv_base_params(input_size=32), "float32")


@pytest.mark.parametrize("fmt, shape, size", [
    ("PNG", (40, 40), 32),
    ("PNG", (30, 50), 40),   # not square: stretched to size x size
    ("JPEG", (40, 40), 40),  # same size: resizing is the identity
    ("JPEG", (64, 48), 32),
])
def test_preprocessing_is_vgg16_preprocess_input(tmp_path, vgg16_32, fmt, shape, size):
    _, preprocess = vgg16_32
    path = tmp_path / f"image.{fmt.lower()}"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path, fmt)

    ours = np.asarray(preprocess(load_image(str(path), size)))
    assert ours.shape == (size, size, 3) and ours.dtype == np.float32

    def reference(pixels):
        """Keras' own VGG16 preprocessing of the image resized as extract resizes it."""
        resized = tf.image.resize(pixels, (size, size)).numpy()
        return keras.applications.vgg16.preprocess_input(resized.copy())

    # The same resized image, decoded by TensorFlow's format-specific decoder: exactly equal.
    decoded = (tf.io.decode_png if fmt == "PNG" else tf.io.decode_jpeg)(path.read_bytes(), channels=3)
    np.testing.assert_allclose(ours, reference(decoded), rtol=0, atol=1e-3)
    # Decoded independently by Pillow: PNG is lossless, so equal; for JPEG the two libjpeg set-ups
    # (IDCT, chroma upsampling) may differ by a few grey levels on noisy pictures.
    pillow = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_allclose(ours, reference(pillow), rtol=0, atol=1e-3 if fmt == "PNG" else 4)


def test_vgg16_preprocessing_is_bgr_minus_imagenet_mean(tmp_path, vgg16_32):
    """Caffe-style: RGB to BGR, ImageNet channel means subtracted, no scaling to [0, 1]."""
    _, preprocess = vgg16_32
    path = tmp_path / "flat.png"
    Image.new("RGB", (32, 32), (200, 100, 50)).save(path)
    ours = np.asarray(preprocess(load_image(str(path), 32)))
    np.testing.assert_allclose(ours[5, 7], [50 - 103.939, 100 - 116.779, 200 - 123.68], atol=1e-3)


def test_feature_shape_vgg16_at_150():
    conv_base, preprocess = build_conv_base(conv_base_params(input_size=150), "float32")
    images = preprocess(np.random.default_rng(0).uniform(0, 255, (2, 150, 150, 3)).astype("float32"))
    assert conv_base(images, training=False).shape == (2, 4, 4, 512)
    assert not conv_base.trainable


def test_random_weights_are_seeded():
    a, _ = build_conv_base(conv_base_params(seed=3), "float32")
    b, _ = build_conv_base(conv_base_params(seed=3), "float32")
    c, _ = build_conv_base(conv_base_params(seed=4), "float32")
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_bad_precision_and_model_name_name_the_parameter():
    with pytest.raises(ParamError, match="extract.precision"):
        build_conv_base(conv_base_params(), "float8")
    with pytest.raises(ParamError, match="conv_base.name"):
        build_conv_base(conv_base_params(name="no_such_net"), "float32")


def run_extract(monkeypatch, subset):
    monkeypatch.setattr(sys, "argv", ["stages/extract.py", subset])
    extract.main()


def test_extract_writes_aligned_features_labels_and_files(project, monkeypatch, vgg16_32):
    make_raw(project / "data/raw", 9)
    write_params(project, {"split": {"train": 5, "validation": 2, "test": 2}})
    split.main()
    run_extract(monkeypatch, "train")

    out = FEATURES_DIR / "train"
    features = np.load(out / "features.npy")
    labels = np.load(out / "labels.npy")
    files = (out / "files.txt").read_text().splitlines()
    assert features.shape == (10, 1, 1, 512) and features.dtype == np.float32
    assert labels.shape == (10,)
    assert len(files) == 10

    # files.txt names every image of the subset once, and each row's label is its folder's class.
    on_disk = sorted(str(p.relative_to(SPLIT_DIR)) for p in (SPLIT_DIR / "train").rglob("*.jpg"))
    assert sorted(files) == on_disk
    for name, label in zip(files, labels, strict=True):
        assert name.split("/")[1] == ("cat", "dog")[int(label)], (name, label)
    assert labels.tolist() == [0.0] * 5 + [1.0] * 5

    # Row i holds the features of the image on line i.
    conv_base, preprocess = vgg16_32
    for i in (0, 4, 5, 9):
        image = preprocess(load_image(str(SPLIT_DIR / files[i]), 32))
        expected = conv_base(image[None], training=False).numpy()[0]
        np.testing.assert_allclose(features[i], expected, rtol=1e-4, atol=1e-4)
    assert not (FEATURES_DIR / ".train.tmp").exists()


def test_extract_rejects_unknown_subset(project, monkeypatch):
    write_params(project)
    with pytest.raises(UserError, match=r"no subset 'training'. Fix: run python -m stages.extract"):
        run_extract(monkeypatch, "training")


@pytest.mark.slow  # a fresh Python that starts TensorFlow
def test_failed_weights_download_names_the_parameter(tmp_path):
    """Offline, `weights: imagenet` stops with one line that names conv_base.weights and the way out.

    In a fresh process whose Keras cache is empty and whose downloads go to a closed port, so the
    download really runs and fails here, whether or not the machine has a network."""
    build = ("from dogs_vs_cats.conv_base import build_conv_base; "
             "from dogs_vs_cats.core.params import ConvBase; from dogs_vs_cats.core.errors import run_stage; "
             "run_stage(lambda: build_conv_base(ConvBase('vgg16', 'imagenet', 32, 0)))")
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env = dict(subprocess_env(), KERAS_HOME=str(tmp_path), HTTPS_PROXY=closed, https_proxy=closed,
               HTTP_PROXY=closed, http_proxy=closed, no_proxy="", NO_PROXY="")
    result = subprocess.run([sys.executable, "-c", build], cwd=REPO, env=env, text=True, capture_output=True,
                            timeout=120)
    message = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1, result.stderr
    assert message.startswith("error: params.yaml conv_base.weights: downloading the ImageNet weights failed")
    assert "Fix: set conv_base.weights to a local weights file (.h5), or to null" in message
    assert not list(tmp_path.rglob("*.h5"))  # nothing half-downloaded left as if complete


def test_weightless_conv_base_has_the_architecture_and_refuses_a_too_small_input():
    names = [layer.name for layer in weightless_conv_base("vgg16", 32).layers]
    assert names[0].startswith("input") and names[1:3] == ["block1_conv1", "block1_conv2"]
    assert names[-1] == "block5_pool" and len(names) == 19
    with pytest.raises(ParamError, match=r"conv_base\.input_size: vgg16 cannot take 16x16 images"):
        weightless_conv_base("vgg16", 16)


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

    # Killed while it computes into a store of its own (the first run's has every photo already).
    command = [sys.executable, "-m", "stages.extract", "train"]
    store = tmp_path / "store"
    env = dict(subprocess_env(), FEATURE_STORE=str(store))
    process = subprocess.Popen(command, cwd=project, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any(store.rglob("*.npy")):  # it has computed a batch
            assert process.poll() is None, "extract ended before it was interrupted"
            assert time.monotonic() < deadline, "extract never started computing"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL, "extract finished before it could be killed"
    assert not out.exists(), "a killed extract must not leave data/features/train"

    # Again: the photos computed before the kill from the store, the rest computed now.
    subprocess.run(command, cwd=project, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    assert not tmp.exists(), "no temporary folder is left"
    assert sorted(p.name for p in out.iterdir()) == sorted(reference)
    for name, data in reference.items():
        assert (out / name).read_bytes() == data, f"{name} differs from an uninterrupted run"


def test_too_little_disk_space_is_one_line_before_any_work(project, monkeypatch):
    make_raw(project / "data/raw", 9)
    write_params(project, {"split": {"train": 5, "validation": 2, "test": 2}})
    split.main()
    free = 10 * 512 * 4 - 1  # one byte less than 10 images of (1, 1, 512) float32 features
    usage = DiskUsage(total=10**9, used=10**9 - free, free=free)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage)
    with pytest.raises(DiskFull) as error:
        run_extract(monkeypatch, "train")
    message = str(error.value)
    assert message.startswith("error: no space left for data/features") and "\n" not in message
    assert "needs about 0 MB, 0 MB free" in message
    assert not (FEATURES_DIR / "train").exists() and not (FEATURES_DIR / ".train.tmp").exists()


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(project, monkeypatch):
    make_raw(project / "data/raw", 9)
    write_params(project, {"split": {"train": 5, "validation": 2, "test": 2}})
    split.main()

    save = np.save

    def no_space(file, *args, **kwargs):
        if isinstance(file, io.BytesIO):  # the feature store's entries, in memory first
            return save(file, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", no_space)  # features are written; the labels find the disk full
    with pytest.raises(DiskFull) as error:
        run_extract(monkeypatch, "train")
    assert str(error.value).startswith("error: no space left for data/features/train: it ")
    assert not (FEATURES_DIR / "train").exists() and not (FEATURES_DIR / ".train.tmp").exists()


def test_a_weights_file_that_does_not_fit_names_the_parameter(tmp_path):
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"not a weights file")
    with pytest.raises(ParamError, match=r"conv_base\.weights: .*broken\.weights\.h5 does not load into"):
        build_conv_base(conv_base_params(weights=str(broken)))
