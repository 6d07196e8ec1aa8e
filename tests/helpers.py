"""What the tests share: tiny synthetic images, params, throw-away project folders, real data.

Most tests never read real data or the network: images are drawn here (cats reddish, dogs
bluish, with noise, so that even a randomly initialised conv base gives separable features),
and the conv base is built with `weights: null`. The few that need real photos and a pretrained
conv base read them from ../shared (SHARED_PHOTOS, SHARED_WEIGHTS) and skip where it is absent.
"""

import atexit
import copy
import functools
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# The feature store of the stages that tests run (dogs_vs_cats/feature_store.py): never the user's.
# This one, for the session, serves fixtures built before each test's own (conftest.py).
os.environ["FEATURE_STORE"] = tempfile.mkdtemp(prefix="feature-store-")
atexit.register(shutil.rmtree, os.environ["FEATURE_STORE"], ignore_errors=True)

# Real photos and a genuinely pretrained conv base, beside the repository on development machines
# and in CI (see README, "Results"); tests that need them skip where they are absent.
SHARED = REPO.parent / "shared"
SHARED_PHOTOS = SHARED / "datasets" / "dogs-vs-cats" / "train"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_dogbreeds.weights.h5"
needs_shared = pytest.mark.skipif(
    not (SHARED_PHOTOS.is_dir() and SHARED_WEIGHTS.is_file()),
    reason=f"needs the real photos and the pretrained MobileNetV2 in {SHARED}")

# Ray, the extract stage's optional runner (requirements-ray.txt; CI installs it).
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="needs Ray: pip install -r requirements-ray.txt")

# Small, fast settings: random seeded VGG16 (no download), tiny inputs, float32 everywhere.
TEST_PARAMS = {
    # Never used unless split.raw_dir is data/download/photos.zip: a port of 127.0.0.1 where nothing listens.
    "download": {"url": "http://127.0.0.1:9/photos.zip", "sha256": "0" * 64},
    "split": {"raw_dir": "data/raw", "train": 3, "validation": 2, "test": 2, "seed": 42, "classes": None},
    "conv_base": {"name": "vgg16", "weights": None, "input_size": 32, "seed": 0},
    "extract": {"engine": "keras", "precision": "float32", "batch_size": 4},
    "quantize": {"images": 4},
    "train": {"units": 16, "dropout": 0.5, "learning_rate": 1.0e-3, "epochs": 2,
              "batch_size": 4, "seed": 42, "class_weight": None},
    "finetune": {"enabled": False, "batch_size": 4, "seed": 42, "rotation": 0.1, "zoom": 0.2, "shift": 0.1,
                 "head_epochs": 1, "head_learning_rate": 1.0e-3, "unfreeze": "top_block",
                 "epochs": 1, "learning_rate": 1.0e-4},
}

# Git needs an identity for the commits the end-to-end tests make; CI has no global config.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "pipeline tests", "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "pipeline tests", "GIT_COMMITTER_EMAIL": "tests@example.invalid",
}

COLOURS = {"cat": (200, 60, 50), "dog": (50, 70, 200), "bird": (60, 190, 70)}


def image_array(kind, index, size=40):
    """A size x size RGB uint8 image: a solid class colour plus seeded noise and a random square."""
    rng = np.random.default_rng([index, list(COLOURS).index(kind), size])
    pixels = np.array(COLOURS[kind], dtype=np.float64) + rng.normal(0, 25, (size, size, 3))
    x, y = rng.integers(0, size // 2, 2)
    pixels[y:y + size // 3, x:x + size // 3] += rng.normal(0, 40, 3)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def save_image(path, kind, index, size=40, fmt="JPEG"):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_array(kind, index, size)).save(path, fmt)
    return path


def make_raw(raw_dir, per_class, layout="flat", size=40, start=1, classes=("cat", "dog")):
    """Write `per_class` images of each class (CLASSES; or any of COLOURS) in Kaggle's flat layout
    (cat.1.jpg) or in one folder per class (cat/1.jpg)."""
    raw_dir = Path(raw_dir)
    files = []
    for kind in classes:
        for i in range(start, start + per_class):
            path = raw_dir / f"{kind}.{i}.jpg" if layout == "flat" else raw_dir / kind / f"{i}.jpg"
            files.append(save_image(path, kind, i, size))
    return files


def merged(base, overrides):
    """`base` with the nested dict `overrides` merged into it (a new dict)."""
    result = copy.deepcopy(base)
    for section, values in (overrides or {}).items():
        if isinstance(values, dict) and isinstance(result.get(section), dict):
            result[section].update(values)
        else:
            result[section] = values
    return result


def write_params(directory, overrides=None):
    """Write params.yaml in `directory`: TEST_PARAMS with `overrides` merged in."""
    params = merged(TEST_PARAMS, overrides)
    (Path(directory) / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def update_params(directory, overrides):
    """Change some values of the params.yaml in `directory`, keeping the rest."""
    path = Path(directory) / "params.yaml"
    params = merged(yaml.safe_load(path.read_text()), overrides)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def copy_project(directory):
    """Copy the pipelines' code and definitions (not data, not results) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for package in ("stages", "dogs_vs_cats"):  # the entry points and the library they import
        shutil.copytree(REPO / package, directory / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "weights", directory / "weights")  # only its .gitignore
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore", "predict.py", "requirements.txt"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, directory / name)
    return directory


def subprocess_env():
    """Environment for stage and tool subprocesses: git identity, quiet TensorFlow, no GPU."""
    env = dict(os.environ, **GIT_ENV)
    # Stages run as `python -m ...`: the same interpreter as the tests.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU only: the same numbers on every machine
    env.pop("PYTHONPATH", None)  # run the copied code, never the checkout's
    env["PYTHONHASHSEED"] = "0"
    env["DVC_NO_ANALYTICS"] = "1"
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"  # the test archive server, never a proxy
    return env


def run(project, *command):
    """Run a command in the project; return its stdout, failing the test with all output on error."""
    result = subprocess.run(command, cwd=project, env=subprocess_env(), text=True, capture_output=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def dvc(project, *args):
    return run(project, sys.executable, "-m", "dvc", *args)


def commit(project, message):
    """`git add -A` and commit: what `dvc repro` wrote, as a user commits it."""
    run(project, "git", "add", "-A")
    run(project, "git", "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", message)


def init_repository(project, message):
    """Make `project` a git + DVC repository with the repository's .dvc/config, and commit it all."""
    run(project, "git", "init", "-q")
    dvc(project, "init", "-q")
    shutil.copy(REPO / ".dvc/config", project / ".dvc/config")  # the cache link type, the plots page
    commit(project, message)


def repro(project, *args):
    """`dvc repro`; return the names of the stages it ran, in order."""
    output = dvc(project, "repro", *args)
    return re.findall(r"Running stage '([^']+)'", output)


# --- Dirty image folders: every kind of file split must skip or accept ------------------------

EMPTY = "empty file"
TRUNCATED = "truncated JPEG (no end-of-image marker)"
UNREADABLE = "not a readable image (corrupt, truncated or not an image format extract reads)"
NO_CLASS = "name matches no class"
CLASSES = ("cat", "dog")  # the classes of make_raw's photos, in label order


def jpeg_bytes(pixels, mode="RGB"):
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "JPEG")
    return buffer.getvalue()


@functools.cache
def large_jpeg():
    """A 4000 x 3000 RGB JPEG, smooth so that it stays small; encoded once per test session."""
    y, x = np.mgrid[0:3000, 0:4000]
    pixels = np.stack([x * 255 // 4000, y * 255 // 3000, np.full_like(x, 90)], axis=-1)
    return jpeg_bytes(pixels.astype(np.uint8))


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
    put("dog.108.jpg", large_jpeg(), (3000, 4000))
    # An OLE compound file, as Windows leaves in image folders.
    put("Thumbs.db", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000), NO_CLASS)
    put("bird.jpg", jpeg_bytes(image_array("cat", 1)), NO_CLASS)  # not <class>.<n>.jpg
    return expected


def readme_blocks(heading):
    """The bash blocks of README.md's section `heading`, each as its lines with comments removed."""
    section = (REPO / "README.md").read_text().split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [[line.split("  #")[0].strip() for line in block.splitlines() if line.strip()] for block in blocks]
