"""Benchmark: predict.py's batched classification against one model call per image, and extract.

    python -m bench.predict PHOTOS --weights WEIGHTS.h5 [--name mobilenet_v2 --size 160 --images 300]

On the same photos, with the same conv base (a classifier built as train exports it, the head
freshly initialised: speed does not depend on its weights):
  (a) before: one eager model call per image, as predict.py classified until now;
  (b) predict.py: tf.data decoding and resizing, one compiled call per batch of 32;
  (c) extract: the extract stage's Keras float32 path over the same files (features only).
Each runs on the first 100 photos and then on all of them; images/s is the marginal rate between
the two (start-up and compilation cancel out). Prints images/s, (b) against (c), and the largest
difference between the probabilities of (a) and (b).
"""

import argparse
import time
from pathlib import Path

import numpy as np

import predict
from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.engines import keras_engine
from dogs_vs_cats.features import extract_features
from dogs_vs_cats.images import image_dataset, read_image
from dogs_vs_cats.model import build_classifier, build_head

FIRST = 100


def timed(function, files):
    """Marginal images per second of function() between files[:FIRST] and files, and its result."""
    start = time.perf_counter()
    function(files[:FIRST])
    first = time.perf_counter() - start
    start = time.perf_counter()
    result = function(files)
    return (len(files) - FIRST) / (time.perf_counter() - start - first), result


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path, help="a folder of photos")
    parser.add_argument("--weights", required=True, help="conv base weights: a file, or imagenet")
    parser.add_argument("--name", default="mobilenet_v2", help="conv_base.name (default mobilenet_v2)")
    parser.add_argument("--size", type=int, default=160, help="conv_base.input_size (default 160)")
    parser.add_argument("--images", type=int, default=300, help="photos (default 300; more than 100)")
    args = parser.parse_args()

    files = sorted(args.photos.iterdir())[:args.images]
    conv_base, preprocess_input = build_conv_base(
        {"name": args.name, "weights": args.weights, "input_size": args.size, "seed": 0})
    head = build_head(conv_base.output_shape[1:], 256, 0.5, 2e-5, ["cat", "dog"])
    classifier = build_classifier(conv_base, preprocess_input, head, ["cat", "dog"])

    def one_call_per_image(paths):
        return [float(classifier(read_image(path)[0][None], training=False)["probabilities"][0, 0])
                for path in paths]

    def batched(paths):
        classified = predict.classify(classifier, paths, predict.BATCH_SIZE)
        return [float(outputs[0]) for _, outputs, _ in classified]

    def extract(paths):
        dataset = image_dataset(paths, args.size, predict.BATCH_SIZE, preprocess=preprocess_input)
        extract_features(keras_engine(conv_base), conv_base.output_shape[1:], dataset, len(paths),
                         "/dev/null")

    speed_a, probabilities_a = timed(one_call_per_image, files)
    speed_b, probabilities_b = timed(batched, files)
    speed_c, _ = timed(extract, files)
    print(f"{len(files)} photos from {args.photos}, {args.name} at {args.size}, weights {args.weights}")
    print(f"{'':<38}{'images/s':>9}")
    for label, speed in (("(a) before: one call per image", speed_a),
                         ("(b) predict.py: batches of 32", speed_b),
                         ("(c) extract, Keras float32", speed_c)):
        print(f"{label:<38}{speed:>9.1f}")
    print(f"(b) / (c): {speed_b / speed_c:.0%}; (b) / (a): {speed_b / speed_a:.1f}x")
    difference = np.abs(np.array(probabilities_a) - np.array(probabilities_b)).max()
    print(f"largest |P(dog) (a) - P(dog) (b)|: {difference:.2g}")


if __name__ == "__main__":
    main()
