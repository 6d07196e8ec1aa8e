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


def classifier(name, classes, size=SIZE):
    conv_base, preprocess_input = build_conv_base(ConvBase(name, None, size, 0), "float32")
    head = build_head(conv_base.output_shape[1:], units=8, dropout=0.5, learning_rate=1e-3, classes=classes)
    return build_classifier(conv_base, preprocess_input, head, classes)


def photos(count, seed=0, size=SIZE):
    """Photos of several sizes: the Explainer resizes them as the classifier does."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size + 8 * (i % 3), size + 4 * (i % 2), 3)).astype(np.uint8)
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


def test_more_classes_explain_the_predicted_or_a_chosen_class_by_its_logit():
    """Against Grad-CAM computed another way: VGG16's block5_conv3 map through block5_pool and a copy
    of the head whose last Dense layer has no softmax, differentiating the chosen class's output."""
    model = classifier("vgg16", ["bird", "cat", "dog"], size=64)  # a 4x4 feature map
    explain = Explainer(model)
    images = photos(6, size=64)
    heatmaps, probabilities = explain(images)
    expected = np.concatenate([model(tf.cast(image[None], tf.float32))["probabilities"] for image in images])
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)

    head = model.get_layer("head")
    *hidden, last = head.layers
    linear = keras.layers.Dense(last.units)
    linear.build(last.input.shape)
    linear.set_weights(last.get_weights())
    logits_of = keras.Sequential([*hidden, linear])
    resized = tf.stack([tf.image.resize(image, (64, 64)) for image in images])
    conv_base = model.get_layer("vgg16")
    feature_map = keras.Model(conv_base.inputs, conv_base.get_layer("block5_conv3").output)(
        model.get_layer("preprocess")(resized))
    predicted = probabilities.argmax(axis=1)
    for chosen in (predicted, (predicted + 1) % 3):
        with tf.GradientTape() as tape:
            tape.watch(feature_map)
            logits = logits_of(conv_base.get_layer("block5_pool")(feature_map), training=False)
            scores = tf.gather(logits, chosen, batch_dims=1)
        gradients = tape.gradient(scores, feature_map)
        maps = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(gradients, axis=(1, 2), keepdims=True) * feature_map,
                                        axis=-1)).numpy()
        maps /= np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)
        explained, _ = explain(images, None if chosen is predicted else list(chosen))
        np.testing.assert_allclose(explained, maps, atol=1e-4)
    np.testing.assert_array_equal(explain(images, list(predicted))[0], heatmaps)
    assert not np.array_equal(explained, heatmaps)  # another class, another map
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


def test_no_mistakes_and_a_class_never_right_leave_those_rows_out():
    classes = ["bird", "cat", "dog"]
    predictions = [row("b1", "bird", "bird", 0.9), row("c1", "cat", "dog", 0.8), row("d1", "dog", "dog", 0.7),
                   row("d2", "dog", "dog", 0.6), row("d3", "dog", "dog", 0.99)]
    rows, count = photos_to_explain(predictions, classes)
    assert count == 1 and [r["file"] for r in rows] == ["c1", "b1", "d2", "d1"]
    rows, count = photos_to_explain([r for r in predictions if r["file"] != "c1"], classes)
    assert count == 0 and [r["file"] for r in rows] == ["b1", "d2", "d1"]
    assert photos_to_explain([], classes) == ([], 0)
