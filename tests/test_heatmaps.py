"""Grad-CAM heatmaps (dogs_vs_cats/heatmaps.py): the right feature map, the right class's gradient,
any number of classes, and which test photos the heatmaps stage draws."""

import numpy as np
import pytest

from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.params import ConvBase
from dogs_vs_cats.core.runtime import keras, tf
from dogs_vs_cats.heatmaps import (
    DOUBTS_SHOWN,
    MISTAKES_SHOWN,
    Explainer,
    feature_map_layer,
    photos_to_explain,
)
from dogs_vs_cats.model import build_classifier, build_head

SIZE = 32


def classifier(name, classes):
    conv_base, preprocess_input = build_conv_base(ConvBase(name, None, SIZE, 0), "float32")
    head = build_head(conv_base.output_shape[1:], units=8, dropout=0.5, learning_rate=1e-3, classes=classes)
    return build_classifier(conv_base, preprocess_input, head, classes)


def photos(count, seed=0):
    """Photos of several sizes: the Explainer resizes them as the classifier does."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SIZE + 8 * (i % 3), SIZE + 4 * (i % 2), 3)).astype(np.uint8)
            for i in range(count)]


@pytest.mark.parametrize("name, layer", [("vgg16", "block5_conv3"), ("mobilenet_v2", "out_relu"),
                                         ("resnet50", "conv5_block3_out")])
def test_the_feature_map_is_the_conv_bases_last_before_any_pooling(name, layer):
    conv_base, _ = build_conv_base(ConvBase(name, None, SIZE, 0), "float32")
    assert feature_map_layer(conv_base).name == layer


def test_each_channel_is_weighed_by_the_gradient_of_the_predicted_classs_probability():
    """Against Grad-CAM computed another way: VGG16's feature map through block5_pool and the head,
    differentiating the probability of the predicted class (for the first of two classes, 1 - P(second)).
    Its gradient is the logit's times a positive factor per photo, which the scaling to [0, 1] removes."""
    model = classifier("vgg16", ["cat", "dog"])
    explain = Explainer(model)
    images = photos(8)
    _, probabilities = explain(images)
    last = explain.head.layers[-1]  # the bias that splits the photos between the two classes
    last.bias.assign(last.bias - np.log(np.median(probabilities) / (1 - np.median(probabilities))))
    heatmaps, probabilities = explain(images)
    predicted_dog = probabilities[:, 0] > 0.5
    assert 0 < predicted_dog.sum() < len(images)

    resized = tf.stack([tf.image.resize(image, (SIZE, SIZE)) for image in images])
    conv_base = model.get_layer("vgg16")
    feature_map = keras.Model(conv_base.inputs, conv_base.get_layer("block5_conv3").output)(
        model.get_layer("preprocess")(resized))
    with tf.GradientTape() as tape:
        tape.watch(feature_map)
        dog = explain.head(conv_base.get_layer("block5_pool")(feature_map))[:, 0]
        predicted = tf.where(predicted_dog, dog, 1 - dog)
    gradients = tape.gradient(predicted, feature_map)
    expected = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(gradients, axis=(1, 2), keepdims=True) * feature_map,
                                        axis=-1)).numpy()
    expected /= np.maximum(expected.max(axis=(1, 2), keepdims=True), 1e-12)
    np.testing.assert_allclose(heatmaps, expected, atol=1e-4)
    # Random features all speak for one class; the shifted bias, not the photo, makes the other: no
    # place in those photos speaks for it (all zero). With the sign of the score wrong, it would.
    peaks = heatmaps.max(axis=(1, 2))
    assert set(peaks) == {0, 1} and len(set(predicted_dog[peaks == 0])) == 1


def test_more_classes_give_the_classifiers_probabilities_and_a_heatmap_each():
    model = classifier("mobilenet_v2", ["bird", "cat", "dog"])
    images = photos(5)
    heatmaps, probabilities = Explainer(model)(images)
    assert heatmaps.shape == (5, 1, 1) and ((heatmaps >= 0) & (heatmaps <= 1)).all()
    expected = np.concatenate([model(tf.cast(image[None], tf.float32))["probabilities"] for image in images])
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    again, _ = Explainer(model)(images)
    assert again.tobytes() == heatmaps.tobytes()  # the same pixels on every run


def row(file, actual, predicted, probability):
    return {"file": file, "actual": actual, "predicted": predicted, "probability": probability}


def test_the_stage_draws_the_surest_mistakes_then_each_classs_least_sure_right_answers():
    classes = ["cat", "dog"]
    mistakes = [row(f"m{i}", "cat", "dog", 0.5 + i / 40) for i in range(MISTAKES_SHOWN + 2)]
    right = [row(f"c{i}", "cat", "cat", i / 10) for i in range(5)] + [row(f"d{i}", "dog", "dog", 0.6 + i / 20)
                                                                      for i in range(5)]
    rows, count = photos_to_explain(right + mistakes, classes)
    assert count == MISTAKES_SHOWN + 2
    assert [r["file"] for r in rows[:MISTAKES_SHOWN]] == [f"m{i}" for i in range(MISTAKES_SHOWN + 1, 1, -1)]
    # P(dog) 0.4 and 0.3 are the cats' least confident; P(dog) 0.6 and 0.65 the dogs'.
    assert [r["file"] for r in rows[MISTAKES_SHOWN:]] == ["c4", "c3", "d0", "d1"][:2 * DOUBTS_SHOWN]
