"""Quantise the conv base to int8 for OpenVINO: python -m stages.quantize

With extract.engine: openvino and extract.precision: int8, NNCF's post-training quantisation runs
the float32 conv base over quantize.images train images (evenly spaced over data/split/train, so
both classes) to calibrate the int8 ranges, and writes models/conv_base_int8/conv_base.{xml,bin},
which every extract@<subset> reads. The test images never calibrate: changing split.test reruns
neither this stage nor the extraction of train and validation.

With any other engine or precision it writes only a note, always the same bytes, so that this
stage never makes a later stage rerun.
"""

import numpy as np

from stages.atomic import atomic_path
from stages.conv_base import build_conv_base, check_conv_base
from stages.engines import QUANTIZED_MODEL, check_engine, openvino_model, quantize, save_openvino
from stages.extract import image_dataset
from stages.images import list_images
from stages.layout import QUANTIZED_DIR, SPLIT_DIR
from stages.params import load_params, positive_int

NOT_USED = "Only extract.engine: openvino with extract.precision: int8 reads this folder.\n"


def check_params(params):
    """(conv_base section, (engine, precision), number of calibration images), checked."""
    return check_conv_base(params), check_engine(params), positive_int(params, "quantize.images")


def calibration_files(files, count):
    """`count` files evenly spaced over `files` (all of them if there are fewer), in order."""
    if count >= len(files):
        return list(files)
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


def write_int8_conv_base(conv_params, train_files, count, path):
    """Quantise the conv_params conv base, calibrated on `count` of `train_files`; write it to path (.xml)."""
    conv_base, preprocess = build_conv_base(conv_params, "float32")
    files = calibration_files(train_files, count)
    images = image_dataset(files, conv_params["input_size"], preprocess, batch_size=1)
    print(f"quantising {conv_params['name']} to int8, calibrated on {len(files)} train images")
    save_openvino(quantize(openvino_model(conv_base), images, len(files)), path)


def main():
    conv_params, engine_precision, count = check_params(load_params())
    with atomic_path(QUANTIZED_DIR) as tmp:
        tmp.mkdir()
        if engine_precision != ("openvino", "int8"):
            (tmp / "not_used.txt").write_text(NOT_USED)
            print(f"extract runs {'/'.join(engine_precision)}: nothing to quantise")
            return
        write_int8_conv_base(conv_params, list_images(SPLIT_DIR / "train")[0], count,
                             tmp / QUANTIZED_MODEL.name)


if __name__ == "__main__":
    main()
