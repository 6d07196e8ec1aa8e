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

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.labels import label_of
from dogs_vs_cats.core.layout import CLASSIFIER_FILE

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


def classify(model, files, batch_size):
    """Yield (path, P(dog), None) for each usable file and (path, None, problem) for the others.

    Each file is judged by images.read_image, as split judges it; an unusable one is reported, not
    classified.
    """
    from dogs_vs_cats.core.runtime import tf
    from dogs_vs_cats.images import image_dataset

    size = model.get_layer("resize").height  # the exported classifier's first step
    predict = tf.function(lambda images: model(images, training=False)[:, 0], reduce_retracing=True)
    done = 0
    for images, problems in image_dataset(files, size, batch_size, report_problems=True):
        probabilities = predict(images).numpy()
        batch_files, done = files[done:done + len(probabilities)], done + len(probabilities)
        for path, probability, problem in zip(batch_files, probabilities, problems.numpy(), strict=True):
            if problem:
                yield str(path), None, problem.decode()
            else:
                yield str(path), float(probability), None


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
    from dogs_vs_cats.core.runtime import keras

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
    sys.exit(run_stage(main))  # the exit status main returns; a DiskFull as one line
