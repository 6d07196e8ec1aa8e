"""What the training stages report: loss and accuracy per subset; on the test images one row per
image, ROC AUC, confusion counts and each class's precision and recall.

Shared by `train` (head on features) and the finetune pipeline's `augment` and `finetune`, so that
`dvc metrics show` and `dvc plots show` compare like with like. `outputs` are what the model gives
for each test image: (N, 1) P(second class) for two classes, (N, classes) softmax for more
(core/classes.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.core.atomic import atomic_path, write_json
from dogs_vs_cats.core.classes import predicted_labels, reported_probability
from dogs_vs_cats.core.runtime import keras

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from numpy.typing import ArrayLike


def prediction_rows(files: Sequence[str | Path], labels: Sequence[float] | np.ndarray, outputs: np.ndarray,
                    classes: Sequence[str]) -> list[dict]:
    """One row per image: file, actual and predicted class, the probability (of the second class for
    two classes, as the recipe's P(dog); of the predicted class for more, with every class's)."""
    rows = []
    for file, label, output, predicted, probability in zip(
            files, labels, outputs, predicted_labels(outputs), reported_probability(outputs), strict=True):
        row = {"file": str(file), "actual": classes[int(label)], "predicted": classes[predicted],
               "probability": round(float(probability), 6)}
        if len(classes) > 2:
            row["probabilities"] = {name: round(float(p), 6) for name, p in zip(classes, output, strict=True)}
        rows.append(row)
    return rows


def plural(name: str) -> str:
    """An English plural for a class name in a metric's key: cat: cats, puppy: puppies, box: boxes."""
    if name.endswith("y") and name[-2:-1] not in tuple("aeiou"):
        return name[:-1] + "ies"
    return name + ("es" if name.endswith(("s", "x", "z", "ch", "sh")) else "s")


def confusion_counts(predictions: list[dict], classes: Sequence[str]) -> dict:
    """Two classes: true_<firsts>, false_<seconds> (firsts predicted second), false_<firsts>, true_<seconds>
    (Kaggle's photos: true_cats, false_dogs, false_cats, true_dogs). More: {actual: {predicted: count}}."""
    def count(actual, predicted):
        return sum(row["actual"] == actual and row["predicted"] == predicted for row in predictions)

    if len(classes) == 2:
        (first, firsts), (second, seconds) = ((name, plural(name)) for name in classes)
        return {f"true_{firsts}": count(first, first), f"false_{seconds}": count(first, second),
                f"false_{firsts}": count(second, first), f"true_{seconds}": count(second, second)}
    return {actual: {predicted: count(actual, predicted) for predicted in classes} for actual in classes}


def classification_metrics(predictions: list[dict], labels: Sequence[int], outputs: np.ndarray,
                           classes: Sequence[str]) -> dict:
    """ROC AUC (two classes: the second is positive; more: one-vs-rest, averaged over the classes),
    confusion counts, and each class's precision and recall."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    if len(classes) == 2:
        roc_auc = roc_auc_score(np.equal(labels, 1), outputs[:, 0])
    else:
        roc_auc = roc_auc_score(labels, outputs, multi_class="ovr", labels=range(len(classes)))
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, predicted_labels(outputs), labels=range(len(classes)), zero_division=0)
    return {
        "roc_auc": round(float(roc_auc), 4),
        "confusion": confusion_counts(predictions, classes),
        "per_class": {name: {"precision": round(float(p), 4), "recall": round(float(r), 4)}
                      for name, p, r in zip(classes, precision, recall, strict=True)},
    }


def cross_entropy(labels: Sequence[int], outputs: np.ndarray) -> float:
    """The loss the model trains with, on the test images: binary or sparse categorical cross-entropy."""
    if outputs.shape[1] == 1:
        return float(keras.losses.binary_crossentropy(np.float32(labels), np.float32(outputs[:, 0])))
    losses = keras.losses.sparse_categorical_crossentropy(np.float32(labels), np.float32(outputs))
    return float(np.mean(losses))


def subset_metrics(results: Mapping[str, Sequence[float]], predictions: list[dict], outputs: ArrayLike,
                   classes: Sequence[str]) -> dict:
    """The content of metrics.json, printed as it is built.

    `results` maps train and validation to their (loss, accuracy). The test images go through the
    model once, for their `outputs`: their loss and accuracy come from those, with the ROC AUC, the
    confusion counts and the per-class precision and recall of their `predictions`.
    """
    outputs = np.asarray(outputs)
    labels = [classes.index(row["actual"]) for row in predictions]
    results = dict(results, test=(cross_entropy(labels, outputs),
                                  np.mean([row["actual"] == row["predicted"] for row in predictions])))
    metrics = {}
    for subset, (loss, accuracy) in results.items():
        metrics[subset] = {"loss": round(float(loss), 4), "accuracy": round(float(accuracy), 4)}
        print(f"{subset}: loss {loss:.4f}, accuracy {accuracy:.4f}")
    metrics["test"].update(classification_metrics(predictions, labels, outputs, classes))
    print(f"test: ROC AUC {metrics['test']['roc_auc']:.4f}, confusion {metrics['test']['confusion']}")
    print("test: recall " + ", ".join(f"{name} {values['recall']:.4f}"
                                      for name, values in metrics["test"]["per_class"].items()))
    return metrics


def evaluate(model: keras.Model, datasets: dict, test_files: list, test_labels: Sequence[float] | np.ndarray,
             classes: list) -> tuple[dict, list]:
    """Evaluate a trained model as every training stage does: loss and accuracy on train and
    validation, then one pass over the test images for their predictions and metrics.

    Args:
        model: a compiled Keras model: the head on features (train), or images end to end (augment,
            finetune).
        datasets: "train", "validation" and "test" batches of (inputs, labels); test in the order of
            test_files.
        test_files: the test images, in the order of their batches.
        test_labels: their labels, each its class's index in `classes`.
        classes: the class names in label order.

    Returns:
        (metrics, predictions): the content of metrics.json and of predictions.json.
    """
    results = {subset: model.evaluate(datasets[subset], verbose=0) for subset in ("train", "validation")}
    outputs = model.predict(datasets["test"], verbose=0)
    predictions = prediction_rows(test_files, test_labels, outputs, classes)
    return subset_metrics(results, predictions, outputs, classes), predictions


def export(classifier: keras.Model, classifier_file: Path, metrics: dict, metrics_file: Path,
           predictions: list, predictions_file: Path) -> None:
    """Write the classifier (raw image in, probabilities and class out), the predictions and the metrics,
    each whole or not at all.

    Args:
        classifier: the model of model.build_classifier.
        classifier_file: where it goes (.keras).
        metrics: what `evaluate` returned, and metrics_file, where it goes (JSON).
        predictions: what `evaluate` returned, and predictions_file, where it goes (JSON).
    """
    with atomic_path(classifier_file) as tmp:
        classifier.save(tmp)
    write_json(predictions_file, predictions)
    write_json(metrics_file, metrics)


def history_callback(live_dir: Path) -> keras.callbacks.Callback:
    """The DVCLive callback that writes a training stage's per-epoch history under `live_dir`.

    The plots that read the history are declared in a dvc.yaml (the root one for train, the stage's
    own for augment and finetune), so DVCLive writes no dvc.yaml, and no experiment of its own: DVC
    runs the experiments.
    """
    from dvclive.keras import DVCLiveCallback

    return DVCLiveCallback(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False)
