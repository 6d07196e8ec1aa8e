"""stages/augment.py, stages/finetune.py and what they share (dogs_vs_cats/end_to_end.py, finetuning.py)."""

import dataclasses
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from dogs_vs_cats.conv_base import build_conv_base, weightless_conv_base
from dogs_vs_cats.core.layout import (
    AUGMENTED_DIR,
    CLASSES_FILE,
    CLASSIFIER_FILE,
    FINETUNED_DIR,
    MODEL_DIR,
    OFF_NOTE,
    PREDICTIONS_FILE,
    RESULTS_DIR,
    SPLIT_DIR,
)
from dogs_vs_cats.core.params import ConvBase, ParamError, Params
from dogs_vs_cats.end_to_end import augmentation, end_to_end_model, subset_dataset, train_augmented
from dogs_vs_cats.finetuning import check_layers, conv_base_of, first_unfrozen, unfreeze
from dogs_vs_cats.model import build_classifier, build_head, class_names
from helpers import CLASSES, REPO, TEST_PARAMS, make_raw, merged, subprocess_env, write_params
from stages import augment, finetune

# In each stage's folder:
MODEL_FILE, METRICS_FILE = MODEL_DIR / CLASSIFIER_FILE.name, RESULTS_DIR / "metrics.json"
SETTINGS = Params(TEST_PARAMS).finetune
ON = {"finetune": {"enabled": True}}


@pytest.mark.parametrize("value", [None, "yes", 1, 0])
def test_the_switch_is_true_or_false(value):
    with pytest.raises(ParamError, match=r"params\.yaml finetune\.enabled: must be true or false, got "):
        _ = Params(merged(TEST_PARAMS, {"finetune": {"enabled": value}})).finetune


def test_switched_off_the_stages_write_a_note_and_no_model_without_loading_tensorflow(project):
    """They run in every `dvc repro`: off, in a fresh Python, no TensorFlow, no model, no metrics."""
    write_params(project)  # finetune.enabled: false, and no images at all
    for stage_dir in (AUGMENTED_DIR, FINETUNED_DIR):  # what a run with it on left
        (stage_dir / RESULTS_DIR).mkdir(parents=True)
        (stage_dir / "dvc.yaml").write_text("metrics: [results/metrics.json]\n")
    code = ("import sys; from stages import augment, finetune; augment.main(); finetune.main(); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow loaded'")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, text=True, capture_output=True,
                            env=dict(subprocess_env(), PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("switched off: finetune.enabled is false") == 2, result.stdout
    for stage_dir in (AUGMENTED_DIR, FINETUNED_DIR):
        for folder in (MODEL_DIR, RESULTS_DIR):  # a note, not an empty folder, which DVC warns about
            assert [path.name for path in (stage_dir / folder).iterdir()] == [OFF_NOTE.name]
            assert "dvc exp run -S finetune.enabled=true" in (stage_dir / folder / OFF_NOTE).read_text()
        assert not (stage_dir / "dvc.yaml").exists()  # no metrics or plots declared


@pytest.mark.parametrize("key, value", [
    ("batch_size", 0), ("seed", 1.5), ("rotation", 1), ("zoom", -0.1), ("shift", "some"),
    ("head_epochs", 0), ("head_learning_rate", 0), ("head_learning_rate", "slow"),
])
def test_bad_augment_params_name_the_parameter(key, value):
    with pytest.raises(ParamError, match=rf"params\.yaml finetune\.{key}: "):
        _ = Params(merged(TEST_PARAMS, {"finetune": {key: value}})).finetune


@pytest.mark.parametrize("key, value", [
    ("epochs", 0), ("learning_rate", -1e-5), ("unfreeze", 0), ("unfreeze", ""), ("unfreeze", True),
    ("unfreeze", None), ("unfreeze", 2.5),
])
def test_bad_finetune_params_name_the_parameter(key, value):
    with pytest.raises(ParamError, match=rf"params\.yaml finetune\.{key}: "):
        _ = Params(merged(TEST_PARAMS, {"finetune": {key: value}})).finetune


def test_augment_checks_the_head_of_train_before_any_work(project):
    """No split here: a bad train.dropout stops augment before it reads a class or builds a model."""
    with pytest.raises(ParamError, match=r"train\.dropout"):
        train_augmented(merged(TEST_PARAMS, {"train": {"dropout": 1}}))


def test_zero_augmentation_factors_leave_their_layers_out():
    settings = dataclasses.replace(SETTINGS, rotation=0, zoom=0.2, shift=0)
    layers = augmentation(settings, 0).layers
    assert [type(layer).__name__ for layer in layers] == ["RandomFlip", "RandomZoom"]


def tiny_vgg():
    """Two VGG-like blocks, 8x8 then 4x4, named as VGG16 names its layers."""
    inputs = keras.Input((8, 8, 3), name="input")
    x = keras.layers.Conv2D(2, 3, padding="same", name="block4_conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="block4_pool")(x)
    x = keras.layers.Conv2D(2, 3, padding="same", name="block5_conv1")(x)
    x = keras.layers.Conv2D(2, 3, padding="same", name="block5_conv2")(x)
    return keras.Model(inputs, keras.layers.MaxPooling2D(name="block5_pool")(x), name="vgg")


def test_unfreeze_by_top_block_name_or_count():
    vgg = tiny_vgg()
    assert first_unfrozen(vgg, "top_block", "vgg") == 3  # block5_conv1: the first weights at 4x4
    assert first_unfrozen(vgg, "block5_conv1", "vgg") == 3
    assert first_unfrozen(vgg, 3, "vgg") == 3
    assert first_unfrozen(vgg, 5, "vgg") == 1
    with pytest.raises(ParamError, match=r"finetune\.unfreeze: vgg has only 5 layers above its input"):
        first_unfrozen(vgg, 6, "vgg")
    with pytest.raises(ParamError, match=r"finetune\.unfreeze: vgg has no layer 'block5_conv'. "
                                         r"Fix: give one of its layer names \(the closest: block5_conv"):
        first_unfrozen(vgg, "block5_conv", "vgg")


@pytest.mark.parametrize("name, size, first", [
    ("vgg16", 150, "block5_conv1"),  # the book's block5
    ("mobilenet_v2", 160, "block_13_depthwise"),  # blocks 13 to 16 and Conv_1, at 5x5
    ("resnet50", 150, "conv5_block1_1_conv"),  # the conv5 stage
    ("efficientnetb0", 150, "block6a_dwconv"),
    # At 32 the last stage runs at 1x1, as the squeeze-and-excite convolutions of every stage do.
    ("efficientnetb0", 32, "block6a_dwconv"),
    ("mobilenetv3small", 32, "expanded_conv_8_depthwise"),
])
def test_top_block_is_the_last_stage_whatever_the_base_names_its_layers(name, size, first):
    conv_base = weightless_conv_base(name, size)
    assert conv_base.layers[first_unfrozen(conv_base, "top_block", name)].name == first


def test_check_layers_reads_the_conv_base_of_params():
    assert check_layers(merged(TEST_PARAMS, {"finetune": {"unfreeze": "block5_conv1"}})) == 15
    mobilenet = merged(TEST_PARAMS, {"conv_base": {"name": "mobilenet_v2"},
                                     "finetune": {"unfreeze": "block_13_expand"}})
    assert check_layers(mobilenet) == 154 - 38
    with pytest.raises(ParamError, match=r"finetune\.unfreeze: mobilenet_v2 has no layer 'block5_conv1'"):
        check_layers(merged(mobilenet, {"finetune": {"unfreeze": "block5_conv1"}}))


def test_augmentation_changes_images_in_training_only():
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    layer = augmentation(dataclasses.replace(SETTINGS, rotation=0.1, zoom=0.2, shift=0.1), seed=7)
    np.testing.assert_array_equal(layer(images, training=False), images)
    first = keras.ops.convert_to_numpy(layer(images, training=True))
    assert np.abs(first - images).mean() > 1
    again = augmentation(dataclasses.replace(SETTINGS, rotation=0.1, zoom=0.2, shift=0.1), seed=7)
    np.testing.assert_array_equal(again(images, training=True), first)  # same seed, same images


def small_classifier(name):
    """An exported classifier as augment writes it, on a randomly initialised conv base at 32x32."""
    conv_base, preprocess_input = build_conv_base(ConvBase(name, None, 32, 0), "float32")
    head = build_head(conv_base.output_shape[1:], units=8, dropout=0.5, learning_rate=1e-3, classes=CLASSES)
    return build_classifier(conv_base, preprocess_input, head, CLASSES)


def train_one_epoch(classifier, first_layer, learning_rate=1e-3):
    """As the finetune stage does, on 8 random images; returns the conv base."""
    keras.utils.set_random_seed(0)
    conv_base = conv_base_of(classifier)
    unfreeze(conv_base, first_unfrozen(conv_base, first_layer, conv_base.name))
    model = end_to_end_model(classifier.get_layer("preprocess"), conv_base, classifier.get_layer("head"),
                             augmentation(SETTINGS, 0), learning_rate)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    model.fit(images, np.arange(8) % 2, epochs=1, batch_size=4, verbose=0)
    return conv_base


def weights_of(layer):
    return [np.array(weight) for weight in layer.weights]


def test_fine_tuning_changes_the_unfrozen_layers_only():
    classifier = small_classifier("vgg16")
    conv_base = conv_base_of(classifier)
    before = {layer.name: weights_of(layer) for layer in [*conv_base.layers, classifier.get_layer("head")]}
    train_one_epoch(classifier, "block5_conv1")
    for name in ("block5_conv1", "block5_conv3", "head"):
        layer = classifier.get_layer("head") if name == "head" else conv_base.get_layer(name)
        assert not np.array_equal(weights_of(layer)[0], before[name][0]), f"{name} did not learn"
    for name in ("block1_conv1", "block4_conv3"):
        for after, weight in zip(weights_of(conv_base.get_layer(name)), before[name], strict=True):
            np.testing.assert_array_equal(after, weight, err_msg=f"{name} is frozen but changed")


def test_batch_normalization_stays_frozen_in_the_unfrozen_top():
    classifier = small_classifier("mobilenet_v2")
    conv_base = conv_base_of(classifier)
    norms = [layer for layer in conv_base.layers[-38:] if isinstance(layer, keras.layers.BatchNormalization)]
    before = [weights_of(layer) for layer in norms]  # gamma, beta, moving mean and variance
    train_one_epoch(classifier, "block_13_expand")
    assert norms and not any(layer.trainable for layer in norms)
    assert conv_base.get_layer("block_13_expand").trainable and conv_base.get_layer("Conv_1").trainable
    assert not conv_base.get_layer("block_12_expand").trainable
    for layer, weights in zip(norms, before, strict=True):
        for after, weight in zip(weights_of(layer), weights, strict=True):
            np.testing.assert_array_equal(after, weight, err_msg=layer.name)


def test_main_checks_params_before_any_work(project):
    write_params(project, {"finetune": {"enabled": True, "head_epochs": 0}})  # and no images at all
    with pytest.raises(ParamError, match=r"finetune\.head_epochs"):
        augment.main()
    assert not (AUGMENTED_DIR / MODEL_FILE).exists()


@pytest.mark.parametrize("classes", [CLASSES, pytest.param(("bird", "cat", "dog"), marks=pytest.mark.slow)])
def test_the_stages_write_models_metrics_predictions_and_history(project, classes):
    """augment, then finetune from its model, in this process on 3 + 2 + 2 tiny images per class:
    the recipe's sigmoid for two classes, a softmax for three."""
    for subset, count in (("train", 3), ("validation", 2), ("test", 2)):
        for path in make_raw(project / "raw" / subset, count, layout="folders", classes=classes):
            target = SPLIT_DIR / subset / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
    CLASSES_FILE.write_text(json.dumps(classes))
    write_params(project, ON)
    augment.main()
    finetune.main()

    units = 1 if len(classes) == 2 else len(classes)
    for out_dir in (AUGMENTED_DIR, FINETUNED_DIR):
        metrics = json.loads((out_dir / METRICS_FILE).read_text())
        assert set(metrics) == {"train", "validation", "test"} and "roc_auc" in metrics["test"]
        assert list(metrics["test"]["per_class"]) == list(classes)
        predictions = json.loads((out_dir / RESULTS_DIR / PREDICTIONS_FILE.name).read_text())
        assert [row["file"] for row in predictions] == [
            f"data/split/test/{class_name}/{n}.jpg" for class_name in classes for n in (1, 2)]
        counts = metrics["test"]["confusion"].values()
        assert sum(count if units == 1 else sum(count.values()) for count in counts) == 2 * len(classes)
        rows = (out_dir / RESULTS_DIR / "dvclive/plots/metrics/eval/accuracy.tsv").read_text().splitlines()
        assert len(rows) == 1 + 1  # header + one epoch
        classifier = keras.models.load_model(out_dir / MODEL_FILE)
        assert [layer.name for layer in classifier.layers[1:3]] == ["resize", "preprocess"]
        assert classifier.input_shape == (None, None, None, 3)
        assert classifier.output["probabilities"].shape == (None, units)
        assert class_names(classifier) == list(classes)
        assert not conv_base_of(classifier).trainable  # exported frozen
        # The test loss and accuracy, computed from the predictions, are what Keras evaluates.
        probabilities = keras.Model(classifier.input, classifier.output["probabilities"])
        probabilities.compile(loss="binary_crossentropy" if units == 1 else "sparse_categorical_crossentropy",
                              metrics=["accuracy"])
        *_, test_images = subset_dataset("test", conv_base_of(classifier).input_shape[1], 4)
        loss, accuracy = probabilities.evaluate(test_images, verbose=0)
        assert metrics["test"]["loss"] == pytest.approx(loss, abs=6e-5)  # rounded to 4 places
        assert metrics["test"]["accuracy"] == pytest.approx(accuracy, abs=5e-5)  # rounded too
