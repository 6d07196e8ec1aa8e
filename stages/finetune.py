"""Fine-tune the top of the conv base with the head: python -m stages.finetune

The third rung of the ladder (Chollet, 5.3.2): start from the model `augment` trained, whose head
already fits the frozen conv base (a random head would send large gradients into the pretrained
layers), unfreeze the top of the conv base (finetune.unfreeze) and train it with the head at a small
learning rate (finetune.learning_rate, RMSprop) for finetune.epochs epochs on augmented images.
BatchNormalization layers stay frozen, in inference mode, with the statistics they were trained with.

finetune.unfreeze is a layer name of the conv base (that layer and every one above it: block5_conv1,
the book's block5 of VGG16; block_13_expand for MobileNetV2) or a number N (its last N layers).
Writes finetune/finetuned/ (classifier.keras, dvclive/, predictions.json, metrics.json).
"""

from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import AUGMENTED_DIR, CLASSIFIER_FILE, FINETUNED_DIR
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.core.runtime import keras, seed_everything
from dogs_vs_cats.end_to_end import augmentation, end_to_end_model, evaluate_and_export, fit
from dogs_vs_cats.finetuning import check_finetune, conv_base_of, first_unfrozen, unfreeze


def main():
    settings = check_finetune(load_params())
    seed_everything(settings["seed"])
    classifier = keras.models.load_model(AUGMENTED_DIR / CLASSIFIER_FILE.name)
    conv_base = conv_base_of(classifier)
    names = [layer.name for layer in conv_base.layers]
    first = first_unfrozen(names, settings["unfreeze"], conv_base.name)
    unfreeze(conv_base, first)
    # Seeds above the four of augment's layers: the fine-tuning epochs see other random images.
    model = end_to_end_model(classifier.get_layer("preprocess"), conv_base, classifier.get_layer("head"),
                             augmentation(settings, settings["seed"] + 4), settings["learning_rate"])
    print(f"finetune: {conv_base.name} from {names[first]} ({len(names) - first} of {len(names)} layers) "
          "+ head")
    size = conv_base.input_shape[1]
    fit(model, size, settings, settings["epochs"], FINETUNED_DIR)
    conv_base.trainable = False  # exported as models/classifier.keras is: a frozen conv base
    evaluate_and_export(model, classifier, size, settings["batch_size"], FINETUNED_DIR,
                        plot_titles=("while fine-tuning", "(test, fine-tuned)"))


if __name__ == "__main__":
    run_stage(main)
