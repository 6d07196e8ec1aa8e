"""Decoding photos for the conv base: today's decoder against JPEG's own cheaper ones, side by side.

    python -m bench.decoding PHOTOS [--size 160] [--photos 1000] [--rounds 5]
                             [--classifier models/classifier.keras]

extract, quantize and predict.py decode each photo whole, then resize it (bilinear) to the conv
base's square. JPEG can do part of the shrinking while it decodes: libjpeg scales the DCT blocks by
1/2, 1/4 or 1/8 (tf.io.decode_jpeg's `ratio`), here the largest that leaves both sides at least
the target size; and it can use its faster, less exact integer transform (`dct_method`). For each
decoder, over the first --photos photos (half per class) at --size: images/s of the tf.data
pipeline alone on every core and the CPU time it takes a photo (every thread's: the conv base has
to share the cores with it), medians of --rounds with every decoder in turn; and the largest pixel
difference from today's. With --classifier
(an exported classifier, trained on today's decoding), also the largest difference in its
probability and its accuracy, both by the file names' classes: what a change of decoder would cost
in parity between the pipeline and the classifier fed whole photos.
"""

import argparse
import resource
import time
from pathlib import Path
from statistics import median

import numpy as np

from dogs_vs_cats.core.runtime import tf
from dogs_vs_cats.images import decode_image

BATCH = 32


def today(data, size):
    return tf.image.resize(decode_image(data), (size, size))


def scaled(data, size, dct_method=""):
    """JPEG: decoded at the smallest DCT scale that keeps both sides >= size; other formats whole."""
    def jpeg():
        shorter = tf.reduce_min(tf.io.extract_jpeg_shape(data)[:2])

        def at(ratio):
            return lambda: tf.io.decode_jpeg(data, channels=3, ratio=ratio, dct_method=dct_method)

        return tf.case([(shorter >= 8 * size, at(8)), (shorter >= 4 * size, at(4)),
                        (shorter >= 2 * size, at(2))], default=at(1))

    image = tf.cond(tf.io.is_jpeg(data), jpeg, lambda: decode_image(data))
    return tf.image.resize(image, (size, size))


def fast(data, size):
    return tf.image.resize(tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_FAST"), (size, size))


def not_resized(data, size):
    """Decoding alone: the photo decoded whole, then cropped (padded) to the square, not resized."""
    return tf.cast(tf.image.resize_with_crop_or_pad(decode_image(data), size, size), tf.float32)


DECODERS = {"today: whole, then resize": today, "DCT-scaled, then resize": scaled,
            "whole, not resized (decoding's share)": not_resized,
            "integer-fast IDCT, whole, then resize": fast,
            "DCT-scaled, integer-fast": lambda data, size: scaled(data, size, "INTEGER_FAST")}


def cpu_seconds():
    """The CPU time this process has used, every thread's."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dataset(files, decoder, size):
    paths = tf.data.Dataset.from_tensor_slices([str(file) for file in files])
    return (paths.map(lambda path: decoder(tf.io.read_file(path), size), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True).batch(BATCH).prefetch(tf.data.AUTOTUNE))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--photos", type=int, default=1000, dest="count")
    parser.add_argument("--classifier", type=Path)
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each decoder (medians)")
    args = parser.parse_args(argv)
    files = []
    for kind in ("cat", "dog"):
        found = sorted(args.photos.glob(f"{kind}.*.jpg"), key=lambda p: int(p.name.split(".")[1]))
        files += found[:args.count // 2]
    labels = np.array([file.name.startswith("dog") for file in files])
    classifier = None
    if args.classifier:
        import keras

        classifier = keras.models.load_model(args.classifier)
    timings = {name: [] for name in DECODERS}
    for _ in range(args.rounds):  # every decoder in turn, round after round: the machine drifts
        for name, decoder in DECODERS.items():
            for _ in dataset(files[:64], decoder, args.size):  # warm up: tracing, thread pools
                pass
            start, cpu = time.perf_counter(), cpu_seconds()
            for _ in dataset(files, decoder, args.size):
                pass
            timings[name].append((len(files) / (time.perf_counter() - start),
                                  (cpu_seconds() - cpu) / len(files) * 1000))
    reference = reference_probabilities = None
    for name, decoder in DECODERS.items():
        images = np.concatenate([batch.numpy() for batch in dataset(files, decoder, args.size)])
        if reference is None:
            reference = images
        rate = median(rate for rate, _ in timings[name])
        cpu_ms = median(cpu_ms for _, cpu_ms in timings[name])
        line = (f"{name:40} {rate:7.1f} images/s, {cpu_ms:.2f} ms of CPU a photo, "
                f"largest pixel difference {np.abs(images - reference).max():6.2f}")
        if classifier is not None:
            probabilities = np.concatenate([classifier(images[i:i + BATCH])["probabilities"].numpy()[:, 0]
                                            for i in range(0, len(images), BATCH)])
            if reference_probabilities is None:
                reference_probabilities = probabilities
            difference = np.abs(probabilities - reference_probabilities).max()
            line += (f", P(dog) differs by up to {difference:.4f}, "
                     f"accuracy {np.mean((probabilities > 0.5) == labels):.4f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
