"""Draw what the classifiers saw in the test photos they got wrong: python -m stages.heatmaps

Writes plots/heatmaps.jpg: the most confidently misclassified test photos, then each class's least
confident right ones, each under its Grad-CAM heatmap from models/classifier.keras
(dogs_vs_cats/heatmaps.py); and the same for the fine-tuned model in finetune/finetuned/heatmaps/
with finetune.enabled (else a note there). `python predict.py --explain PHOTO` draws any photo.
"""

import json
import shutil

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import (
    CLASSIFIER_FILE,
    FINETUNED_DIR,
    FINETUNED_HEATMAPS,
    FINETUNED_HEATMAPS_DIR,
    HEATMAPS_FILE,
    MODEL_DIR,
    OFF_NOTE,
    PREDICTIONS_FILE,
    RESULTS_DIR,
)
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.core.runtime import keras, seed_everything
from dogs_vs_cats.heatmaps import Explainer, draw_heatmaps

OFF_TEXT = ("switched off: finetune.enabled is false in params.yaml: no fine-tuned model to draw. "
            "Set it to true (dvc exp run -S finetune.enabled=true) to train and draw it\n")


def draw(classifier_file, predictions_file, out_file):
    """One classifier's figure, from the predictions it made on the test photos."""
    explain = Explainer(keras.models.load_model(classifier_file))
    draw_heatmaps(explain, json.loads(predictions_file.read_text()), out_file)
    print(f"wrote {out_file} (Grad-CAM on {explain.feature_map_name})")


def main():
    enabled = load_params().finetune.enabled
    seed_everything(0)  # nothing random here; on a GPU it also makes the ops deterministic: the same pixels
    draw(CLASSIFIER_FILE, PREDICTIONS_FILE, HEATMAPS_FILE)
    shutil.rmtree(FINETUNED_HEATMAPS_DIR, ignore_errors=True)
    if enabled:
        finetuned = FINETUNED_DIR / MODEL_DIR / CLASSIFIER_FILE.name
        draw(finetuned, FINETUNED_DIR / RESULTS_DIR / PREDICTIONS_FILE.name, FINETUNED_HEATMAPS)
    else:
        with atomic_path(FINETUNED_HEATMAPS_DIR / OFF_NOTE) as tmp:
            tmp.write_text(OFF_TEXT)


if __name__ == "__main__":
    run_stage(main)
