"""Classify images as cat or dog with the exported model (models/classifier.keras).

    python predict.py photo.jpg more_photos/ [--output predictions.csv]

Prints one line per image: path, TAB, cat or dog, TAB, P(dog) with 4 decimals. Files that are
not readable images are reported on stderr and skipped. Exits with 1 when no image at all could be
classified.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

from stages.classifier import CLASSIFIER_FILE, label_of
from stages.common import atomic_path, read_image

OUTPUT_FORMATS = (".csv", ".json")


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
    args = parser.parse_args(argv)
    if args.output and args.output.suffix.lower() not in OUTPUT_FORMATS:
        parser.error(f"--output must end in {' or '.join(OUTPUT_FORMATS)}, got {args.output}")
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
    import keras

    model = keras.models.load_model(args.model)
    results = []
    for path in find_files(args.paths):
        image, problem = read_image(path)
        if problem:
            print(f"{path}: skipped: {problem}", file=sys.stderr)
            continue
        probability = float(model(image[None], training=False)[0, 0])
        results.append({"file": str(path), "label": label_of(probability),
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
