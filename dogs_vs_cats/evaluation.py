"""What the training stages report: loss and accuracy per subset; on the test images one row per
image, ROC AUC and confusion.

Shared by `train` (head on features) and the finetune pipeline's `augment` and `finetune`, so that
`dvc metrics show` and `dvc plots show` compare like with like.
"""

import numpy as np

from dogs_vs_cats.core.labels import LABELS, label_of
from dogs_vs_cats.core.runtime import keras


def prediction_rows(files, labels, probabilities):
    """One row per image: file, actual and predicted class, probability (of dog)."""
    return [{"file": str(file), "actual": LABELS[int(label)], "predicted": label_of(probability),
             "probability": round(float(probability), 6)}
            for file, label, probability in zip(files, labels, probabilities, strict=True)]


def classification_metrics(predictions, probabilities):
    """ROC AUC and confusion counts, with dog as the positive class."""
    from sklearn.metrics import roc_auc_score

    def count(actual, predicted):
        return sum(row["actual"] == actual and row["predicted"] == predicted for row in predictions)

    cat, dog = LABELS
    actual_dogs = [row["actual"] == dog for row in predictions]
    return {
        "roc_auc": round(float(roc_auc_score(actual_dogs, probabilities)), 4),
        "confusion": {"true_cats": count(cat, cat), "false_dogs": count(cat, dog),
                      "false_cats": count(dog, cat), "true_dogs": count(dog, dog)},
    }


def subset_metrics(results, predictions, probabilities):
    """The content of metrics.json, printed as it is built.

    `results` maps train and validation to their (loss, accuracy). The test images go through the
    model once, for their `probabilities`: their loss and accuracy come from those, with the ROC AUC
    and the confusion counts of their `predictions`.
    """
    actual_dogs = np.float32([row["actual"] == LABELS[1] for row in predictions])
    results = dict(results, test=(
        float(keras.losses.binary_crossentropy(actual_dogs, np.float32(probabilities))),
        np.mean([row["actual"] == row["predicted"] for row in predictions])))
    metrics = {}
    for subset, (loss, accuracy) in results.items():
        metrics[subset] = {"loss": round(float(loss), 4), "accuracy": round(float(accuracy), 4)}
        print(f"{subset}: loss {loss:.4f}, accuracy {accuracy:.4f}")
    metrics["test"].update(classification_metrics(predictions, probabilities))
    print(f"test: ROC AUC {metrics['test']['roc_auc']:.4f}, {metrics['test']['confusion']}")
    return metrics
