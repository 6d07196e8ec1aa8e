"""The int8 conv base for OpenVINO (the quantize stage): NNCF's post-training quantisation.

The float32 conv base runs over train images evenly spaced over data/split/train (so both classes)
to calibrate the int8 ranges; the test images never do.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.params import ConvBase
from dogs_vs_cats.engines import openvino_model, quantize, save_openvino
from dogs_vs_cats.images import image_dataset


def calibration_files(files: Sequence[Path], count: int) -> list[Path]:
    """`count` files evenly spaced over `files` (all of them if there are fewer), in order."""
    if count >= len(files):
        return list(files)
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


def write_int8_conv_base(conv: ConvBase, train_files: list, count: int, path: Path) -> None:
    """Quantise the conv base of the conv_base section, calibrated on `count` of `train_files`
    (quantize.images); write it to path (.xml)."""
    conv_base, preprocess = build_conv_base(conv, "float32")
    files = calibration_files(train_files, count)
    images = image_dataset(files, conv.input_size, batch_size=1, preprocess=preprocess)
    print(f"quantising {conv.name} to int8, calibrated on {len(files)} train images")
    save_openvino(quantize(openvino_model(conv_base), images, len(files)), path)
