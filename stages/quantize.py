"""Quantise the conv base to int8 for OpenVINO: python -m stages.quantize

With extract.engine: openvino and extract.precision: int8, NNCF's post-training quantisation runs
the float32 conv base over quantize.images photos of data/split to calibrate the int8 ranges, and
writes models/conv_base_int8/conv_base.{xml,bin}, which every extract@<subset> reads, with
calibration.json (dogs_vs_cats/quantization.py). The photos are chosen by their bytes alone,
whatever subset holds them, and the model is kept while they are all still there: a new split.seed,
new counts or more photos leave it, and so the int8 features in the feature store, as they are.

With any other engine or precision it writes only a note, always the same bytes, so that this
stage never makes a later stage rerun; and it does so without TensorFlow, which it imports only
to quantise.
"""

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import QUANTIZED_DIR, SPLIT_DIR, SUBSETS
from dogs_vs_cats.core.params import load_params

NOT_USED = "Only extract.engine: openvino with extract.precision: int8 reads this folder.\n"


def main():
    params = load_params()
    extract = params.extract
    if not extract.quantized:
        with atomic_path(QUANTIZED_DIR) as tmp:
            tmp.mkdir()
            (tmp / "not_used.txt").write_text(NOT_USED)
        print(f"extract runs {extract.engine}/{extract.precision}: nothing to quantise")
        return
    # TensorFlow, OpenVINO and NNCF: only now.
    from dogs_vs_cats.conv_base import check_conv_base
    from dogs_vs_cats.core.classes import list_images, read_classes
    from dogs_vs_cats.quantization import write_int8_conv_base

    classes = read_classes()
    photos = [path for subset in SUBSETS for path in list_images(SPLIT_DIR / subset, classes)[0]]
    write_int8_conv_base(check_conv_base(params), extract, photos, params.quantize.images, QUANTIZED_DIR)


if __name__ == "__main__":
    run_stage(main)
