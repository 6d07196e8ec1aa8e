"""Extract conv-base features for one subset: python -m stages.extract {train,validation,test}

Runs the frozen conv base (conv_base.name, VGG16 by default) over the photos of data/split/<subset>/
that the feature store does not hold yet for this conv base (dogs_vs_cats/feature_store.py), on the
engine and in the precision of extract.engine and extract.precision, and writes
data/features/<subset>/{features.npy, labels.npy, files.txt} (dogs_vs_cats/features.py), whole or
not at all: each computed photo's features are kept in the store on their way to features.npy, the
others read from it, so that the file holds the same bytes as from an empty store. When the
store holds every photo, it loads no TensorFlow. Computed in this process by default; on Ray with
EXTRACT_RUNNER=ray (dogs_vs_cats/runners.py): the same features, so switching reruns nothing.

Images are decoded and resized in parallel while the conv base runs, and features go to the store
and then to the .npy file batch by batch, so memory does not grow with the number of images.
"""

import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dogs_vs_cats.conv_base import check_weights_file
from dogs_vs_cats.core.classes import list_images, read_classes
from dogs_vs_cats.core.digest import file_sha256
from dogs_vs_cats.core.errors import UserError, run_stage
from dogs_vs_cats.core.layout import FEATURES_DIR, QUANTIZED_MODEL, SPLIT_DIR, SUBSETS
from dogs_vs_cats.core.params import ConvBase, Extract, load_params
from dogs_vs_cats.feature_store import FeatureStore, conv_base_identity
from dogs_vs_cats.features import write_features
from dogs_vs_cats.runners import Runner, runner_from_environment


def main():
    subset = sys.argv[1] if len(sys.argv) > 1 else ""
    if subset not in SUBSETS:
        raise UserError(f"error: no subset {subset!r}. "
                        f"Fix: run python -m stages.extract {{{','.join(SUBSETS)}}}")
    start = time.perf_counter()
    params = load_params()
    conv, extract = params.conv_base, params.extract
    check_weights_file(conv)  # no TensorFlow: check_model has matched conv_base.name already
    runner = runner_from_environment()
    files, labels = list_images(SPLIT_DIR / subset, read_classes())
    store = FeatureStore(conv_base_identity(conv, extract, QUANTIZED_MODEL))
    photos = [file_sha256(path) for path in files]
    missing = store.missing(photos)
    print(f"{subset}: {len(files)} images, {len(files) - len(missing)} taken from the feature store "
          f"({store.folder}), {len(missing)} to compute")
    computing = time.perf_counter()
    computed = compute(runner, conv, extract, [files[i] for i in missing]) if missing else ()
    rows = store.rows(photos, missing, computed)  # the computed photos kept in the store as they pass
    first = next(rows)
    write_features(itertools.chain([first], rows), first.shape[1:], files, labels, FEATURES_DIR / subset)
    if missing:
        seconds = time.perf_counter() - computing
        print(f"{len(missing)} images in {seconds:.1f} s, {len(missing) / seconds:.1f} images/s")
    print(f"{subset}: computed {len(missing)}, took {len(files) - len(missing)} from the feature store, "
          f"in {time.perf_counter() - start:.1f} s")


def compute(runner: Runner, conv: ConvBase, extract: Extract, files: list[Path]) -> Iterator[np.ndarray]:
    """The conv base's features of `files`, batch by batch, computed on `runner` as they are asked for."""
    from dogs_vs_cats.runners import local_feature_batches, ray_feature_batches

    print(f"computing {len(files)} through {conv.name} ({extract.engine}, {extract.precision}, "
          f"batch {extract.batch_size}) {runner.describe()}")
    if runner.name == "ray":
        batches, _ = ray_feature_batches(runner, conv, extract, files, QUANTIZED_MODEL)
    else:
        batches, _ = local_feature_batches(conv, extract, files)
    return batches


if __name__ == "__main__":
    run_stage(main)
