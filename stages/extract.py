"""Extract conv-base features for one subset: python -m stages.extract {train,validation,test}

Runs the frozen conv base (conv_base.name, VGG16 by default) over data/split/<subset>/, on the
engine and in the precision of extract.engine and extract.precision (stages/engines.py), and writes
data/features/<subset>/ with
  features.npy  (N, 4, 4, 512) float32 for VGG16 at 150x150
  labels.npy    (N,) 0 = cat, 1 = dog
  files.txt     the source image of each row, in order

A tf.data pipeline decodes and resizes images in parallel while the conv base runs, and features
are appended to the .npy file batch by batch, so memory does not grow with the number of images.
"""

import sys
import time

import numpy as np

from stages.atomic import atomic_path, ensure_free_space
from stages.conv_base import check_conv_base
from stages.engines import check_engine, load_engine
from stages.images import list_images, load_image
from stages.layout import FEATURES_DIR, SPLIT_DIR, SUBSETS
from stages.params import load_params, positive_int
from stages.runtime import keras, tf


def check_params(params):
    """The parameters extract reads, checked: (conv_base section, batch size, (engine, precision))."""
    return (check_conv_base(params), positive_int(params, "extract.batch_size"),
            check_engine(params))


def image_dataset(files, size, preprocess, batch_size):
    """Batches of preprocessed images, decoded and resized in parallel ahead of the model."""
    return (tf.data.Dataset.from_tensor_slices([str(f) for f in files])
            .map(lambda path: preprocess(load_image(path, size)),
                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))


def extract_features(run, feature_shape, dataset, count, out_file):
    """Run the engine `run` over `dataset`, writing `count` rows of features to out_file (.npy).

    Each batch is appended to the file as it comes, so memory holds one batch, however many images.
    """
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (count, *feature_shape)}
    progress = keras.utils.Progbar(count, unit_name="image")
    done = 0
    with open(out_file, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for images in dataset:
            batch = run(images).astype(np.float32, copy=False)
            f.write(batch.tobytes())
            done += len(batch)
            progress.update(done)
    if done != count:
        raise RuntimeError(f"extracted {done} images, expected {count}")


def main():
    subset = sys.argv[1] if len(sys.argv) > 1 else ""
    if subset not in SUBSETS:
        sys.exit(f"usage: python -m stages.extract {{{','.join(SUBSETS)}}}")
    conv_params, batch_size, (engine, precision) = check_params(load_params())
    run, preprocess, feature_shape, note = load_engine(conv_params, engine, precision)
    if note:
        print(f"note: {note}")

    files, labels = list_images(SPLIT_DIR / subset)
    dataset = image_dataset(files, conv_params["input_size"], preprocess, batch_size)
    print(f"{subset}: {len(files)} images through {conv_params['name']} "
          f"({engine}, {precision}, batch {batch_size})")

    feature_bytes = 4 * int(np.prod(feature_shape))  # float32
    ensure_free_space(FEATURES_DIR, len(files) * feature_bytes)
    start = time.perf_counter()
    with atomic_path(FEATURES_DIR / subset) as tmp:
        tmp.mkdir()
        extract_features(run, feature_shape, dataset, len(files), tmp / "features.npy")
        np.save(tmp / "labels.npy", np.array(labels, dtype=np.float32))
        (tmp / "files.txt").write_text("".join(f"{f.relative_to(SPLIT_DIR)}\n" for f in files))
    seconds = time.perf_counter() - start
    print(f"{subset}: {len(files)} images in {seconds:.1f} s, {len(files) / seconds:.1f} images/s")


if __name__ == "__main__":
    main()
