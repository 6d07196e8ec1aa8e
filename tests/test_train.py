"""stages/train.py: the dense head, its training, and its parameter checks."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from dogs_vs_cats.core.layout import (
    CLASSES_FILE,
    CLASSIFIER_FILE,
    FEATURES_DIR,
    HEAD_FILE,
    LIVE_DIR,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SUBSETS,
)
from dogs_vs_cats.core.params import ParamError, Params
from dogs_vs_cats.core.runtime import seed_everything
from dogs_vs_cats.evaluation import prediction_rows, subset_metrics
from dogs_vs_cats.features import NpyRows, batches
from dogs_vs_cats.model import build_head, class_names, fit_head
from helpers import CLASSES, TEST_PARAMS, merged, write_params
from stages import train


def separable(count, shape=(2, 2, 8), seed=0):
    """Features whose mean differs by class (like reddish cats and bluish dogs), and labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    features = rng.normal(0, 1, (count, *shape)) + np.where(labels, 1.0, -1.0)[:, None, None, None]
    return features.astype(np.float32), labels.astype(np.float32)


def test_subset_metrics_round_each_subset_and_score_the_test_predictions(capsys):
    labels, outputs = [0, 0, 1, 1], np.float32([[0.1], [0.7], [0.4], [0.9]])  # a cat called dog, a dog cat
    predictions = prediction_rows(["a", "b", "c", "d"], labels, outputs, ["cat", "dog"])
    assert [row["predicted"] for row in predictions] == ["cat", "dog", "cat", "dog"]
    results = {"train": (0.123456, 0.99996), "validation": (np.float32(0.2), 0.5)}
    metrics = subset_metrics(results, predictions, outputs, ["cat", "dog"])
    assert metrics["train"] == {"loss": 0.1235, "accuracy": 1.0}
    assert metrics["validation"] == {"loss": 0.2, "accuracy": 0.5}
    # Test loss and accuracy come from the probabilities: binary cross-entropy, and 2 of 4 right.
    loss = -np.mean(np.log([0.9, 0.3, 0.4, 0.9]))
    assert metrics["test"] == {"loss": round(loss, 4), "accuracy": 0.5, "roc_auc": 0.75, "confusion": {
        "true_cats": 1, "false_dogs": 1, "false_cats": 1, "true_dogs": 1}, "per_class": {
        "cat": {"precision": 0.5, "recall": 0.5}, "dog": {"precision": 0.5, "recall": 0.5}}}
    assert json.loads(json.dumps(metrics)) == metrics  # plain numbers, as metrics.json needs
    assert "test: ROC AUC 0.7500" in capsys.readouterr().out


def test_head_structure_and_optimizer():
    model = build_head((4, 4, 512), units=64, dropout=0.3, learning_rate=2e-5, classes=CLASSES)
    flatten, hidden, dropout, output = model.layers
    assert isinstance(flatten, keras.layers.Flatten)
    assert isinstance(hidden, keras.layers.Dense) and hidden.units == 64
    assert hidden.activation is keras.activations.relu
    assert isinstance(dropout, keras.layers.Dropout) and dropout.rate == pytest.approx(0.3)
    assert isinstance(output, keras.layers.Dense) and output.units == 1
    assert output.activation is keras.activations.sigmoid
    assert model.input_shape == (None, 4, 4, 512) and model.output_shape == (None, 1)
    assert hidden.kernel.shape == (4 * 4 * 512, 64)

    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-5)
    assert "binary_crossentropy" in str(model.loss)


def test_head_learns_separable_features():
    keras.utils.set_random_seed(0)
    x_train, y_train = separable(200, seed=1)
    x_test, y_test = separable(100, seed=2)
    model = build_head(x_train.shape[1:], units=16, dropout=0.5, learning_rate=1e-3, classes=CLASSES)
    model.fit(x_train, y_train, epochs=10, batch_size=20, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.9


class RecordedRows:
    """Features that record which rows were read, in the order they were read."""

    def __init__(self, features):
        self.features, self.shape, self.read = features, features.shape, []

    def __getitem__(self, rows):
        self.read.extend(int(row) for row in rows)
        return self.features[rows]


def test_each_epoch_visits_the_training_rows_in_a_new_order_the_same_on_every_run(tmp_path):
    """The book's model.fit(features, labels) shuffles anew every epoch; streamed batches must too,
    seeded: two runs read the rows in the same orders and end with the same weights."""
    x, y = separable(230, shape=(1, 1, 16))  # 230: a partial last batch
    np.save(tmp_path / "features.npy", x)

    def trained(seed):
        seed_everything(42)
        rows = RecordedRows(NpyRows(tmp_path / "features.npy"))
        model = build_head(x.shape[1:], units=8, dropout=0.5, learning_rate=1e-3, classes=CLASSES)
        fit_head(model, batches(rows, y, 20, shuffle_seed=seed), batches(x, y, 100), epochs=3)
        epochs = [rows.read[start:start + len(y)] for start in range(0, len(rows.read), len(y))]
        return epochs, model.get_weights()

    epochs, weights = trained(seed=42)
    assert len(epochs) == 3 and all(sorted(epoch) == list(range(len(y))) for epoch in epochs)
    assert epochs[0] != epochs[1] != epochs[2] != epochs[0]
    assert epochs[0] != list(range(len(y)))
    again, same_weights = trained(seed=42)
    assert again == epochs
    assert all(np.array_equal(a, b) for a, b in zip(weights, same_weights, strict=True))
    other_seed, _ = trained(seed=7)
    assert other_seed[0] != epochs[0]


def test_unshuffled_batches_keep_the_rows_in_order():
    x, y = separable(45, shape=(1, 1, 4))
    rows = RecordedRows(x)
    read = [(features, labels) for features, labels in batches(rows, y, 20).as_numpy_iterator()]
    assert [len(labels) for _, labels in read] == [20, 20, 5]
    assert rows.read == list(range(45))
    np.testing.assert_array_equal(np.concatenate([features for features, _ in read]), x)


@pytest.mark.parametrize("key, value", [
    ("units", 0), ("units", -3), ("units", 2.5), ("epochs", 0), ("batch_size", None),
    ("dropout", 1.5), ("dropout", 1), ("dropout", -0.1), ("dropout", "half"),
    ("learning_rate", -1e-3), ("learning_rate", 0), ("learning_rate", "fast"),
])
def test_bad_params_name_the_parameter(key, value):
    params = merged(TEST_PARAMS, {"train": {key: value}})
    with pytest.raises(ParamError, match=rf"train\.{key}"):
        _ = Params(params).train


def test_good_params_pass():
    for overrides in ({"dropout": 0}, {"learning_rate": 1}):
        train = Params(merged(TEST_PARAMS, {"train": overrides})).train
        assert dataclasses.asdict(train) == dict(TEST_PARAMS["train"], **overrides)


def test_main_checks_params_before_any_work(project):
    write_params(project, {"train": {"units": 0}})  # and no features at all
    with pytest.raises(ParamError, match=r"train\.units"):
        train.main()
    assert not METRICS_FILE.exists() and not HEAD_FILE.exists()


def test_main_writes_models_metrics_predictions_and_history(project):
    for i, subset in enumerate(SUBSETS):
        features, labels = separable(40, shape=(1, 1, 512), seed=i)  # VGG16 at 32x32
        (FEATURES_DIR / subset).mkdir(parents=True)
        np.save(FEATURES_DIR / subset / "features.npy", features)
        np.save(FEATURES_DIR / subset / "labels.npy", labels)
        (FEATURES_DIR / subset / "files.txt").write_text(
            "".join(f"{subset}/{('cat', 'dog')[int(y)]}/{n}.jpg\n" for n, y in enumerate(labels)))
    CLASSES_FILE.parent.mkdir(parents=True)
    CLASSES_FILE.write_text('["cat", "dog"]')
    write_params(project, {"train": {"epochs": 3}})
    train.main()

    metrics = json.loads(METRICS_FILE.read_text())
    assert set(metrics) == set(SUBSETS)
    assert metrics["test"]["accuracy"] > 0.9 and metrics["test"]["roc_auc"] > 0.9, metrics["test"]
    predictions = json.loads(PREDICTIONS_FILE.read_text())
    assert len(predictions) == 40 == sum(metrics["test"]["confusion"].values())
    for n, row in enumerate(predictions):
        assert row["file"] == f"data/split/test/{row['actual']}/{n}.jpg"
        assert row["predicted"] == ("dog" if row["probability"] > 0.5 else "cat")
    assert metrics["test"]["accuracy"] == pytest.approx(
        np.mean([row["actual"] == row["predicted"] for row in predictions]))

    head = keras.models.load_model(HEAD_FILE)
    features, labels = np.load(FEATURES_DIR / "test/features.npy"), np.load(FEATURES_DIR / "test/labels.npy")
    dog = np.clip(head.predict(features, verbose=0)[:, 0], 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(dog) + (1 - labels) * np.log(1 - dog))
    assert metrics["test"]["loss"] == pytest.approx(loss, abs=6e-5)  # from the one pass over test

    assert head.output_shape == (None, 1)
    classifier = keras.models.load_model(CLASSIFIER_FILE)
    assert classifier.input_shape == (None, None, None, 3)
    assert classifier.output["probabilities"].shape == (None, 1)
    assert class_names(classifier) == ["cat", "dog"]
    for split_name in ("train", "eval"):
        for metric in ("loss", "accuracy"):
            rows = (LIVE_DIR / "plots/metrics" / split_name / f"{metric}.tsv").read_text().splitlines()
            assert len(rows) == 1 + 3, rows  # header + one row per epoch
