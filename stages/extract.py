"""Extract conv-base features for one subset: python -m stages.extract {train,validation,test}

Runs the frozen conv base (conv_base.name, VGG16 by default) over data/split/<subset>/, on the
engine and in the precision of extract.engine and extract.precision, and writes
data/features/<subset>/{features.npy, labels.npy, files.txt} (dogs_vs_cats/features.py).

A tf.data pipeline decodes and resizes images in parallel while the conv base runs, and features
are appended to the .npy file batch by batch, so memory does not grow with the number of images.
"""

import sys
import time

from dogs_vs_cats.core.classes import read_classes
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import FEATURES_DIR, SPLIT_DIR, SUBSETS
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.engines import load_engine
from dogs_vs_cats.features import check_extract, write_features
from dogs_vs_cats.images import image_dataset, list_images


def main():
    subset = sys.argv[1] if len(sys.argv) > 1 else ""
    if subset not in SUBSETS:
        sys.exit(f"usage: python -m stages.extract {{{','.join(SUBSETS)}}}")
    conv_params, batch_size, (engine, precision) = check_extract(load_params())
    run, preprocess, feature_shape, note = load_engine(conv_params, engine, precision)
    if note:
        print(f"note: {note}")

    files, labels = list_images(SPLIT_DIR / subset, read_classes())
    dataset = image_dataset(files, conv_params["input_size"], batch_size, preprocess=preprocess)
    print(f"{subset}: {len(files)} images through {conv_params['name']} "
          f"({engine}, {precision}, batch {batch_size})")
    start = time.perf_counter()
    write_features(run, feature_shape, dataset, files, labels, FEATURES_DIR / subset)
    seconds = time.perf_counter() - start
    print(f"{subset}: {len(files)} images in {seconds:.1f} s, {len(files) / seconds:.1f} images/s")


if __name__ == "__main__":
    run_stage(main)
