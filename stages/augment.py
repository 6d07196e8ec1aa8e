"""Train the head on the frozen conv base, end to end on augmented images: python -m stages.augment

The second rung of the ladder (Chollet, 5.3.1, "feature extraction with data augmentation"): the
conv base of `conv_base` (frozen) and the head of `train` (train.units, train.dropout, RMSprop at
finetune.head_learning_rate) in one model behind random flips, rotations, zooms and shifts, for
finetune.head_epochs epochs on the images of data/split/. Writes finetune/augmented/ (classifier.keras,
dvclive/, predictions.json, metrics.json; stages/end_to_end.py); the `finetune` stage starts from it.
"""

from stages.conv_base import build_conv_base, check_conv_base
from stages.end_to_end import (
    AUGMENTED_DIR,
    augmentation,
    check_training,
    end_to_end_model,
    evaluate_and_export,
    fit,
)
from stages.model import build_classifier, build_head, check_head, preprocess_layer
from stages.params import load_params, positive_int, positive_number
from stages.runtime import seed_everything


def check_params(params):
    """The parameters augment reads, checked: (conv_base section, head, training settings)."""
    head = check_head(params)
    settings = check_training(params)
    settings["epochs"] = positive_int(params, "finetune.head_epochs")
    settings["learning_rate"] = positive_number(params, "finetune.head_learning_rate")
    return check_conv_base(params), head, settings


def main():
    conv_params, head_params, settings = check_params(load_params())
    conv_base, preprocess_input = build_conv_base(conv_params, "float32")  # frozen
    seed_everything(settings["seed"])  # after build_conv_base, which seeds for its own initialisation
    head = build_head(conv_base.output_shape[1:], head_params["units"], head_params["dropout"],
                      settings["learning_rate"])
    size = conv_params["input_size"]
    model = end_to_end_model(preprocess_layer(preprocess_input), conv_base, head,
                             augmentation(settings, settings["seed"]), settings["learning_rate"])
    print(f"augment: {conv_base.name} (frozen) + head")
    fit(model, size, settings, settings["epochs"], AUGMENTED_DIR)
    # The export shares the trained layers: resizing, preprocessing, conv base and head, no augmentation.
    classifier = build_classifier(conv_base, preprocess_input, head)
    evaluate_and_export(model, classifier, size, settings["batch_size"], AUGMENTED_DIR)


if __name__ == "__main__":
    main()
