"""Classify images as cat or dog with the exported model (models/classifier.keras).

    python predict.py photo.jpg more_photos/ [--output predictions.csv]

Prints one line per image: path, TAB, cat or dog, TAB, P(dog) with 4 decimals. Files that are
not readable images are reported on stderr and skipped. Exits with 1 when no image at all could be
classified.

Images are decoded and resized to the model's input size in a tf.data pipeline, in parallel and
ahead of the model, which then classifies a batch at a time in one compiled call.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

from stages.atomic import atomic_path
from stages.labels import label_of
from stages.layout import CLASSIFIER_FILE

OUTPUT_FORMATS = (".csv", ".json")
BATCH_SIZE = 32


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Classify images as cat or dog with the model `dvc repro` exports. "
                    "Prints PATH<TAB>cat|dog<TAB>P(dog) for each image.",
        epilog="Files that cannot be decoded are reported on stderr and skipped; the exit status "
               "is 0 when at least one image was classified, 1 otherwise.")
    parser.add_argument("paths", metavar="PATH", nargs="+", type=Path,
                        help="an image file (JPEG, PNG, GIF or BMP) or a folder, searched recursively")
    parser.add_argument("--output", metavar="FILE", type=Path,
                        help="also write the results to FILE: .csv (file,label,probability) "
                             "or .json (a list of objects)")
    parser.add_argument("--model", metavar="FILE", type=Path, default=CLASSIFIER_FILE,
                        help=f"the exported classifier (default: {CLASSIFIER_FILE})")
    parser.add_argument("--batch-size", metavar="N", type=int, default=BATCH_SIZE,
                        help=f"images per model call (default: {BATCH_SIZE})")
    args = parser.parse_args(argv)
    if args.output and args.output.suffix.lower() not in OUTPUT_FORMATS:
        parser.error(f"--output must end in {' or '.join(OUTPUT_FORMATS)}, got {args.output}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


def find_files(paths):
    """The files named, and every file inside the folders named, in sorted order per folder."""
    files = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            files.append(path)  # a missing file is reported when it is read
    return files


def image_batches(files, size, batch_size):
    """Batches of (paths, images resized to size x size, problems), in the order of `files`.

    Each file goes through images.read_image, the judge split uses; an unusable one gets a blank
    image and its problem, a usable one an empty problem.
    """
    from stages.images import read_image, resize
    from stages.runtime import tf

    def read(path):
        image, problem = read_image(path.numpy().decode())
        if problem:
            return tf.zeros((size, size, 3)), problem
        return resize(image, size), ""

    def read_in_graph(path):
        image, problem = tf.py_function(read, [path], [tf.float32, tf.string])
        image.set_shape((size, size, 3))
        return path, image, problem

    paths = tf.constant([str(f) for f in files], dtype=tf.string)  # typed even when empty
    return (tf.data.Dataset.from_tensor_slices(paths)
            .map(read_in_graph, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size)
            .prefetch(1))


def classify(model, files, batch_size):
    """Yield (path, P(dog), None) for each usable file and (path, None, problem) for the others."""
    from stages.runtime import tf

    resize_layer = model.get_layer("resize")  # the exported classifier's first step
    size = resize_layer.height
    predict = tf.function(lambda images: model(images, training=False)[:, 0], reduce_retracing=True)
    for paths, images, problems in image_batches(files, size, batch_size):
        probabilities = predict(images).numpy()
        for path, probability, problem in zip(paths.numpy(), probabilities, problems.numpy(), strict=True):
            if problem:
                yield path.decode(), None, problem.decode()
            else:
                yield path.decode(), float(probability), None


def write_output(path, results):
    """Write the results as CSV or JSON, by the suffix of `path`, atomically."""
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=["file", "label", "probability"])
                writer.writeheader()
                writer.writerows(results)
        else:
            tmp.write_text(json.dumps(results, indent=2) + "\n")


def main(argv=None):
    args = parse_args(argv)
    if not args.model.is_file():
        sys.exit(f"error: no model at {args.model}. Run `dvc repro` to train and export it "
                 "(or `dvc pull` to fetch it from the DVC remote), or pass --model FILE.")
    from stages.runtime import keras

    model = keras.models.load_model(args.model)
    results = []
    for path, probability, problem in classify(model, find_files(args.paths), args.batch_size):
        if problem:
            print(f"{path}: skipped: {problem}", file=sys.stderr)
            continue
        results.append({"file": path, "label": label_of(probability),
                        "probability": round(probability, 6)})
        print(f"{path}\t{label_of(probability)}\t{probability:.4f}", flush=True)

    if not results:
        print("error: no image could be classified", file=sys.stderr)
        return 1
    if args.output:
        write_output(args.output, results)
        print(f"wrote {len(results)} result(s) to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
