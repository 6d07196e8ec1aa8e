"""The models: the dense head trained on conv-base features, and the exported classifier.

The head ends in one sigmoid unit, P(second class), for two classes (the recipe: binary
cross-entropy), or in a softmax over the classes for more (sparse categorical cross-entropy).

models/classifier.keras takes a raw RGB image of any size (float 0-255) and returns a dict:
"probabilities" (what the head outputs) and "class" (the predicted class's name). It is built only
of stock Keras layers and ops, so `keras.models.load_model` opens it without this repository, and
its "class_names" layer (a StringLookup) holds the class names in label order:

    Input (None, None, 3) -> Resizing (bilinear, as images.load_image) -> "preprocess" 1x1 Conv2D
    (the conv base's preprocess_input) -> conv base -> trained head -> "probabilities"
                                                                     -> class_names -> "class"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dogs_vs_cats.core.classes import THRESHOLD, output_units
from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.runtime import keras

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import tensorflow as tf
    from numpy.typing import ArrayLike


def class_weights(labels: Sequence[float] | np.ndarray, class_weight: str | None,
                  class_count: int) -> dict[int, float] | None:
    """Keras's class_weight for train.class_weight: None, or "balanced": total / (classes x count of
    the class), scikit-learn's rule, so that every class weighs the same in the loss."""
    if class_weight is None:
        return None
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=class_count)
    return {label: len(labels) / (class_count * count) for label, count in enumerate(counts) if count}


def loss_for(units: int) -> str:
    """Binary cross-entropy on one sigmoid unit (the recipe); sparse categorical on a softmax."""
    return "binary_crossentropy" if units == 1 else "sparse_categorical_crossentropy"


def build_head(feature_shape: tuple[int, ...] | tf.TensorShape, units: int, dropout: float,
               learning_rate: float, classes: Sequence[str]) -> keras.Sequential:
    """The densely connected classifier that sits on top of the frozen conv base."""
    outputs = output_units(classes)
    model = keras.Sequential([
        keras.Input(shape=feature_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(outputs, activation="sigmoid" if outputs == 1 else "softmax"),
    ], name="head")
    # Imported here, where a stage's run_stage shows its one-line error should Keras have renamed
    # the internals it checks at import; predict.py, which trains nothing, never imports it.
    from dogs_vs_cats.keras_private import RMSprop

    # jit_compile=False: only the optimizer's update is compiled (dogs_vs_cats/keras_private.py);
    # Keras would otherwise compile the whole step, products included, with XLA.
    model.compile(optimizer=RMSprop(learning_rate=learning_rate), loss=loss_for(outputs),
                  metrics=["accuracy"], jit_compile=False)
    return model


# Batch size for evaluation and prediction only (training keeps the recipe's train.batch_size): a
# batch costs one pass over the Dense kernel, so fewer, larger batches evaluate faster.
EVALUATION_BATCH_SIZE = 500


def fit_head(model: keras.Model, train: tf.data.Dataset, validation: tf.data.Dataset, epochs: int,
             callbacks: Iterable[keras.callbacks.Callback] = (),
             class_weight: dict[int, float] | None = None) -> keras.callbacks.History:
    """Train the head on batches of (features, labels), evaluating on `validation` after each epoch."""
    return model.fit(train, validation_data=validation, epochs=epochs, verbose=2, callbacks=list(callbacks),
                     class_weight=class_weight,
                     shuffle=False)  # the batches shuffle themselves (features.batches)


def affine_preprocessing(
        preprocess_input: Callable[[np.ndarray], ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 matrix and bias with preprocess_input(x) == x @ matrix + bias, for each pixel x.

    Probes preprocess_input with a black pixel (the bias) and one pixel per channel (the matrix
    rows), then checks the result on random pixels: raises ValueError when preprocess_input is not
    a per-pixel affine map of the channels (it could not be a 1x1 convolution then).
    """
    def apply(pixels):  # (N, 3) -> (N, 3); a fresh array each time: some versions work in place
        images = np.array(pixels, dtype=np.float32).reshape(-1, 1, 1, 3)
        return np.asarray(preprocess_input(images), dtype=np.float64).reshape(-1, 3)

    probe = 255.0  # a full-scale step keeps rounding small relative to the slope
    bias = apply(np.zeros((1, 3)))[0]
    matrix = (apply(probe * np.eye(3)) - bias) / probe

    pixels = np.random.default_rng(0).uniform(0, 255, size=(1000, 3))
    expected = apply(pixels)
    error = np.abs(pixels @ matrix + bias - expected).max()
    if error > 1e-6 * max(1.0, np.abs(expected).max()):  # float32 rounding, no more
        raise ValueError(f"preprocess_input is not a per-channel affine map (max error {error:.3g}), "
                         "so it cannot be exported as a 1x1 convolution")
    return matrix.astype(np.float32), bias.astype(np.float32)


def preprocess_layer(preprocess_input: Callable[[np.ndarray], ArrayLike]) -> keras.layers.Conv2D:
    """A fixed 1x1 Conv2D, named "preprocess", that computes preprocess_input on each pixel."""
    matrix, bias = affine_preprocessing(preprocess_input)
    layer = keras.layers.Conv2D(3, 1, name="preprocess", trainable=False)
    layer.build((None, None, None, 3))
    layer.set_weights([matrix.reshape(1, 1, 3, 3), bias])
    return layer


def inference_copy(head: keras.Model) -> keras.Sequential:
    """The head's layers (and so its weights) without its compiled state: no optimizer to save.

    RMSprop's state is as large as the Dense kernel itself; nothing resumes training from a file.
    """
    return keras.Sequential([keras.Input(shape=head.input_shape[1:]), *head.layers], name=head.name)


def class_name_output(probabilities: keras.KerasTensor, classes: Sequence[str]) -> keras.KerasTensor:
    """The predicted class's name, in the model: P(second) > THRESHOLD for two classes, else argmax."""
    if len(classes) == 2:
        second = keras.ops.squeeze(probabilities, axis=-1)
        labels = keras.ops.cast(keras.ops.greater(second, THRESHOLD), "int64")
    else:
        labels = keras.ops.argmax(probabilities, axis=-1)
    return keras.layers.StringLookup(vocabulary=list(classes), invert=True, num_oov_indices=0,
                                     name="class_names")(labels)


def class_names(classifier: keras.Model) -> list[str]:
    """The class names an exported classifier holds, in label order; a UserError for a model that
    is not one (models/classifier.keras is)."""
    try:
        layer = classifier.get_layer("class_names")
    except ValueError as error:
        raise UserError(f"error: {classifier.name} is not a classifier that train exports (it has no "
                        "class_names layer). Fix: pass --model models/classifier.keras, or the "
                        "model/classifier.keras of augment or finetune") from error
    return [str(name) for name in layer.get_vocabulary()]


def build_classifier(conv_base: keras.Model, preprocess_input: Callable[[np.ndarray], Any], head: keras.Model,
                     classes: Sequence[str]) -> keras.Model:
    """Chain resizing, preprocessing, the conv base and the head into one model: image -> probabilities
    and class name."""
    height, width = conv_base.input_shape[1:3]
    images = keras.Input(shape=(None, None, 3), name="image")  # RGB, float 0-255, any size
    # training=False: image preprocessing layers default to training=True, which a plain
    # classifier(images) call would pass on to the head's Dropout.
    resized = keras.layers.Resizing(height, width, interpolation="bilinear",
                                    name="resize")(images, training=False)
    probabilities = inference_copy(head)(conv_base(preprocess_layer(preprocess_input)(resized)))
    return keras.Model(images, {"probabilities": probabilities,
                                "class": class_name_output(probabilities, classes)}, name="classifier")
