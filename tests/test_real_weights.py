"""Real transfer learning: the pretrained MobileNetV2 on real photos, through the project's own stages.

Random weights cannot tell a right preprocess_input from a wrong one, RGB from BGR, one resize
method from another, or cats from dogs in the label order: a pretrained conv base can. On 50
training photos per class the head must separate unseen test photos, and the exported
classifier, fed the raw photos, must agree with the head fed the extracted features. The photos
are a user's own two folders, kitty/ and puppy/: the class names come from the data.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import predict
from dogs_vs_cats.core.layout import CLASSIFIER_FILE, METRICS_FILE, PREDICTIONS_FILE, SUBSETS
from dogs_vs_cats.images import decode_image
from helpers import SHARED_PHOTOS, SHARED_WEIGHTS, needs_shared, write_params
from stages import extract, split, train

pytestmark = [needs_shared, pytest.mark.slow]

PER_CLASS = {"train": 50, "validation": 25, "test": 25}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """split, extract and train run in a fresh folder on 100 shared photos per class, in kitty/ and puppy/."""
    project = tmp_path_factory.mktemp("real")
    raw = project / "raw"
    for folder, kind in (("kitty", "cat"), ("puppy", "dog")):
        (raw / folder).mkdir(parents=True)
        for i in range(1, 101):
            (raw / folder / f"{i}.jpg").symlink_to(SHARED_PHOTOS / f"{kind}.{i}.jpg")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(project)
        write_params(project, {
            "split": dict(PER_CLASS, raw_dir=str(raw)),
            "conv_base": {"name": "mobilenet_v2", "weights": str(SHARED_WEIGHTS), "input_size": 160},
            "extract": {"batch_size": 32},
            "train": {"units": 256, "dropout": 0.5, "learning_rate": 2e-5, "epochs": 30,
                      "batch_size": 20},
        })
        split.main()
        for subset in SUBSETS:
            monkeypatch.setattr(sys, "argv", ["stages/extract.py", subset])
            extract.main()
        train.main()
        yield project


def test_head_on_pretrained_features_separates_unseen_photos(trained):
    metrics = json.loads((trained / METRICS_FILE).read_text())
    assert metrics["test"]["accuracy"] >= 0.95, metrics["test"]
    assert metrics["test"]["roc_auc"] >= 0.98, metrics["test"]
    assert set(metrics["test"]["confusion"]) == {
        "true_kitties", "false_puppies", "false_kitties", "true_puppies"}


def test_predict_prints_the_folder_names(trained, capsys):
    photos = sorted((trained / "data/split/test").rglob("*.jpg"))
    predict.main([*map(str, photos), "--model", str(trained / CLASSIFIER_FILE)])  # a UserError otherwise
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert {label for _, label, _ in lines} == {"kitty", "puppy"}
    right = sum(label == Path(path).parent.name for path, label, _ in lines)
    assert right >= 0.95 * len(photos)


def test_exported_classifier_on_raw_photos_agrees_with_the_head(trained):
    import keras

    rows = json.loads((trained / PREDICTIONS_FILE).read_text())
    assert len(rows) == 2 * PER_CLASS["test"]
    classifier = keras.models.load_model(trained / CLASSIFIER_FILE)
    for row in rows:
        image = np.float32(decode_image((trained / row["file"]).read_bytes()))[np.newaxis]
        probability = float(classifier(image)["probabilities"][0, 0])
        assert probability == pytest.approx(row["probability"], abs=1e-3), row["file"]


def test_predict_in_batches_gives_what_the_classifier_gives_one_image_at_a_time(trained):
    import keras

    classifier = keras.models.load_model(trained / CLASSIFIER_FILE)
    files = sorted((trained / "data/split/test").rglob("*.jpg"))
    batched = list(predict.classify(classifier, files, batch_size=16))
    assert [path for path, _, _ in batched] == [str(f) for f in files]
    for path, outputs, problem in batched:
        assert problem is None
        image = np.float32(decode_image(Path(path).read_bytes()))[np.newaxis]
        one = float(classifier(image)["probabilities"][0, 0])
        assert float(outputs[0]) == pytest.approx(one, abs=1e-4), path
