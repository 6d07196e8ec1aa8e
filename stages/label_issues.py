"""Rank the photos whose label looks wrong: python -m stages.label_issues

Every photo of data/split scored by a head that never saw it, then ranked by confident learning
(dogs_vs_cats/label_issues.py). Reads the features, never the trained head. Writes
  eval/label_issues.json   one row per doubtful photo, the most doubtful first: file, given (its
                           folder's class), suggested (the likeliest class), score (the probability
                           of its given label)
  eval/label_quality.json  how many, of how many photos, and the out-of-sample accuracy (a metric)
  plots/label_issues.jpg   the most doubtful photos
Fix the photos' folder (move or remove a photo) and `dvc repro`.
"""

from pathlib import Path

import numpy as np

from dogs_vs_cats.core.atomic import write_json
from dogs_vs_cats.core.classes import read_classes
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import (
    FEATURES_DIR,
    LABEL_ISSUES_FILE,
    LABEL_ISSUES_GALLERY,
    LABEL_QUALITY_FILE,
    SUBSETS,
)
from dogs_vs_cats.figures import draw_gallery
from dogs_vs_cats.images import read_photo
from dogs_vs_cats.label_issues import out_of_sample_probabilities, pooled_features, rank_label_issues

SHOWN = 8  # photos in the gallery


def main():
    classes = read_classes()
    subsets = [pooled_features(FEATURES_DIR / subset) for subset in SUBSETS]
    features, labels = (np.concatenate(parts) for parts in list(zip(*subsets, strict=True))[:2])
    files = [file for _, _, subset_files in subsets for file in subset_files]

    probabilities = out_of_sample_probabilities(features, labels, len(classes))
    issues = rank_label_issues(files, labels, probabilities, classes)
    write_json(LABEL_ISSUES_FILE, issues)
    write_json(LABEL_QUALITY_FILE, {"label_issues": len(issues), "photos": len(files),
                                    "out_of_sample_accuracy": round(float(np.mean(
                                        probabilities.argmax(axis=1) == labels)), 4)})
    draw_gallery(LABEL_ISSUES_GALLERY,
                 [(read_photo(row["file"]), f"{Path(row['file']).name}: labelled {row['given']}\n"
                   f"looks {row['suggested']}, P({row['given']}) = {row['score']:.4f}", None)
                  for row in issues[:SHOWN]],
                 f"Labels that look wrong: the {min(SHOWN, len(issues))} most doubtful of {len(issues)} "
                 f"({LABEL_ISSUES_FILE})", empty="No label looks wrong")
    print(f"{len(issues)} of {len(files)} photos have a label that looks wrong: {LABEL_ISSUES_FILE}, "
          f"{LABEL_ISSUES_GALLERY}")


if __name__ == "__main__":
    run_stage(main)
