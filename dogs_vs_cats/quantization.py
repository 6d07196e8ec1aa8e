"""The int8 conv base for OpenVINO (the quantize stage): NNCF's post-training quantisation.

The float32 conv base runs over train images evenly spaced over data/split/train (so both classes)
to calibrate the int8 ranges; the test images never do.
"""

import numpy as np

from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.engines import openvino_model, quantize, save_openvino
from dogs_vs_cats.images import image_dataset


def calibration_files(files, count):
    """`count` files evenly spaced over `files` (all of them if there are fewer), in order."""
    if count >= len(files):
        return list(files)
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


def write_int8_conv_base(conv_params, train_files, count, path):
    """Quantise the conv_params conv base, calibrated on `count` of `train_files`; write it to path (.xml)."""
    conv_base, preprocess = build_conv_base(conv_params, "float32")
    files = calibration_files(train_files, count)
    images = image_dataset(files, conv_params["input_size"], batch_size=1, preprocess=preprocess)
    print(f"quantising {conv_params['name']} to int8, calibrated on {len(files)} train images")
    save_openvino(quantize(openvino_model(conv_base), images, len(files)), path)
