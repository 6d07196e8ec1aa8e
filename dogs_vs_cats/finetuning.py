"""Fine-tuning the top of the conv base (the finetune stage): which layers, unfreezing them, training.

finetune.unfreeze is top_block (the layers at the conv base's last resolution, whatever the base:
VGG16's block5, the book's choice; MobileNetV2's blocks 13 to 16), a layer name of the conv base
(that layer and every one above it: block5_conv1, block_13_expand) or a number N (its last N
layers). BatchNormalization layers stay frozen, in inference mode, with the statistics they were
trained with.
"""

from __future__ import annotations

import difflib

from dogs_vs_cats.conv_base import weightless_conv_base
from dogs_vs_cats.core.layout import (
    AUGMENTED_DIR,
    CLASSIFIER_FILE,
    FINETUNED_DIR,
    FINETUNED_HEATMAPS,
    MODEL_DIR,
)
from dogs_vs_cats.core.params import TOP_BLOCK, ParamError, Params
from dogs_vs_cats.core.runtime import keras, seed_everything
from dogs_vs_cats.end_to_end import augmentation, end_to_end_model, evaluate_and_export, fit


def spatial_size(layer: keras.Layer) -> tuple[int | None, ...] | None:
    """(height, width) of a layer's output, or None for an output that is not a batch of images."""
    shape = getattr(layer.output, "shape", ())
    return tuple(shape[1:3]) if len(shape) == 4 else None


def top_block(conv_base: keras.Model) -> int:
    """The index of the first layer with weights at the conv base's last resolution.

    Every keras.applications base is a stack of stages, each at half the resolution of the one
    below; its top stage is what fine-tuning adapts first, whatever the base names its layers:
    block5_conv1 onwards for VGG16 (the book's block5), block_13_depthwise onwards for MobileNetV2,
    conv5_block1_1_conv for ResNet50.
    """
    sizes = [spatial_size(layer) for layer in conv_base.layers]
    weighted = [index for index, layer in enumerate(conv_base.layers) if layer.weights]
    last = sizes[weighted[-1]]
    # The stage starts after the last layer at a higher resolution. Not at the first layer at the
    # last one: squeeze-and-excite convolutions (EfficientNet, MobileNetV3) run at 1x1 in every stage.
    higher = [index for index, size in enumerate(sizes) if size is not None and size[0] > last[0]]
    return next(index for index in weighted if index > max(higher, default=0))


def first_unfrozen(conv_base: keras.Model, unfreeze: int | str, base_name: str) -> int:
    """The index of the first layer to unfreeze: the top block's first, the layer named `unfreeze`,
    or the last `unfreeze` layers' first. `base_name` names the base in messages."""
    names = [layer.name for layer in conv_base.layers]
    if isinstance(unfreeze, int):
        if unfreeze >= len(names):  # the first layer is the Input: nothing to train
            raise ParamError("finetune.unfreeze", f"{base_name} has only {len(names) - 1} layers "
                             f"above its input, got {unfreeze}", "unfreeze fewer layers")
        return len(names) - unfreeze
    if unfreeze == TOP_BLOCK:
        return top_block(conv_base)
    if unfreeze not in names:
        closest = difflib.get_close_matches(unfreeze, names, n=1, cutoff=0)
        raise ParamError("finetune.unfreeze", f"{base_name} has no layer {unfreeze!r}",
                         f"give one of its layer names (the closest: {closest[0]}), {TOP_BLOCK}, "
                         "or a number of layers")
    return names.index(unfreeze)


def check_layers(params: Params | dict) -> int:
    """conv_base.name, conv_base.input_size and finetune.unfreeze against the conv base's
    architecture (for the check_model stage): the index of the first layer that finetune unfreezes."""
    params = Params.of(params)
    conv = params.conv_base
    conv_base = weightless_conv_base(conv.name, conv.input_size)
    return first_unfrozen(conv_base, params.finetune.unfreeze, conv.name)


def conv_base_of(classifier: keras.Model) -> keras.Model:
    """The conv base inside an exported classifier: its one nested model that is not the head."""
    return next(layer for layer in classifier.layers
                if isinstance(layer, keras.Model) and layer.name != "head")


def unfreeze(conv_base: keras.Model, first: int) -> None:
    """Make the layers of conv_base from index `first` on trainable, except BatchNormalization.

    A frozen BatchNormalization layer also runs in inference mode (Keras 3): it normalises with
    the statistics learnt in pretraining, which a few small batches of cats and dogs would spoil.
    """
    conv_base.trainable = True
    for index, layer in enumerate(conv_base.layers):
        layer.trainable = index >= first and not isinstance(layer, keras.layers.BatchNormalization)


def fine_tune(params: Params) -> None:
    """The finetune stage: the top of the conv base and the head of augment's model, on augmented images.

    Starts from the model `augment` trained, whose head already fits the frozen conv base (a random
    head would send large gradients into the pretrained layers), unfreezes finetune.unfreeze and
    trains at finetune.learning_rate for finetune.epochs epochs; written to FINETUNED_DIR.

    Args:
        params: params.yaml (core.params.load_params).
    """
    settings = Params.of(params).finetune
    seed_everything(settings.seed)
    classifier = keras.models.load_model(AUGMENTED_DIR / MODEL_DIR / CLASSIFIER_FILE.name)
    conv_base = conv_base_of(classifier)
    names = [layer.name for layer in conv_base.layers]
    first = first_unfrozen(conv_base, settings.unfreeze, conv_base.name)
    unfreeze(conv_base, first)
    # Seeds above the four of augment's layers: the fine-tuning epochs see other random images.
    model = end_to_end_model(classifier.get_layer("preprocess"), conv_base, classifier.get_layer("head"),
                             augmentation(settings, settings.seed + 4), settings.learning_rate)
    print(f"finetune: {conv_base.name} from {names[first]} ({len(names) - first} of {len(names)} layers) "
          "+ head")
    size = conv_base.input_shape[1]
    fit(model, size, settings, settings.epochs, FINETUNED_DIR)
    conv_base.trainable = False  # exported as models/classifier.keras is: a frozen conv base
    evaluate_and_export(model, classifier, size, settings.batch_size, FINETUNED_DIR,
                        plot_titles=("while fine-tuning", "(test, fine-tuned)"),
                        images=[FINETUNED_HEATMAPS.relative_to(FINETUNED_DIR).as_posix()])
