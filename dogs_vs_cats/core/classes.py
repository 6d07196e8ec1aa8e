"""The classes: the list that split finds in the data and writes, and how a model's output names one.

data/split/classes.json is the list, in label order: label i is classes[i]. Every stage after split
reads it, so the number of classes and their names come from the data (or from split.classes).
Two classes keep the recipe's head, one sigmoid unit giving P(second class); more get a softmax,
one probability per class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.layout import CLASSES_FILE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

THRESHOLD = 0.5  # two classes: the threshold of Keras' accuracy metric, so counts and accuracy agree


def read_classes(path: Path = CLASSES_FILE) -> list[str]:
    """The class names that split wrote, in label order."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"error: no class list at {path}. Fix: run `dvc repro`: the split stage "
                        "writes it") from None


def output_units(classes: Sequence[str]) -> int:
    """Units of the model's last layer: 1 (a sigmoid, P(second class)) for two classes, else one per class."""
    return 1 if len(classes) == 2 else len(classes)


def class_probabilities(outputs: ArrayLike) -> np.ndarray:
    """(N, classes) probabilities from a model's (N, units) outputs: P(first) = 1 - P(second) for two."""
    outputs = np.asarray(outputs, dtype=np.float64)
    return np.concatenate([1 - outputs, outputs], axis=1) if outputs.shape[1] == 1 else outputs


def predicted_labels(outputs: ArrayLike) -> np.ndarray:
    """The label each row of a model's outputs predicts: P(second) > THRESHOLD for two classes, or argmax."""
    outputs = np.asarray(outputs)
    return (outputs[:, 0] > THRESHOLD).astype(int) if outputs.shape[1] == 1 else outputs.argmax(axis=1)


def reported_probability(outputs: ArrayLike) -> np.ndarray:
    """The probability reported per image: P(second class) for two classes (the recipe's P(dog)), else
    the predicted class's."""
    outputs = np.asarray(outputs)
    return outputs[:, 0] if outputs.shape[1] == 1 else outputs.max(axis=1)


def list_images(subset_dir: str | Path, classes: Sequence[str]) -> tuple[list[Path], list[int]]:
    """The images of one split subset, in a fixed order, with their labels (index in `classes`)."""
    files, labels = [], []
    for label, class_name in enumerate(classes):
        for path in sorted((Path(subset_dir) / class_name).iterdir()):
            files.append(path)
            labels.append(label)
    return files, labels
