"""Draw the training curves and the test-set evaluation: python -m stages.plots

Writes plots/accuracy.png and plots/loss.png (the recipe's figures, from DVCLive's history) and the
ROC and precision-recall points in eval/ for `dvc plots` (dogs_vs_cats/figures.py). The misclassified
test photos are in plots/heatmaps.jpg (the heatmaps stage), with what the classifier saw in them.
"""

import json

from dogs_vs_cats.core.classes import read_classes
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import (
    PLOTS_DIR,
    PRECISION_RECALL_FILE,
    PREDICTIONS_FILE,
    ROC_FILE,
)
from dogs_vs_cats.figures import draw, write_curves


def main():
    draw("accuracy", "Training and validation accuracy")
    draw("loss", "Training and validation loss")
    predictions, classes = json.loads(PREDICTIONS_FILE.read_text()), read_classes()
    write_curves(predictions, classes)
    print(f"wrote {PLOTS_DIR}/accuracy.png, {PLOTS_DIR}/loss.png, {ROC_FILE} and {PRECISION_RECALL_FILE}")


if __name__ == "__main__":
    run_stage(main)
