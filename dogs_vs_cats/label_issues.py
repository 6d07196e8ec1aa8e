"""Which labels look wrong: every photo of the split scored out of sample, ranked by confident learning.

A photo's given label is its class folder. To judge it fairly, the model that scores a photo must
not have seen it: the photos of all three subsets are cut into FOLDS stratified folds, and a
linear head (logistic regression on the conv-base features, averaged over their positions) trained
on the other folds gives each photo its class probabilities. Those out-of-sample probabilities go
to cleanlab's confident learning (Northcutt et al. 2021), which estimates how many photos of each
class carry each wrong label and flags that many, the least likely under their label first.

The linear head, not the recipe's: FOLDS heads of 30 epochs on every photo would cost several times
`train`; on a pretrained base's features, the linear head separates the classes about as well
(bench/README.md). Nothing here touches the trained head, its metrics or the features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.core.layout import SPLIT_DIR
from dogs_vs_cats.features import NpyRows

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

FOLDS = 5
FOLD_SEED = 0  # which photos share a fold: fixed, so that `dvc repro -f` gives the same list
CHUNK_ROWS = 256  # features read from disk at a time: memory holds one chunk, whatever the photos


def pooled_features(subset_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A subset's features averaged over their spatial positions, (N, channels), with its labels and
    files (as eval/predictions.json names them: data/split/<subset>/<class>/<photo>).

    Args:
        subset_dir: data/features/<subset>, as extract writes it.

    Returns:
        (features, labels as integers, files).
    """
    rows = NpyRows(subset_dir / "features.npy")
    count, positions = rows.shape[0], tuple(range(1, len(rows.shape) - 1))
    pooled = np.empty((count, rows.shape[-1]), np.float32)
    try:
        for start in range(0, count, CHUNK_ROWS):
            chunk = np.arange(start, min(start + CHUNK_ROWS, count))
            pooled[chunk] = rows[chunk].mean(axis=positions, dtype=np.float64)
    finally:
        rows.close()
    labels = np.load(subset_dir / "labels.npy").astype(int)
    files = [str(SPLIT_DIR / name) for name in (subset_dir / "files.txt").read_text().splitlines()]
    return pooled, labels, files


def out_of_sample_probabilities(features: np.ndarray, labels: np.ndarray, class_count: int) -> np.ndarray:
    """Each photo's class probabilities from a linear head that never saw it.

    Stratified folds (FOLDS, or fewer when a class has fewer photos), each scored by a standardised
    logistic regression trained on the others. Deterministic: the folds are seeded (FOLD_SEED) and
    the solver (L-BFGS) is.

    Args:
        features: (N, channels), pooled_features of every subset.
        labels: each photo's given label, an index into the classes.
        class_count: the number of classes.

    Returns:
        (N, class_count) probabilities.

    Raises:
        ValueError: a class with fewer than two photos (no fold could both train and score it).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = np.bincount(labels, minlength=class_count).min()
    if smallest < 2:
        raise ValueError(f"a class has {smallest} photo(s); scoring out of sample needs at least 2 per class")
    folds = StratifiedKFold(n_splits=min(FOLDS, smallest), shuffle=True, random_state=FOLD_SEED)
    head = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return cross_val_predict(head, features, labels, cv=folds, method="predict_proba")


def rank_label_issues(files: Sequence[str], labels: np.ndarray, probabilities: np.ndarray,
                      classes: Sequence[str]) -> list[dict]:
    """The photos whose label confident learning doubts, the most doubtful first.

    Args:
        files: each photo's path.
        labels: each photo's given label, its class's index in `classes`.
        probabilities: out_of_sample_probabilities, (N, len(classes)).
        classes: the class names in label order.

    Returns:
        One row per flagged photo: file, given (its label), suggested (the most probable class),
        score (the probability of its given label: lower is more doubtful).
    """
    from cleanlab.filter import find_label_issues

    flagged = find_label_issues(labels, probabilities, n_jobs=1)  # confident learning's count and choice
    scores = probabilities[np.arange(len(labels)), labels]
    # Ranked by self-confidence, as cleanlab ranks them, ties by file: the same order on every run.
    ranked = sorted(np.flatnonzero(flagged), key=lambda i: (scores[i], files[i]))
    return [{"file": files[i], "given": classes[labels[i]],
             "suggested": classes[int(np.argmax(probabilities[i]))],
             "score": round(float(scores[i]), 6)} for i in ranked]
