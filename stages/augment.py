"""Train the head on the frozen conv base, end to end on augmented images: python -m stages.augment

The second rung of the ladder (Chollet, 5.3.1, "feature extraction with data augmentation"): the
conv base of `conv_base` (frozen) and the head of `train` (train.units, train.dropout, RMSprop at
finetune.head_learning_rate) in one model behind random flips, rotations, zooms and shifts, for
finetune.head_epochs epochs on the images of data/split/. Writes finetune/augmented/ (classifier.keras,
dvclive/, predictions.json, metrics.json; dogs_vs_cats/end_to_end.py); the `finetune` stage starts
from it.
"""

from dogs_vs_cats.conv_base import build_conv_base, check_conv_base
from dogs_vs_cats.core.classes import read_classes
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import AUGMENTED_DIR
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.core.runtime import seed_everything
from dogs_vs_cats.end_to_end import augmentation, check_augment, end_to_end_model, evaluate_and_export, fit
from dogs_vs_cats.model import build_classifier, build_head, preprocess_layer


def main():
    params = load_params()
    head_params, settings = check_augment(params)
    conv_params = check_conv_base(params)
    classes = read_classes()
    conv_base, preprocess_input = build_conv_base(conv_params, "float32")  # frozen
    seed_everything(settings["seed"])  # after build_conv_base, which seeds for its own initialisation
    head = build_head(conv_base.output_shape[1:], head_params["units"], head_params["dropout"],
                      settings["learning_rate"], classes)
    size = conv_params["input_size"]
    model = end_to_end_model(preprocess_layer(preprocess_input), conv_base, head,
                             augmentation(settings, settings["seed"]), settings["learning_rate"])
    print(f"augment: {conv_base.name} (frozen) + head")
    fit(model, size, settings, settings["epochs"], AUGMENTED_DIR)
    # The export shares the trained layers: resizing, preprocessing, conv base and head, no augmentation.
    classifier = build_classifier(conv_base, preprocess_input, head, classes)
    evaluate_and_export(model, classifier, size, settings["batch_size"], AUGMENTED_DIR,
                        plot_titles=("with augmentation (frozen conv base)", "(test, augmentation)"))


if __name__ == "__main__":
    run_stage(main)
