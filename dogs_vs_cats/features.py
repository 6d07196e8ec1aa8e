"""Conv-base features for the extract stage: its parameters, and .npy files written batch by batch.

data/features/<subset>/ holds
  features.npy  (N, 4, 4, 512) float32 for VGG16 at 150x150
  labels.npy    (N,) 0 = cat, 1 = dog
  files.txt     the source image of each row, in order, relative to data/split/
"""

import numpy as np

from dogs_vs_cats.conv_base import check_conv_base
from dogs_vs_cats.core.atomic import atomic_path, ensure_free_space
from dogs_vs_cats.core.layout import SPLIT_DIR
from dogs_vs_cats.core.params import positive_int
from dogs_vs_cats.core.runtime import keras, tf
from dogs_vs_cats.precisions import check_engine


def check_extract(params):
    """The parameters extract reads, checked: (conv_base section, batch size, (engine, precision))."""
    return (check_conv_base(params), positive_int(params, "extract.batch_size"),
            check_engine(params))


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


def write_features(run, feature_shape, dataset, files, labels, out_dir):
    """Write out_dir/{features.npy, labels.npy, files.txt} for `files`, whole or not at all."""
    ensure_free_space(out_dir.parent, len(files) * 4 * int(np.prod(feature_shape)))  # float32
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        extract_features(run, feature_shape, dataset, len(files), tmp / "features.npy")
        np.save(tmp / "labels.npy", np.array(labels, dtype=np.float32))
        (tmp / "files.txt").write_text("".join(f"{f.relative_to(SPLIT_DIR)}\n" for f in files))


def load_features(subset_dir):
    """The features (a tensor) and labels (an array) that write_features wrote in `subset_dir`.

    The features go from a memory map into a tensor, which Keras uses as it is, rather than into a
    NumPy array that Keras would copy again: the same values, so the same training, in less memory
    (python -m bench.train_memory; figures in bench/README.md).
    """
    features = np.load(subset_dir / "features.npy", mmap_mode="r")
    return tf.convert_to_tensor(features), np.load(subset_dir / "labels.npy")
