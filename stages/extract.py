"""Extract conv-base features for one subset: python -m stages.extract {train,validation,test}

Runs the frozen conv base (conv_base.name, VGG16 by default) over data/split/<subset>/, on the
engine and in the precision of extract.engine and extract.precision, and writes
data/features/<subset>/{features.npy, labels.npy, files.txt} (dogs_vs_cats/features.py), whole or
not at all. In this process by default; on Ray with EXTRACT_RUNNER=ray (dogs_vs_cats/runners.py):
the same batches and the same features, so switching reruns nothing.

Images are decoded and resized in parallel while the conv base runs, and features are appended to
the .npy file batch by batch, so memory does not grow with the number of images.
"""

import sys
import time

from dogs_vs_cats.conv_base import check_conv_base
from dogs_vs_cats.core.classes import read_classes
from dogs_vs_cats.core.errors import UserError, run_stage
from dogs_vs_cats.core.layout import FEATURES_DIR, QUANTIZED_MODEL, SPLIT_DIR, SUBSETS
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.features import write_features
from dogs_vs_cats.images import list_images
from dogs_vs_cats.runners import local_feature_batches, ray_feature_batches, runner_from_environment


def main():
    subset = sys.argv[1] if len(sys.argv) > 1 else ""
    if subset not in SUBSETS:
        raise UserError(f"error: no subset {subset!r}. "
                        f"Fix: run python -m stages.extract {{{','.join(SUBSETS)}}}")
    params = load_params()
    conv, extract = check_conv_base(params), params.extract
    runner = runner_from_environment()
    files, labels = list_images(SPLIT_DIR / subset, read_classes())
    print(f"{subset}: {len(files)} images through {conv.name} "
          f"({extract.engine}, {extract.precision}, batch {extract.batch_size}) {runner.describe()}")
    start = time.perf_counter()
    if runner.name == "ray":
        batches, shape = ray_feature_batches(runner, conv, extract, files, QUANTIZED_MODEL)
    else:
        batches, shape = local_feature_batches(conv, extract, files)
    write_features(batches, shape, files, labels, FEATURES_DIR / subset)
    seconds = time.perf_counter() - start
    print(f"{subset}: {len(files)} images in {seconds:.1f} s, {len(files) / seconds:.1f} images/s")


if __name__ == "__main__":
    run_stage(main)
