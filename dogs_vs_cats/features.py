"""Conv-base features: written by the extract stage batch by batch (from the feature store,
dogs_vs_cats/feature_store.py), read back by train batch by batch.

data/features/<subset>/ holds
  features.npy  (N, 4, 4, 512) float32 for VGG16 at 150x150
  labels.npy    (N,) float32: each row's label, its class's index in data/split/classes.json
  files.txt     the source image of each row, in order, relative to data/split/

Writing them needs no TensorFlow: when the store holds every photo, extract never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.core.atomic import atomic_path, ensure_free_space
from dogs_vs_cats.core.layout import SPLIT_DIR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    import tensorflow as tf
    from numpy.typing import ArrayLike



def extract_features(run: Callable[[tf.Tensor], ArrayLike], feature_shape: tuple[int, ...],
                     dataset: tf.data.Dataset, count: int, out_file: str | Path) -> None:
    """Run the engine `run` over the image batches of `dataset`, writing `count` rows to out_file
    (.npy), with no store: the benchmarks time the engines with it."""
    write_feature_rows((run(images) for images in dataset), feature_shape, count, out_file)


def write_feature_rows(feature_batches: Iterable[ArrayLike], feature_shape: tuple[int, ...], count: int,
                       out_file: str | Path) -> None:
    """Write `count` rows of features to out_file (.npy), appending each batch as it comes.

    Memory holds one batch, however many images: `feature_batches` is any iterable of arrays (the
    feature store's entries, FeatureStore.rows).
    """
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (count, *feature_shape)}
    done = 0
    with open(out_file, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for batch in feature_batches:
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            f.write(batch)  # its bytes, as they are in memory
            done += len(batch)
    if done != count:
        raise RuntimeError(f"extracted {done} images, expected {count}")


def write_features(feature_batches: Iterable[ArrayLike], feature_shape: tuple[int, ...],
                   files: Sequence[Path], labels: Sequence[float] | np.ndarray, out_dir: Path) -> None:
    """Write out_dir/{features.npy, labels.npy, files.txt} for `files`, whole or not at all.

    `feature_batches` gives the features of `files`, in order, batch by batch.
    """
    ensure_free_space(out_dir.parent, len(files) * 4 * int(np.prod(feature_shape)))  # float32
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        write_feature_rows(feature_batches, feature_shape, len(files), tmp / "features.npy")
        np.save(tmp / "labels.npy", np.array(labels, dtype=np.float32))
        (tmp / "files.txt").write_text("".join(f"{f.relative_to(SPLIT_DIR)}\n" for f in files))


def batches(features: np.ndarray | NpyRows, labels: np.ndarray, batch_size: int,
            shuffle_seed: int | None = None) -> tf.data.Dataset:
    """tf.data batches of (features, labels), rows gathered from `features` as they are needed.

    `features` is anything indexed by an array of row numbers (an array; NpyRows, which reads
    them from disk): only the batches in flight are in memory. With a seed, the rows come in a new
    order on every pass, so every epoch, as `model.fit` gives NumPy arrays; the orders are the same
    on every run (tests/test_train.py).
    """
    from dogs_vs_cats.core.runtime import tf

    rows = tf.data.Dataset.range(len(labels))
    if shuffle_seed is not None:
        # Only the row numbers are shuffled: 8 bytes a row in the buffer, whatever the features.
        rows = rows.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)

    def gather(indices):
        return np.asarray(features[indices], dtype=np.float32), labels[indices]

    def load(indices):
        batch, batch_labels = tf.numpy_function(gather, [indices], [tf.float32, tf.float32])
        batch.set_shape((None, *features.shape[1:]))
        batch_labels.set_shape((None,))
        return batch, batch_labels

    return rows.batch(batch_size).map(load)  # its length known, so Keras counts the steps of an epoch


class NpyRows:
    """The rows of a .npy file, read from disk when indexed with row numbers: never loaded whole, nor
    mapped (a memory map would keep every row it touched in the process's resident memory)."""

    def __init__(self, path):
        header = np.load(path, mmap_mode="r")  # the shape and dtype, and where the rows start
        self.shape, self.dtype, self.offset = header.shape, header.dtype, header.offset
        del header
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self.file = open(path, "rb")  # noqa: SIM115 (open as long as the dataset that reads it)

    def close(self) -> None:
        """Close the file (the dataset that reads it closes with the process)."""
        self.file.close()

    def __getitem__(self, rows):
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        for row, buffer in zip(rows, out, strict=True):
            self.file.seek(self.offset + int(row) * self.row_bytes)
            self.file.readinto(memoryview(buffer).cast("B"))
        return out


def feature_batches(subset_dir: Path, batch_size: int,
                    shuffle_seed: int | None = None) -> tuple[tf.data.Dataset, np.ndarray]:
    """Batches of the features and labels that write_features wrote in `subset_dir`, read from disk
    as they are used (memory does not grow with the number of photos), and the labels. With a
    seed, in a new order every epoch (`batches`)."""
    labels = np.load(subset_dir / "labels.npy")
    return batches(NpyRows(subset_dir / "features.npy"), labels, batch_size, shuffle_seed), labels
