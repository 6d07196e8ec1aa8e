"""Extract conv-base features for one subset: python -m stages.extract {train,validation,test}

Runs the frozen conv base (conv_base.name, VGG16 by default) over data/split/<subset>/ and writes
data/features/<subset>/ with
  features.npy  (N, 4, 4, 512) float32 for VGG16 at 150x150
  labels.npy    (N,) 0 = cat, 1 = dog
  files.txt     the source image of each row, in order

A tf.data pipeline decodes and resizes images in parallel while the conv base runs, and features
are streamed into a memory-mapped .npy file, so memory does not grow with the number of images.
"""

import sys
import time

import numpy as np

from stages.common import (FEATURES_DIR, SPLIT_DIR, SUBSETS, atomic_path, build_conv_base,
                           list_images, load_image, load_params, positive_int)


def image_dataset(files, size, preprocess, batch_size):
    """Batches of preprocessed images, decoded and resized in parallel ahead of the model."""
    import tensorflow as tf

    return (tf.data.Dataset.from_tensor_slices([str(f) for f in files])
            .map(lambda path: preprocess(load_image(path, size)),
                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))


def extract_features(conv_base, dataset, count, out_file):
    """Run `conv_base` over `dataset`, writing `count` rows of float32 features to out_file (.npy)."""
    import keras
    import tensorflow as tf

    run = tf.function(lambda images: tf.cast(conv_base(images, training=False), tf.float32))
    features = np.lib.format.open_memmap(out_file, mode="w+", dtype=np.float32,
                                         shape=(count, *conv_base.output_shape[1:]))
    progress = keras.utils.Progbar(count, unit_name="image")
    done = 0
    for images in dataset:
        batch = run(images).numpy()
        features[done:done + len(batch)] = batch
        done += len(batch)
        progress.update(done)
    features.flush()
    del features


def main():
    subset = sys.argv[1] if len(sys.argv) > 1 else ""
    if subset not in SUBSETS:
        sys.exit(f"usage: python -m stages.extract {{{','.join(SUBSETS)}}}")
    params = load_params()
    batch_size = positive_int("extract", params["extract"], "batch_size")
    conv_base, preprocess = build_conv_base(params["conv_base"], params["extract"]["precision"])

    files, labels = list_images(SPLIT_DIR / subset)
    dataset = image_dataset(files, params["conv_base"]["input_size"], preprocess, batch_size)
    print(f"{subset}: {len(files)} images through {conv_base.name} "
          f"({params['extract']['precision']}, batch {batch_size})")

    start = time.perf_counter()
    with atomic_path(FEATURES_DIR / subset) as tmp:
        tmp.mkdir()
        extract_features(conv_base, dataset, len(files), tmp / "features.npy")
        np.save(tmp / "labels.npy", np.array(labels, dtype=np.float32))
        (tmp / "files.txt").write_text("".join(f"{f.relative_to(SPLIT_DIR)}\n" for f in files))
    seconds = time.perf_counter() - start
    print(f"{subset}: {len(files)} images in {seconds:.1f} s, {len(files) / seconds:.1f} images/s")


if __name__ == "__main__":
    main()
