"""End to end: a folder of three classes of the user's own through `dvc repro`, with a softmax head.

Circles, squares and triangles drawn with Pillow (any colour, size and place, on a noisy
background), 100 per class in one folder each; the pretrained MobileNetV2 from ../shared. One
project is reproduced once (module scope); the tests read what it wrote.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from helpers import (
    REPO,
    SHARED_WEIGHTS,
    TEST_PARAMS,
    copy_project,
    init_repository,
    merged,
    needs_shared,
    repro,
    run,
    subprocess_env,
    update_params,
)

pytestmark = [pytest.mark.e2e, needs_shared]

SHAPES = ["circle", "square", "triangle"]  # sorted: the label order split finds
PER_CLASS = {"train": 60, "validation": 20, "test": 20}


def draw_shape(shape, rng, size=96):
    """An RGB image of one filled shape, its colour, size and place random, on a noisy background."""
    background = rng.integers(0, 256, 3)
    pixels = np.clip(background + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    half = rng.integers(size // 6, size // 3)
    x, y = rng.integers(half, size - half, 2)
    colour = tuple(int(c) for c in (background + 128 + rng.integers(-40, 40, 3)) % 256)
    box = [x - half, y - half, x + half, y + half]
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x, y - half), (x - half, y + half), (x + half, y + half)], fill=colour)
    return image


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The project after `dvc repro` on data/shapes/{circle,square,triangle}/ (PNG, lossless)."""
    project = copy_project(tmp_path_factory.mktemp("shapes"))
    rng = np.random.default_rng(3)
    for shape in SHAPES:
        (project / "data/shapes" / shape).mkdir(parents=True)
        for i in range(sum(PER_CLASS.values())):
            draw_shape(shape, rng).save(project / "data/shapes" / shape / f"{i}.png")
    recipe = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    update_params(project, merged(TEST_PARAMS, {
        "split": dict(PER_CLASS, raw_dir="data/shapes"),
        "conv_base": {"name": "mobilenet_v2", "weights": "weights/pretrained.weights.h5", "input_size": 160},
        "extract": {"batch_size": 32},
        "train": recipe}))  # the recipe's head and training, but for its last layer
    (project / "weights/pretrained.weights.h5").symlink_to(SHARED_WEIGHTS)  # not copied
    init_repository(project, "three classes")
    ran = repro(project)
    return project, ran


def test_three_classes_train_a_softmax_head_above_090(shapes):
    project, ran = shapes
    assert {"split", "train", "plots"} <= set(ran)
    assert json.loads((project / "data/split/classes.json").read_text()) == SHAPES
    metrics = json.loads((project / "metrics.json").read_text())["test"]
    assert metrics["accuracy"] > 0.9, metrics
    assert set(metrics["confusion"]) == set(SHAPES) and set(metrics["per_class"]) == set(SHAPES)
    assert sum(sum(row.values()) for row in metrics["confusion"].values()) == 3 * PER_CLASS["test"]
    rows = json.loads((project / "eval/predictions.json").read_text())
    assert {row["actual"] for row in rows} == set(SHAPES) and set(rows[0]["probabilities"]) == set(SHAPES)


def test_dvc_plots_show_has_a_three_by_three_confusion_matrix(shapes):
    project, _ = shapes
    result = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=project,
                            env=subprocess_env(), text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    plots = json.loads(result.stdout)["data"]
    confusion, = (plot for name, plot in plots.items() if name == "Confusion matrix (test)")
    values = confusion[0]["content"]["data"]["values"]
    assert {value["actual"] for value in values} == set(SHAPES) == {value["predicted"] for value in values}
    for name in ("ROC (test)", "Precision-recall (test)"):  # one-vs-rest, micro-averaged
        assert plots[name][0]["content"]["data"]["values"], name


def test_the_model_file_alone_names_the_classes_in_predict_and_in_plain_keras(shapes, tmp_path):
    project, _ = shapes
    model = tmp_path / "elsewhere" / "shapes.keras"
    model.parent.mkdir()
    shutil.copy(project / "models/classifier.keras", model)  # alone, away from the project
    photos = sorted((project / "data/split/test").rglob("*.png"))[::7]
    printed = run(project, sys.executable, "predict.py", *map(str, photos), "--model", str(model),
                  "--output", str(tmp_path / "out.json"), "--all-probabilities")
    labels = [line.split("\t")[1] for line in printed.splitlines()]
    assert set(labels) == set(SHAPES)
    right = sum(label == photo.parent.name for label, photo in zip(labels, photos, strict=True))
    assert right > 0.9 * len(photos)

    # A fresh Python in another folder, nothing of this repository importable: plain Keras and PIL.
    plain = f"""
import json, sys
import keras, numpy as np
from PIL import Image
model = keras.models.load_model({str(model)!r})
names = [str(name) for name in model.get_layer("class_names").get_vocabulary()]
out = model.predict(np.stack([np.float32(Image.open(p).convert("RGB")) for p in sys.argv[1:]]), verbose=0)
print(json.dumps({{"names": names, "class": [c.decode() for c in out["class"]],
                  "probabilities": out["probabilities"].tolist()}}))
"""
    env = {key: value for key, value in subprocess_env().items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", plain, *map(str, photos)], cwd=tmp_path, env=env,
                            text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["names"] == SHAPES and answer["class"] == labels
    written = json.loads((tmp_path / "out.json").read_text())
    for row, probabilities in zip(written, answer["probabilities"], strict=True):
        assert list(row["probabilities"].values()) == pytest.approx(probabilities, abs=1e-5)
