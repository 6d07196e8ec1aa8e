"""Benchmark: the original recipe's extraction loop against this project's `extract`, side by side.

    python bench/extract.py ../shared/datasets/dogs-vs-cats/train --images 400

(a) original: a Python generator decodes and resizes each batch of 20 with Pillow (nearest, as
    Keras' load_img did), scales it, and calls conv_base.predict per batch, in float32;
(b) project: stages/extract.py's own code path (tf.data pipeline, compiled conv base) at the
    extract.* and conv_base.* params of params.yaml (weights overridable with --weights).

Each runs in its own process, so peak memory (max RSS) is its own. Prints images/s, the ratio,
peak memory, the largest feature difference, and the test accuracy of the same head trained on
each feature set (first half of each class to train, second half to test).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages.labels import CLASSES  # noqa: E402
from stages.params import load_params  # noqa: E402

ORIGINAL_BATCH = 20


def pick_images(image_dir, count):
    """`count` images, half per class, in name order, with labels (0 = cat, 1 = dog)."""
    from stages.split import find_candidates

    by_class = {c: [] for c in CLASSES}
    for path, class_name in find_candidates(Path(image_dir)).items():
        if class_name:
            by_class[class_name].append(path)
    files, labels = [], []
    for label, class_name in enumerate(CLASSES):
        chosen = sorted(by_class[class_name], key=lambda p: (len(p.name), p.name))[:count // 2]
        files += chosen
        labels += [label] * len(chosen)
    return files, np.array(labels)


def run_original(conv_base, preprocess, files, size, out_file):
    """The recipe's loop: generator of decoded batches, one predict() call per batch of 20."""
    from PIL import Image

    def batches():
        for start in range(0, len(files), ORIGINAL_BATCH):
            images = [np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.NEAREST),
                                 dtype=np.float32) for f in files[start:start + ORIGINAL_BATCH]]
            # The original rescales by 1/255; the conv base's own preprocessing costs the same and
            # keeps the features comparable with (b).
            yield preprocess(np.stack(images))

    features = np.concatenate([conv_base.predict(batch, verbose=0) for batch in batches()])
    np.save(out_file, features)


def run_project(conv_base, preprocess, files, size, out_file, batch_size):
    """stages/extract.py's code path, unchanged."""
    from stages.extract import extract_features, image_dataset

    extract_features(conv_base, image_dataset(files, size, preprocess, batch_size), len(files), out_file)


def child(args):
    """Run one approach in this process and print its figures as JSON."""
    from stages.conv_base import build_conv_base

    params = load_params()
    conv_params = dict(params["conv_base"], weights=args.weights)
    precision = "float32" if args.run == "original" else args.precision
    conv_base, preprocess = build_conv_base(conv_params, precision)
    files, _ = pick_images(args.image_dir, args.images)
    size = conv_params["input_size"]
    start = time.perf_counter()
    if args.run == "original":
        run_original(conv_base, preprocess, files, size, args.out)
    else:
        run_project(conv_base, preprocess, files, size, args.out, args.batch_size)
    seconds = time.perf_counter() - start
    print(json.dumps({"images": len(files), "seconds": seconds, "images_per_s": len(files) / seconds,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def head_accuracy(features, labels, seed=0):
    """Test accuracy of the project's head trained on the first half of each class."""
    from stages.model import build_head
    from stages.runtime import seed_everything

    train_params = load_params()["train"]
    seed_everything(seed)
    half = np.zeros(len(labels), bool)
    for label in (0, 1):
        idx = np.flatnonzero(labels == label)
        half[idx[:len(idx) // 2]] = True
    model = build_head(features.shape[1:], train_params["units"], train_params["dropout"],
                       train_params["learning_rate"])
    model.fit(features[half], labels[half], epochs=train_params["epochs"],
              batch_size=train_params["batch_size"], verbose=0)
    return model.evaluate(features[~half], labels[~half], verbose=0)[1]


def main():
    extract_params = load_params()["extract"]
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image_dir",
                        help="folder of images in either raw layout (Kaggle's train/, or Cat/ Dog/)")
    parser.add_argument("--images", type=int, default=400,
                        help="how many images, half per class (default 400)")
    parser.add_argument("--weights", default=None,
                        help="conv base weights: imagenet, a weights file, or omitted for random init")
    parser.add_argument("--precision", default=extract_params["precision"],
                        help="precision for (b) (default: extract.precision)")
    parser.add_argument("--batch-size", type=int, default=extract_params["batch_size"],
                        help="batch size for (b) (default: extract.batch_size)")
    parser.add_argument("--skip-original", action="store_true", help="time (b) only")
    parser.add_argument("--run", choices=["original", "project"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return child(args)

    results, features = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in (["project"] if args.skip_original else ["original", "project"]):
            out = Path(tmp) / f"{run}.npy"
            command = [sys.executable, __file__, args.image_dir, "--images", str(args.images),
                       "--precision", args.precision, "--batch-size", str(args.batch_size),
                       "--run", run, "--out", str(out)]
            if args.weights:
                command += ["--weights", args.weights]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[run] = json.loads(output.strip().splitlines()[-1])
            features[run] = np.load(out)

    _, labels = pick_images(args.image_dir, args.images)
    print(f"{results['project']['images']} images from {args.image_dir}, conv base weights: "
          f"{args.weights or 'random (seeded)'}, {os.cpu_count()} CPUs")
    print(f"{'':<12}{'images/s':>10}{'seconds':>10}{'peak MiB':>10}{'test acc':>10}")
    names = {"original": "(a) original", "project": "(b) project"}
    for run, result in results.items():
        accuracy = head_accuracy(features[run], labels)
        print(f"{names[run]:<12}{result['images_per_s']:>10.1f}{result['seconds']:>10.1f}"
              f"{result['peak_rss_mib']:>10.0f}{accuracy:>10.3f}")
    print(f"(b) settings: precision {args.precision}, batch {args.batch_size}")
    if "original" in results:
        difference = np.abs(features["project"] - features["original"])
        scale = np.abs(features["original"]).max()
        speed_up = results["project"]["images_per_s"] / results["original"]["images_per_s"]
        print(f"speed-up (b)/(a): {speed_up:.2f}x")
        print(f"feature difference: max abs {difference.max():.4g} ({difference.max() / scale:.2%} of the "
              f"largest feature), mean abs {difference.mean():.4g}")


if __name__ == "__main__":
    main()
