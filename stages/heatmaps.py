"""Draw what the classifier saw in the test photos it got wrong: python -m stages.heatmaps

Writes plots/heatmaps.jpg: the most confidently misclassified test photos, then each class's least
confident right ones, each under its Grad-CAM heatmap from models/classifier.keras
(dogs_vs_cats/heatmaps.py). `python predict.py --explain PHOTO` draws the same for any photo.
"""

import json

from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import CLASSIFIER_FILE, HEATMAPS_FILE, PREDICTIONS_FILE
from dogs_vs_cats.core.runtime import keras
from dogs_vs_cats.heatmaps import Explainer, draw_heatmaps


def main():
    explain = Explainer(keras.models.load_model(CLASSIFIER_FILE))
    draw_heatmaps(explain, json.loads(PREDICTIONS_FILE.read_text()), HEATMAPS_FILE)
    print(f"wrote {HEATMAPS_FILE} (Grad-CAM on {explain.feature_map_name})")


if __name__ == "__main__":
    run_stage(main)
