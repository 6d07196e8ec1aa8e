"""Classify images with the exported model (models/classifier.keras), which holds its class names.

    python predict.py photo.jpg more_photos/ [--output predictions.csv [--all-probabilities]]
    python predict.py --explain photo.jpg      # and heatmaps/photo.jpg: what the model saw (Grad-CAM)

Prints one line per image: path, TAB, class, TAB, a probability with 4 decimals: for two classes
that of the second (P(dog) for cat and dog), for more that of the predicted class. Files that are
not readable images are reported on stderr and skipped. Exits with 1 and one line when no image at
all could be classified.

Images are decoded and resized to the model's input size in a tf.data pipeline, in parallel and
ahead of the model, which then classifies a batch at a time in one compiled call.

With --explain, each classified image also gets its Grad-CAM heatmap laid over it, written to
--heatmaps (heatmaps/ by default) as <name>.jpg (<name>-2.jpg and so on when names repeat), and its
path is the "heatmap" column (or key) of --output (dogs_vs_cats/heatmaps.py).
"""

import argparse
import csv
import json
import sys
from pathlib import Path

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.classes import class_probabilities, predicted_labels, reported_probability
from dogs_vs_cats.core.errors import UserError, run_stage
from dogs_vs_cats.core.layout import CLASSIFIER_FILE

OUTPUT_FORMATS = (".csv", ".json")
BATCH_SIZE = 32
HEATMAPS_DIR = Path("heatmaps")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Classify images with the model `dvc repro` exports. Prints PATH<TAB>CLASS<TAB>"
                    "PROBABILITY for each image: for two classes the probability of the second "
                    "(P(dog) for cat and dog), for more that of the predicted class.",
        epilog="Files that cannot be decoded are reported on stderr and skipped; the exit status "
               "is 0 when at least one image was classified, 1 otherwise.")
    parser.add_argument("paths", metavar="PATH", nargs="+", type=Path,
                        help="an image file (JPEG, PNG, GIF or BMP) or a folder, searched recursively")
    parser.add_argument("--output", metavar="FILE", type=Path,
                        help="also write the results to FILE: .csv (file,label,probability) "
                             "or .json (a list of objects)")
    parser.add_argument("--all-probabilities", action="store_true",
                        help="with --output, also every class's probability (a column, or an object, "
                             "per image)")
    parser.add_argument("--model", metavar="FILE", type=Path, default=CLASSIFIER_FILE,
                        help=f"the exported classifier (default: {CLASSIFIER_FILE})")
    parser.add_argument("--batch-size", metavar="N", type=int, default=BATCH_SIZE,
                        help=f"images per model call (default: {BATCH_SIZE})")
    parser.add_argument("--explain", action="store_true",
                        help="also draw what the model saw in each image (a Grad-CAM heatmap over it) "
                             "into --heatmaps")
    parser.add_argument("--heatmaps", metavar="DIR", type=Path, default=HEATMAPS_DIR,
                        help=f"where --explain writes <image name>.jpg (default: {HEATMAPS_DIR}/)")
    args = parser.parse_args(argv)
    if args.output and args.output.suffix.lower() not in OUTPUT_FORMATS:
        parser.error(f"--output must end in {' or '.join(OUTPUT_FORMATS)}, got {args.output}")
    if args.all_probabilities and not args.output:
        parser.error("--all-probabilities needs --output FILE (.csv or .json)")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.heatmaps != HEATMAPS_DIR and not args.explain:
        parser.error("--heatmaps DIR needs --explain, which draws them")
    if args.explain and args.heatmaps.exists() and not args.heatmaps.is_dir():
        parser.error(f"--heatmaps must be a folder, and {args.heatmaps} is a file")
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
    """Yield (path, outputs, None) for each usable file and (path, None, problem) for the others.

    `outputs` are the model's probabilities for the image: [P(second class)] for two classes, one
    per class for more.

    Each file is judged by images.read_image, as split judges it; an unusable one is reported, not
    classified.
    """
    from dogs_vs_cats.core.runtime import tf
    from dogs_vs_cats.images import image_dataset

    size = model.get_layer("resize").height  # the exported classifier's first step
    predict = tf.function(lambda images: model(images, training=False)["probabilities"],
                          reduce_retracing=True)
    done = 0
    for images, problems in image_dataset(files, size, batch_size, report_problems=True):
        outputs = predict(images).numpy()
        batch_files, done = files[done:done + len(outputs)], done + len(outputs)
        for path, output, problem in zip(batch_files, outputs, problems.numpy(), strict=True):
            if problem:
                yield str(path), None, problem.decode()
            else:
                yield str(path), output, None


def result_row(path, outputs, classes, all_probabilities=False):
    """One image's result: file, label (its class) and probability; with all_probabilities, each
    class's probability too (P(<class>) columns in CSV)."""
    outputs = outputs[None]
    row = {"file": path, "label": classes[predicted_labels(outputs)[0]],
           "probability": float(reported_probability(outputs)[0])}
    if all_probabilities:
        row["probabilities"] = {name: round(float(p), 6)
                                for name, p in zip(classes, class_probabilities(outputs)[0], strict=True)}
    return row


def heatmap_paths(results, folder):
    """A JPEG in `folder` for each result, named after its image: <name>.jpg, <name>-2.jpg when a name
    comes again (two folders may hold photo.jpg; photo.png and Photo.jpg are one file on macOS and
    Windows)."""
    paths, taken = [], set()
    for row in results:
        stem, number = Path(row["file"]).stem, 1
        while (name := stem if number == 1 else f"{stem}-{number}").casefold() in taken:
            number += 1
        taken.add(name.casefold())
        paths.append(folder / f"{name}.jpg")
    return paths


def explain(model, results, folder, batch_size):
    """Draw each result's image under its Grad-CAM heatmap, with its class and probability, into
    `folder`, and put each file's path in its row as "heatmap"."""
    from dogs_vs_cats.figures import draw_gallery
    from dogs_vs_cats.heatmaps import Explainer
    from dogs_vs_cats.images import read_photo

    explainer = Explainer(model)
    folder.mkdir(parents=True, exist_ok=True)
    for row, path in zip(results, heatmap_paths(results, folder), strict=True):
        row["heatmap"] = str(path)
    for start in range(0, len(results), batch_size):
        rows = results[start:start + batch_size]
        photos = [read_photo(row["file"]) for row in rows]  # classify read them: they decode
        # The class printed: a float32 rerun of the same model gives it, bar a tie at the threshold.
        labels = [explainer.classes.index(row["label"]) for row in rows]
        heatmaps, outputs = explainer(photos, labels)
        for row, photo, heatmap, probabilities in zip(rows, photos, heatmaps, class_probabilities(outputs),
                                                      strict=True):
            label = row["label"]
            heading = f"{label}, P({label}) = {probabilities[explainer.classes.index(label)]:.4f}"
            draw_gallery(Path(row["heatmap"]), [(photo, heading, heatmap)], title=Path(row["file"]).name,
                         empty="", cell_inches=6)


def write_output(path, results):
    """Write the results as CSV or JSON, by the suffix of `path`, atomically."""
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            rows = [{key: value for key, value in row.items() if key != "probabilities"}
                    | {f"P({name})": p for name, p in row.get("probabilities", {}).items()}
                    for row in results]
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        else:
            tmp.write_text(json.dumps(results, indent=2) + "\n")


def main(argv=None):
    """Classify the images the command line names: print a line for each, and write --output.

    Args:
        argv: the command-line arguments; sys.argv[1:] when None.

    Raises:
        UserError: no model at --model, or no image could be classified (the exit status 1 of the
            command line, through run_stage).
    """
    args = parse_args(argv)
    if not args.model.is_file():
        raise UserError(f"error: no model at {args.model}. Fix: run `dvc repro` to train and export it "
                        "(or `dvc pull` to fetch it from the DVC remote), or pass --model FILE")
    from dogs_vs_cats.core.runtime import keras
    from dogs_vs_cats.model import class_names

    model = keras.models.load_model(args.model)
    classes = class_names(model)
    files = find_files(args.paths)
    results = []
    for path, outputs, problem in classify(model, files, args.batch_size):
        if problem:
            print(f"{path}: skipped: {problem}", file=sys.stderr)
            continue
        row = result_row(path, outputs, classes, args.all_probabilities)
        print(f"{path}\t{row['label']}\t{row['probability']:.4f}", flush=True)
        results.append(dict(row, probability=round(row["probability"], 6)))

    if not results:
        found = f"all {len(files)} file(s) were skipped (see above)" if files else "the paths hold no file"
        raise UserError(f"error: no image could be classified: {found}. Fix: pass image files (JPEG, PNG, "
                        "GIF or BMP) or folders that hold some")
    if args.explain:
        explain(model, results, args.heatmaps, args.batch_size)
        print(f"wrote {len(results)} heatmap(s) to {args.heatmaps}/", file=sys.stderr)
    if args.output:
        write_output(args.output, results)
        print(f"wrote {len(results)} result(s) to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)  # a UserError (no model, no image, DiskFull) as one line and exit status 1
