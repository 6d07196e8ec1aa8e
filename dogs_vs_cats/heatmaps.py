"""What the model sees: Grad-CAM class-activation heatmaps of an exported classifier (DLwP 5.4.3).

Grad-CAM (Selvaraju et al. 2017) weighs each channel of the conv base's last feature map by the
mean gradient, over the map, of the predicted class's score; the weighted sum of the channels, its
positive part, scaled to [0, 1], is the heatmap: where it is high, the photo pushed the decision
towards the predicted class. The score is the head's output before its sigmoid or softmax (a
logit): a probability near 0 or 1 saturates and its gradient vanishes. With two classes the head
has one logit, that of the second class: negated when the first class is predicted.

Works on every classifier that train, augment and finetune export (model.build_classifier), for
any keras.applications conv base: its layers "resize", "preprocess", the conv base and "head".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.core.classes import predicted_labels
from dogs_vs_cats.core.runtime import keras, tf
from dogs_vs_cats.figures import confidence, draw_gallery
from dogs_vs_cats.images import read_photo, resize
from dogs_vs_cats.model import class_names

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

# Layers whose output is not a feature map the conv base computed: the image, or a pooling of a map.
NOT_FEATURE_MAPS = (keras.layers.InputLayer, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
                    keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def feature_map_layer(conv_base: keras.Model) -> keras.Layer:
    """The conv base's last layer whose output is a feature map, (batch, height, width, channels), and
    not a pooling of one: VGG16's block5_conv3, MobileNetV2's out_relu, ResNet50's conv5_block3_out.

    Args:
        conv_base: a keras.applications model without its top.

    Returns:
        The layer. Raises ValueError when no layer has a feature-map output.
    """
    for layer in reversed(conv_base.layers):
        if len(layer.output.shape) == 4 and not isinstance(layer, NOT_FEATURE_MAPS):
            return layer
    raise ValueError(f"{conv_base.name} has no layer with a feature-map output")


class Explainer:
    """Grad-CAM heatmaps and class probabilities of an exported classifier, a batch of photos at a time.

        explain = Explainer(keras.models.load_model("models/classifier.keras"))
        heatmaps, probabilities = explain([photo])   # photo: (H, W, 3) RGB, 0-255, any size
    """

    def __init__(self, classifier: keras.Model):
        self.classes = class_names(classifier)
        self.size = classifier.get_layer("resize").height
        self.preprocess = classifier.get_layer("preprocess")
        self.head = classifier.get_layer("head")
        conv_base = next(layer for layer in classifier.layers
                         if isinstance(layer, keras.Model) and layer is not self.head)
        feature_map = feature_map_layer(conv_base)
        self.feature_map_name = feature_map.name
        # Split at the feature map: only what follows it (a pooling at most) needs a gradient.
        self.to_feature_map = keras.Model(conv_base.inputs, feature_map.output)
        self.to_features = (None if feature_map.output is conv_base.output
                            else keras.Model(feature_map.output, conv_base.output))

    def logits(self, features: tf.Tensor) -> tf.Tensor:
        """The head's last Dense layer before its activation, (batch, units), at inference (no dropout)."""
        *hidden, last = self.head.layers
        for layer in hidden:
            features = layer(features, training=False)
        return keras.ops.matmul(features, last.kernel) + last.bias

    def __call__(self, photos: Sequence[np.ndarray | tf.Tensor],
                 labels: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM heatmaps of photos of any sizes, resized as the classifier resizes them.

        Args:
            photos: RGB images, (H, W, 3), 0-255.
            labels: the class to explain in each, its index in `classes`; by default the one the
                classifier predicts. (A caller that reports another run's prediction, such as
                eval/predictions.json from extract's features, passes it, so that the heatmap
                shows the evidence for the class its heading names.)

        Returns:
            (heatmaps, (N, h, w) in [0, 1] on the feature map's grid; probabilities, (N, units) as
            the classifier's "probabilities").
        """
        images = tf.stack([resize(photo, self.size) for photo in photos])
        feature_map = self.to_feature_map(self.preprocess(images), training=False)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(feature_map)
            features = (feature_map if self.to_features is None
                        else self.to_features(feature_map, training=False))
            logits = self.logits(features)
            probabilities = self.head.layers[-1].activation(logits)
            explained = predicted_labels(probabilities.numpy()) if labels is None else np.asarray(labels)
            if logits.shape[-1] == 1:  # the second class's logit; the first's is its negative
                scores = logits[:, 0] * np.where(explained == 1, 1.0, -1.0).astype(np.float32)
            else:
                scores = tf.gather(logits, explained, batch_dims=1)
        # Each photo's score depends on its own feature map only: one gradient of their sum gives all.
        gradients = tape.gradient(scores, feature_map)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        heatmaps = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1)).numpy()
        peaks = heatmaps.max(axis=(1, 2), keepdims=True)
        return np.divide(heatmaps, peaks, out=np.zeros_like(heatmaps), where=peaks > 0), probabilities.numpy()


MISTAKES_SHOWN = 8  # the most confidently misclassified test photos
DOUBTS_SHOWN = 2    # and, of each class, its least confident right ones
BATCH_SIZE = 32     # photos through the conv base at a time


def photos_to_explain(predictions: list[dict], classes: Sequence[str]) -> tuple[list[dict], int]:
    """The rows of eval/predictions.json to draw, and how many test photos were misclassified.

    Args:
        predictions: eval/predictions.json's rows (file, actual, predicted, probability).
        classes: the class names in label order.

    Returns:
        (rows: the MISTAKES_SHOWN most confident mistakes, then each class's DOUBTS_SHOWN least
        confident right answers, ties by file name; the number of mistakes).
    """
    def by_confidence(rows, most_first):
        return sorted(rows, key=lambda row: (-confidence(row, classes) if most_first
                                             else confidence(row, classes), row["file"]))

    mistakes = [row for row in predictions if row["predicted"] != row["actual"]]
    doubts = []
    for name in classes:
        right = [row for row in predictions if row["actual"] == row["predicted"] == name]
        doubts += by_confidence(right, most_first=False)[:DOUBTS_SHOWN]
    return by_confidence(mistakes, most_first=True)[:MISTAKES_SHOWN] + doubts, len(mistakes)


def heading(row: dict, classes: Sequence[str]) -> str:
    """A photo's heading: its true class, what the model took it for, and how sure it was."""
    predicted = f"P({row['predicted']}) = {confidence(row, classes):.4f}"
    if row["predicted"] == row["actual"]:
        return f"{row['actual']}, right\n{predicted}"
    return f"{row['actual']} taken for {row['predicted']}\n{predicted}"


def draw_heatmaps(explain: Explainer, predictions: list[dict], path: Path) -> None:
    """The test photos of photos_to_explain, each under its Grad-CAM heatmap, in one figure.

    Args:
        explain: the Explainer of the classifier that made `predictions`.
        predictions: its eval/predictions.json rows; each heatmap explains the row's predicted class.
        path: the figure's file (.jpg).
    """
    rows, mistakes = photos_to_explain(predictions, explain.classes)
    photos = [read_photo(row["file"]) for row in rows]
    labels = [explain.classes.index(row["predicted"]) for row in rows]
    heatmaps = []
    for start in range(0, len(rows), BATCH_SIZE):
        heatmaps += list(explain(photos[start:start + BATCH_SIZE], labels[start:start + BATCH_SIZE])[0])
    draw_gallery(path, [(photo, heading(row, explain.classes), heatmap)
                        for photo, row, heatmap in zip(photos, rows, heatmaps, strict=True)],
                 f"What the classifier saw (Grad-CAM on {explain.feature_map_name}): "
                 f"{min(mistakes, MISTAKES_SHOWN)} of {mistakes} misclassified test photos, "
                 "then each class's least confident right ones", empty="No test photos")
