"""The exported classifier gives, on raw images, what the pipeline computes step by step."""

import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dogs_vs_cats import keras_private
from dogs_vs_cats.conv_base import build_conv_base, conv_base_module, conv_base_names
from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.params import ConvBase
from dogs_vs_cats.images import decode_image, load_image
from dogs_vs_cats.keras_private import PRIVATE_NAMES
from dogs_vs_cats.model import affine_preprocessing, build_classifier, build_head, preprocess_layer
from helpers import CLASSES, REPO, subprocess_env

SIZE = 32  # the smallest input that keras.applications models accept: keeps the test fast


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """PNG files (lossless, so both routes see the same pixels), none of them SIZE x SIZE but one."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i, (height, width) in enumerate([(40, 56), (23, 31), (32, 32), (97, 61)]):
        path = folder / f"image{i}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("name", ["vgg16", "mobilenet_v2", "densenet121", "efficientnetb0"])
def test_preprocess_conv_equals_preprocess_input(name):
    import tensorflow as tf

    preprocess_input = conv_base_module(name)[0].preprocess_input
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 7, 5, 3)).astype(np.float32)
    expected = preprocess_input(tf.constant(pixels)).numpy()  # on a tensor, as extract calls it
    actual = preprocess_layer(preprocess_input)(pixels).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-5)


def test_non_affine_preprocessing_is_refused():
    with pytest.raises(ValueError, match="not a per-channel affine map"):
        affine_preprocessing(lambda images: images ** 2)
    with pytest.raises(ValueError, match="not a per-channel affine map"):
        # Affine per pixel but depending on the image: no fixed 1x1 convolution can do it.
        affine_preprocessing(lambda images: images - images.mean())


@pytest.mark.parametrize("name", ["vgg16", "mobilenet_v2"])
def test_classifier_matches_the_pipeline(name, image_files, tmp_path):
    import keras

    conv_base, preprocess_input = build_conv_base(ConvBase(name, None, SIZE, 0), "float32")
    head = build_head(conv_base.output_shape[1:], units=8, dropout=0.5, learning_rate=1e-3, classes=CLASSES)

    # What extract and train compute: load_image, preprocess_input, conv base, then head.
    resized = np.stack([load_image(str(path), SIZE).numpy() for path in image_files])
    features = conv_base.predict(preprocess_input(resized.copy()), verbose=0)
    # Randomly initialised conv bases give tiny features (about 1e-13 for MobileNetV2): scale the
    # head's first layer so that its answers differ from image to image and the check means something.
    hidden = head.get_layer(index=1)
    hidden.kernel.assign(hidden.kernel / features.std())
    expected = head.predict(features, verbose=0)[:, 0]
    assert expected.std() > 1e-3

    classifier = build_classifier(conv_base, preprocess_input, head, CLASSES)
    classifier.save(tmp_path / "classifier.keras")
    loaded = keras.models.load_model(tmp_path / "classifier.keras")
    assert [layer.name for layer in loaded.layers[1:3]] == ["resize", "preprocess"]
    for model in (classifier, loaded):
        raw = [np.float32(decode_image(path.read_bytes()))[np.newaxis] for path in image_files]
        # A plain call, as a user would make it: it must not be in training mode (Dropout).
        outputs = [model(image) for image in raw]
        actual = [float(output["probabilities"][0, 0]) for output in outputs]
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
        assert [output["class"].numpy()[0].decode() for output in outputs] == [
            CLASSES[int(p > 0.5)] for p in expected]


def test_fused_rmsprop_updates_as_keras_rmsprop():
    """The head's RMSprop (update compiled by XLA) steps the weights exactly as Keras's does."""
    import keras

    from dogs_vs_cats.keras_private import RMSprop

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (64, 10)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    weights = {}
    for optimizer in (keras.optimizers.RMSprop(learning_rate=1e-2), RMSprop(learning_rate=1e-2)):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer=optimizer, loss="binary_crossentropy", jit_compile=False)
        before = model.get_weights()
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        weights[type(optimizer)] = model.get_weights()
    keras_weights, fused_weights = weights.values()
    for start, expected, actual in zip(before, keras_weights, fused_weights, strict=True):
        assert np.abs(expected - start).max() > 1e-3  # the weights moved, so the check means something
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("option", [{"momentum": 0.9}, {"centered": True}])
def test_fused_rmsprop_refuses_what_it_does_not_implement(option):
    """Momentum and centering would be silently ignored by the fused update: refused instead."""
    from dogs_vs_cats.keras_private import RMSprop

    with pytest.raises(ValueError, match="neither momentum nor centered"):
        RMSprop(learning_rate=1e-2, **option)


@pytest.mark.parametrize("hidden", PRIVATE_NAMES)
def test_a_keras_without_the_private_names_fails_at_import_in_one_line(hidden, monkeypatch):
    """A Keras that renamed what the fused RMSprop reads stops the import of dogs_vs_cats/keras_private.py,
    not the first training step: one line with the Keras version, the name and the module to update."""
    import keras

    class RenamedRMSprop(keras.optimizers.RMSprop):  # as a Keras without `hidden`
        def __getattribute__(self, name):
            if name == hidden:
                raise AttributeError(name)
            return super().__getattribute__(name)

    monkeypatch.setattr(keras.optimizers, "RMSprop", RenamedRMSprop)
    monkeypatch.setattr(keras, "__version__", "3.99.0")
    # A fresh copy of the module, executed as an import would: the one in sys.modules stays as it is.
    spec = importlib.util.spec_from_file_location("keras_private_under_test", keras_private.__file__)
    with pytest.raises(ImportError) as caught:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    message = str(caught.value)
    assert isinstance(caught.value, UserError)  # a stage's run_stage shows it as its one line
    assert "\n" not in message
    assert message.startswith("error: Keras 3.99.0 renamed or changed the RMSprop internals that "
                              "dogs_vs_cats/keras_private.py uses")
    assert f"({hidden})" in message and "Fix: install the Keras of requirements.txt" in message


@pytest.mark.slow  # a fresh Python that starts TensorFlow
def test_no_entry_point_imports_keras_private_before_run_stage():
    """Its check runs at import: an entry point that imported it at the top would show its error as a
    traceback, before run_stage; predict.py, which trains nothing, must not need it at all."""
    probe = ("import sys, predict, stages.train, stages.check_model, stages.augment, stages.finetune; "
             "print('dogs_vs_cats.keras_private' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=subprocess_env(), text=True,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_every_mobilenet_v3_resolves_to_its_module():
    """MobileNetV3Small and Large are top-level constructors of keras.applications only: the module of
    their preprocess_input is found from the constructor."""
    assert {"mobilenetv3small", "mobilenetv3large"} <= set(conv_base_names())
    module, constructor = conv_base_module("mobilenet_v3_small")
    assert constructor.__name__ == "MobileNetV3Small" and module.__name__.endswith("mobilenet_v3")


def test_only_keras_private_uses_keras_private_names():
    """Keras's private names (and Keras's src package) in one module, the one whose import checks them."""
    # "keras" ".src" in two pieces, and the names from the module: this file must not match.
    private = re.compile("|".join([*map(re.escape, PRIVATE_NAMES), re.escape("keras" + ".src")]))
    code = [*REPO.glob("*.py"), *(path for folder in ("dogs_vs_cats", "stages", "bench", "tools", "tests")
                                  for path in (REPO / folder).rglob("*.py"))]
    users = {path.relative_to(REPO).as_posix() for path in code if private.search(path.read_text())}
    assert users == {"dogs_vs_cats/keras_private.py"}


def conv_base_at_smallest_size(name):
    """The conv base `name`, without weights, at the smallest size it accepts of 32 (most) and 75."""
    for size in (32, 75):
        try:
            return build_conv_base(ConvBase(name, None, size, 0)), size
        except ValueError:  # keras.applications refuses the size
            continue
    raise AssertionError(f"{name} accepts neither 32 nor 75")


@pytest.mark.slow
@pytest.mark.parametrize("name", conv_base_names())
def test_every_keras_applications_constructor_exports_a_classifier_that_loads_back(name, tmp_path):
    """conv_base.name takes any constructor of keras.applications (listed by Keras itself, so a
    new Keras's are covered): the conv base builds, its preprocess_input becomes the classifier's
    1x1 convolution, and the saved classifier loads back and answers the same."""
    import keras

    (conv_base, preprocess_input), size = conv_base_at_smallest_size(name)
    head = build_head(conv_base.output_shape[1:], units=4, dropout=0.5, learning_rate=1e-3, classes=CLASSES)
    classifier = build_classifier(conv_base, preprocess_input, head, CLASSES)
    classifier.save(tmp_path / "classifier.keras")
    loaded = keras.models.load_model(tmp_path / "classifier.keras")
    image = np.random.default_rng(0).uniform(0, 255, (1, size + 9, size + 3, 3)).astype(np.float32)
    expected, actual = classifier(image), loaded(image)
    np.testing.assert_allclose(actual["probabilities"], expected["probabilities"], rtol=1e-6)
    assert actual["class"].numpy()[0].decode() in CLASSES
    keras.backend.clear_session()  # the largest (ConvNeXtXLarge) hold 1.4 GB each
