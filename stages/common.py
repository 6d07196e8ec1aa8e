"""What the stages share: paths, parameters, image decoding, the conv base, safe writes.

Every stage lists this file in its `deps` in dvc.yaml, so a change here reruns them all.
"""

import contextlib
import json
import os
import shutil
from pathlib import Path

from ruamel.yaml import YAML

# Quiet TensorFlow's C++ start-up chatter; set before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PARAMS_FILE = Path("params.yaml")
SUBSETS = ("train", "validation", "test")
CLASSES = ("cats", "dogs")  # label 0 and label 1: the model outputs P(dog)
SPLIT_DIR = Path("data/split")
SPLIT_REPORT = SPLIT_DIR / "report.json"
FEATURES_DIR = Path("data/features")
MODEL_FILE = Path("models/head.keras")
METRICS_FILE = Path("metrics.json")
LIVE_DIR = Path("dvclive")
PLOTS_DIR = Path("plots")


class ParamError(SystemExit):
    """A bad value in params.yaml: exits with one line that names the parameter and the fix."""

    def __init__(self, name, problem, fix):
        super().__init__(f"error: params.yaml {name}: {problem}. Fix: {fix}")


def load_params(path=PARAMS_FILE):
    """Read params.yaml as a dict of sections, as DVC reads it: YAML 1.2.

    `dvc exp run -S train.learning_rate=1e-5` writes `1e-05`, a float in YAML 1.2 but a string in
    the YAML 1.1 that PyYAML reads.
    """
    with open(path) as f:
        return YAML(typ="safe", pure=True).load(f)


def positive_int(section, params, key):
    """Return params[key] if it is an integer > 0, else raise a ParamError naming it."""
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParamError(f"{section}.{key}", f"must be a whole number above 0, got {value!r}",
                         f"set {section}.{key} to a positive integer")
    return value


def positive_number(section, params, key):
    """Return params[key] if it is a number > 0, else raise a ParamError naming it."""
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ParamError(f"{section}.{key}", f"must be a number above 0, got {value!r}",
                         f"set {section}.{key} to a positive number")
    return value


def seed_everything(seed):
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


# --- Images -------------------------------------------------------------------------------------


def decode_image(data):
    """Decode JPEG/PNG/GIF/BMP bytes to an RGB uint8 tensor (H, W, 3), whatever the file's mode.

    Grayscale, RGBA and CMYK images come out as RGB; an animated GIF gives its first frame.
    """
    import tensorflow as tf

    return tf.io.decode_image(data, channels=3, expand_animations=False)


def load_image(path, size):
    """Read one image file and resize it to (size, size, 3) float32, not yet preprocessed."""
    import tensorflow as tf

    image = decode_image(tf.io.read_file(path))
    return tf.image.resize(image, (size, size))


def jpeg_complete(data):
    """Whether JPEG bytes reach the end-of-image marker that follows their scans.

    Walks the marker segments by their lengths (so a thumbnail inside an EXIF segment, which has
    its own end marker, is skipped), and through entropy-coded data, where 0xFF is followed only
    by 0x00 (a stuffed byte) or a restart marker. Whatever comes after the end marker is ignored.
    """
    position = 2  # after the start-of-image marker
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return False
        marker = data[position + 1]
        if marker == 0xD9:  # end of image
            return True
        if marker == 0xFF:  # fill byte before a marker
            position += 1
        elif marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:  # no length: stuffing, TEM, RSTn
            position += 2
        else:  # a segment with a 2-byte length that counts itself
            if position + 4 > len(data):
                return False
            position += 2 + int.from_bytes(data[position + 2:position + 4], "big")


def read_image(path):
    """Decode the image file at `path`: (RGB uint8 tensor, None), or (None, why it is unusable).

    TensorFlow's decoder (the one `extract` uses) is the judge, so `split` picks only files that
    `extract` can read, and predict.py reports the same reasons. A JPEG is first checked for an
    end-of-image marker after its last scan, so that a truncated one is reported as such and is
    caught even by a decoder that would fill in the missing rows with only a warning (TensorFlow
    2.21 raises an error; tests/test_bad_input.py checks both). Bytes after the marker are allowed.
    """
    import tensorflow as tf

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return None, f"cannot read file ({error.strerror or type(error).__name__})"
    if not data:
        return None, "empty file"
    if data.startswith(b"\xff\xd8") and not jpeg_complete(data):
        return None, "truncated JPEG (no end-of-image marker)"
    try:
        return decode_image(data), None
    except tf.errors.OpError:
        return None, "not a readable image (corrupt, truncated or not an image format extract reads)"


def list_images(subset_dir):
    """The images of one split subset, in a fixed order, with their labels (index in CLASSES)."""
    files, labels = [], []
    for label, class_name in enumerate(CLASSES):
        for path in sorted((Path(subset_dir) / class_name).iterdir()):
            files.append(path)
            labels.append(label)
    return files, labels


# --- The conv base ------------------------------------------------------------------------------

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def conv_base_module(name):
    """The keras.applications module and constructor for `conv_base.name` (vgg16, mobilenet_v2...).

    Names are matched without case or underscores, against the constructors of every
    keras.applications module, so `vgg16`, `VGG16`, `mobilenet_v2` and `EfficientNetB0` all work.
    """
    import keras

    wanted = str(name).replace("_", "").lower()
    for module_name in dir(keras.applications):
        module = getattr(keras.applications, module_name)
        if not hasattr(module, "preprocess_input"):
            continue
        for attr in dir(module):
            if attr.lower() == wanted and callable(getattr(module, attr)):
                return module, getattr(module, attr)
    raise ParamError("conv_base.name", f"{name!r} is not a keras.applications model",
                     "use a name such as vgg16, resnet50, mobilenet_v2 or efficientnetb0")


def check_conv_base_params(params):
    """Validate the conv_base section before any work is done."""
    conv_base_module(params.get("name"))
    positive_int("conv_base", params, "input_size")
    weights = params.get("weights")
    if weights not in (None, "imagenet") and not Path(str(weights)).is_file():
        raise ParamError("conv_base.weights", f"no weights file at {weights!r}",
                         "give the path of a local weights file, 'imagenet' to download them, "
                         "or null for random initialisation")


def build_conv_base(params, precision="float32"):
    """Build the frozen conv base described by the conv_base params, under a dtype policy.

    `weights: null` gives a random but seeded initialisation (conv_base.seed), for machines that
    cannot download the ImageNet weights.
    """
    import keras

    check_conv_base_params(params)
    if precision not in PRECISIONS:
        raise ParamError("extract.precision", f"unknown precision {precision!r}",
                         f"use one of {', '.join(PRECISIONS)}")
    module, constructor = conv_base_module(params["name"])
    size = params["input_size"]
    weights = params.get("weights")
    keras.config.set_dtype_policy(precision)
    keras.utils.set_random_seed(params.get("seed", 0))
    try:
        conv_base = constructor(include_top=False, weights=weights, input_shape=(size, size, 3))
    except Exception as error:
        if weights != "imagenet":
            raise
        raise ParamError("conv_base.weights",
                         f"downloading the ImageNet weights failed ({type(error).__name__}: {error})",
                         "set conv_base.weights to a local weights file (.h5), or to null for "
                         "random initialisation") from error
    conv_base.trainable = False
    return conv_base, module.preprocess_input


# --- Safe writes --------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    An interruption leaves either the old complete output or none, never a half-written one
    (DVC removes the old one before a stage runs). A stale temporary from an earlier crash is
    removed first.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # keep the suffix: Keras checks it
    _remove(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(path, data):
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
