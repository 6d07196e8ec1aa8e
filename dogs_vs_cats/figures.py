"""Drawing the training curves and the test-set evaluation (the plots stage), and galleries of photos.

plots/accuracy.png:         training and validation accuracy per epoch (the recipe's figure)
plots/loss.png:             training and validation loss per epoch (the recipe's figure)
eval/roc.json:              ROC curve points (fpr, tpr), for `dvc plots`
eval/precision_recall.json: precision-recall curve points (recall, precision), for `dvc plots`

Galleries (draw_gallery: the heatmaps and label-issues stages) are JPEG: photos, ~10x smaller than
PNG in git.

Both curves take the second class as positive for two classes (dog, as in the recipe); for more,
they are one-vs-rest and micro-averaged: every (image, class) pair counts once, scored by the
probability of that class.
"""

from __future__ import annotations

import csv
import math
from typing import TYPE_CHECKING

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

from dogs_vs_cats.core.atomic import atomic_path, write_json  # noqa: E402
from dogs_vs_cats.core.layout import (  # noqa: E402
    LIVE_DIR,
    PLOTS_DIR,
    PRECISION_RECALL_FILE,
    ROC_FILE,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

HISTORY_DIR = LIVE_DIR / "plots" / "metrics"
GALLERY_COLUMNS = 4


def read_history(split: str, metric: str) -> tuple[list[int], list[float]]:
    """Epochs and values of one metric DVCLive logged, for split 'train' or 'eval'."""
    with open(HISTORY_DIR / split / f"{metric}.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [int(row["step"]) + 1 for row in rows], [float(row[metric]) for row in rows]


def draw(metric: str, title: str) -> None:
    """One figure: the training curve as dots, the validation curve as a line, as in the original."""
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(*read_history("train", metric), "bo", label=f"Training {metric}")
    axes.plot(*read_history("eval", metric), "b", label=f"Validation {metric}")
    axes.set(title=title, xlabel="Epoch", ylabel=metric.capitalize())
    axes.legend()
    figure.tight_layout()
    save(figure, PLOTS_DIR / f"{metric}.png")


def save(figure: Figure, path: Path) -> None:
    """Write a figure (PNG or JPEG, by the suffix) atomically and close it."""
    with atomic_path(path) as tmp:
        if path.suffix == ".png":
            figure.savefig(tmp, dpi=100, metadata={"Software": None})  # no version stamp: same bytes each run
        else:
            figure.savefig(tmp, dpi=100, pil_kwargs={"quality": 85})
    plt.close(figure)


def scored_pairs(predictions: list[dict], classes: Sequence[str]) -> tuple[list[bool], list[float]]:
    """(is positive, score) pairs for the curves: two classes, one per image, the second class positive;
    more, one per image and class (one-vs-rest, micro-averaged)."""
    if len(classes) == 2:
        return ([row["actual"] == classes[1] for row in predictions],
                [row["probability"] for row in predictions])
    return ([row["actual"] == name for row in predictions for name in classes],
            [row["probabilities"][name] for row in predictions for name in classes])


def write_curves(predictions: list[dict], classes: Sequence[str]) -> None:
    """ROC and precision-recall curve points (see the module's docstring for the positive class)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    positives, scores = scored_pairs(predictions, classes)
    fpr, tpr, _ = roc_curve(positives, scores)
    precision, recall, _ = precision_recall_curve(positives, scores)
    write_json(ROC_FILE, [{"fpr": round(float(x), 6), "tpr": round(float(y), 6)}
                          for x, y in zip(fpr, tpr, strict=True)])
    write_json(PRECISION_RECALL_FILE, [{"recall": round(float(x), 6), "precision": round(float(y), 6)}
                                       for x, y in zip(recall, precision, strict=True)])


def confidence(row: dict, classes: Sequence[str]) -> float:
    """The probability of the class predicted for a row of eval/predictions.json."""
    if len(classes) == 2 and row["predicted"] == classes[0]:
        return 1 - row["probability"]  # the row holds P(second class)
    return row["probability"]


def draw_photo(ax: Axes, photo: np.ndarray, heading: str, heatmap: np.ndarray | None = None) -> None:
    """A photo with a heading and, given a heatmap (values in [0, 1] on any grid), the heatmap
    stretched over the whole photo, as the classifier stretches the photo to its square input."""
    ax.imshow(photo)
    if heatmap is not None:
        height, width = photo.shape[:2]
        ax.imshow(heatmap, cmap="jet", alpha=0.4, vmin=0, vmax=1, interpolation="bilinear",
                  extent=(0, width, height, 0))
    ax.set_title(heading, fontsize=10)
    ax.axis("off")


def draw_gallery(path: Path, cells: Sequence[tuple[np.ndarray, str, np.ndarray | None]], title: str,
                 empty: str, cell_inches: float = 3) -> None:
    """Photos in a grid of GALLERY_COLUMNS under a title, written atomically (JPEG or PNG by the suffix).

    Args:
        path: the figure's file.
        cells: (photo, heading, heatmap or None) each: an RGB array, up to two lines, draw_photo's heatmap.
        title: above the grid.
        empty: what the figure says when there is no photo.
        cell_inches: the width of a cell.
    """
    if not cells:
        figure, axes = plt.subplots(figsize=(6, 2))
        axes.text(0.5, 0.5, empty, ha="center", va="center", fontsize=14)
        axes.axis("off")
        save(figure, path)
        return
    rows, columns = math.ceil(len(cells) / GALLERY_COLUMNS), min(len(cells), GALLERY_COLUMNS)
    size = (cell_inches * columns, (cell_inches + 0.6) * rows + 0.6)  # 0.6 inch: two lines of heading
    figure, axes = plt.subplots(rows, columns, figsize=size, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, cell in zip(axes.flat, cells, strict=False):
        draw_photo(ax, *cell)
    figure.suptitle(title)
    figure.tight_layout()
    save(figure, path)
