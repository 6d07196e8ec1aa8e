"""The frozen conv base: which keras.applications model, with which weights, in which precision.

TensorFlow is imported by the functions that need Keras, so that the check stage reads the
weights checks of this module without it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogs_vs_cats.core.layout import WEIGHTS_DIR
from dogs_vs_cats.core.params import ConvBase, ParamError, Params

if TYPE_CHECKING:  # annotations only: this module imports no TensorFlow until a function needs Keras
    from collections.abc import Callable
    from types import ModuleType

    import keras

# The Keras dtype policy of each precision the Keras engine runs (int8 is OpenVINO's alone).
KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def conv_base_names() -> list[str]:
    """Every keras.applications constructor, by the name conv_base.name matches: vgg16, mobilenetv3small..."""
    from dogs_vs_cats.core.runtime import keras

    return sorted(name.lower() for name, constructor in vars(keras.applications).items()
                  if name[:1].isupper() and callable(constructor))


def conv_base_module(name: str) -> tuple[ModuleType, Callable[..., keras.Model]]:
    """The keras.applications module and constructor for `conv_base.name` (vgg16, mobilenet_v2...).

    Names are matched without case or underscores against the constructors of keras.applications,
    so `vgg16`, `VGG16`, `mobilenet_v2`, `mobilenetv3small` and `EfficientNetB0` all work. The
    module is the one that holds the constructor's preprocess_input (keras.applications.mobilenet_v3
    for MobileNetV3Small, which that module does not list).
    """
    from dogs_vs_cats.core.runtime import keras

    wanted = str(name).replace("_", "").lower()
    for attr, constructor in vars(keras.applications).items():
        if attr.lower() == wanted and attr[:1].isupper() and callable(constructor):
            return getattr(keras.applications, constructor.__module__.rpartition(".")[2]), constructor
    closest = difflib.get_close_matches(wanted, conv_base_names(), n=1, cutoff=0)
    raise ParamError("conv_base.name", f"{name!r} is not a keras.applications model",
                     f"use one of its constructors' names (the closest: {closest[0]}), such as vgg16, "
                     "resnet50 or mobilenet_v2")


def check_conv_base(params: Params | dict) -> ConvBase:
    """The conv_base section of params.yaml, checked: its values, the name a keras.applications
    constructor, and a local weights file there.

    Args:
        params: params.yaml (core.params.load_params).

    Returns:
        The conv_base section.
    """
    return check_name_and_weights(Params.of(params).conv_base)


def check_name_and_weights(conv: ConvBase) -> ConvBase:
    """`conv`, once its name is a keras.applications constructor and its local weights file exists."""
    conv_base_module(conv.name)
    check_weights_file(conv)
    return conv


def check_weights_file(conv: ConvBase) -> None:
    """A local conv_base.weights file must exist (a clone gets it with `dvc pull`). No TensorFlow."""
    weights = conv.local_weights
    if weights is not None and not Path(weights).is_file():
        if Path(f"{weights}.dvc").is_file():  # a clone, or a folder remote not pulled from yet
            raise ParamError("conv_base.weights", f"no weights file at {weights!r}, which DVC tracks",
                             f"run `dvc pull {weights}.dvc` to fetch it from the DVC remote")
        raise ParamError("conv_base.weights", f"no weights file at {weights!r}",
                         "give the path of a local weights file, 'imagenet' to download them, "
                         "or null for random initialisation")


def untracked_weights(params: Params | dict) -> Path | None:
    """The local weights file of conv_base.weights when DVC does not track it (no NAME.dvc beside it).

    Such a file exists in this workspace only: queued experiments (a copy of what git and DVC
    track), a collaborator's clone and `dvc artifacts get` go without it.
    """
    weights = Params.of(params).conv_base.local_weights
    return Path(weights) if weights is not None and not Path(f"{weights}.dvc").is_file() else None


def check_weights_tracked(params: Params | dict) -> None:
    """A local weights file must be in weights/, a dependency of every stage that loads it.

    DVC cannot depend on a path that only a parameter names (it may be imagenet or null), so a
    file elsewhere could be replaced in place and leave stale features behind, silently.
    """
    weights = Params.of(params).conv_base.local_weights
    if weights is not None and not os.path.abspath(weights).startswith(os.path.abspath(WEIGHTS_DIR) + os.sep):
        name = Path(weights).name
        raise ParamError("conv_base.weights", f"{weights} is outside {WEIGHTS_DIR}/, so DVC would not "
                         "rerun extract when it changes",
                         f"copy it into {WEIGHTS_DIR}/ and set conv_base.weights: {WEIGHTS_DIR}/{name}")


def weightless_conv_base(name: str, size: int) -> keras.Model:
    """The conv base `name` (conv_base.name) for size x size images, without weights: quick to build,
    for its shapes and layers.

    Also checks that the model accepts conv_base.input_size (MobileNetV2, for one, refuses inputs
    below 32x32).
    """

    try:
        return conv_base_module(name)[1](include_top=False, weights=None, input_shape=(size, size, 3))
    except ValueError as error:
        raise ParamError("conv_base.input_size", f"{name} cannot take {size}x{size} "
                         f"images ({error})", "use a larger size, e.g. 150") from error


def feature_shape(conv: ConvBase) -> tuple:
    """The shape of one image's features, (4, 4, 512) for VGG16 at 150, whatever engine or precision."""
    return tuple(weightless_conv_base(conv.name, conv.input_size).output_shape[1:])


def build_conv_base(conv: ConvBase, precision: str = "float32") -> tuple[keras.Model, Callable[..., Any]]:
    """Build the frozen Keras conv base described by the conv_base section, in a Keras precision.

    Args:
        conv: the conv_base section (core.params.ConvBase). `weights: null` gives a random but
            seeded initialisation (conv_base.seed), for machines that cannot download the ImageNet
            weights.
        precision: float32, bfloat16 or float16 (Keras's mixed_* dtype policies).

    Returns:
        (conv base, its module's preprocess_input).
    """
    from dogs_vs_cats.core.runtime import keras

    check_name_and_weights(conv)
    if precision not in KERAS_POLICIES:
        raise ParamError("extract.precision", f"{precision!r} is not a precision of the Keras engine",
                         f"use one of {', '.join(KERAS_POLICIES)}, or extract.engine: openvino for int8")
    module, constructor = conv_base_module(conv.name)
    size = conv.input_size
    keras.config.set_dtype_policy(KERAS_POLICIES[precision])
    keras.utils.set_random_seed(conv.seed)
    try:
        conv_base = constructor(include_top=False, weights=conv.weights, input_shape=(size, size, 3))
    except Exception as error:
        if conv.weights is None:
            raise
        if conv.weights == "imagenet":
            raise ParamError("conv_base.weights",
                             f"downloading the ImageNet weights failed ({type(error).__name__}: {error})",
                             "set conv_base.weights to a local weights file (.h5), or to null for "
                             "random initialisation") from error
        raise ParamError("conv_base.weights",
                         f"{conv.weights} does not load into {conv.name} at {size}x{size} "
                         f"({type(error).__name__}: {error})",
                         "give a weights file of this conv base (python -m tools.export_conv_base writes "
                         "one), or change conv_base.name") from error
    finally:
        keras.config.set_dtype_policy("float32")  # the policy is global: leave it as it was
    conv_base.trainable = False
    return conv_base, module.preprocess_input
