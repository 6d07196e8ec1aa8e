"""Quantise the conv base to int8 for OpenVINO: python -m stages.quantize

With extract.engine: openvino and extract.precision: int8, NNCF's post-training quantisation runs
the float32 conv base over quantize.images train images (evenly spaced over data/split/train, so
both classes) to calibrate the int8 ranges, and writes models/conv_base_int8/conv_base.{xml,bin},
which every extract@<subset> reads. The test images never calibrate: changing split.test reruns
neither this stage nor the extraction of train and validation.

With any other engine or precision it writes only a note, always the same bytes, so that this
stage never makes a later stage rerun; and it does so without TensorFlow, which it imports only
to quantise.
"""

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import QUANTIZED_DIR, QUANTIZED_MODEL, SPLIT_DIR
from dogs_vs_cats.core.params import load_params

NOT_USED = "Only extract.engine: openvino with extract.precision: int8 reads this folder.\n"


def main():
    params = load_params()
    extract, count = params.extract, params.quantize.images
    with atomic_path(QUANTIZED_DIR) as tmp:
        tmp.mkdir()
        if not extract.quantized:
            (tmp / "not_used.txt").write_text(NOT_USED)
            print(f"extract runs {extract.engine}/{extract.precision}: nothing to quantise")
            return
        # TensorFlow, OpenVINO and NNCF: only now.
        from dogs_vs_cats.conv_base import check_conv_base
        from dogs_vs_cats.core.classes import read_classes
        from dogs_vs_cats.images import list_images
        from dogs_vs_cats.quantization import write_int8_conv_base

        train_images, _ = list_images(SPLIT_DIR / "train", read_classes())
        write_int8_conv_base(check_conv_base(params), train_images, count, tmp / QUANTIZED_MODEL.name)


if __name__ == "__main__":
    run_stage(main)
