"""Benchmark: the recipe's extraction loop against `extract` on each engine and precision, side by side.

    python -m bench.extract PHOTOS --name mobilenet_v2 --size 160 --weights WEIGHTS.h5 --images 1000
    python -m bench.extract PHOTOS --name vgg16 --size 150 --images 1000     # random VGG16

On the same photos (half per class), each in its own process, so that peak memory is its own:
  original   a Python generator decodes and resizes each batch of 20 with Pillow (nearest, as
             Keras' load_img did) and calls conv_base.predict per batch, in float32 (Keras);
  ENGINE/PRECISION   the extract stage's code path (tf.data decoding, dogs_vs_cats/engines.py) at batch
             --batch-size; int8 first quantises the conv base as the quantize stage does, on
             --calibration images of the first half (not timed).
Speed is marginal images/s between the first 100 images and all of them, whole pipeline (decoding
included), and the ratio to the original loop. Parity, against keras/float32's features: the
largest and the mean feature difference (relative to the largest feature), and the test accuracy of the
project's head (train.* params) trained on the first half of each class and tested on the second,
both ways: the head trained on keras/float32 features scored on each run's features ("f32 head"),
and a head trained on each run's own features ("own head").
"""

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dogs_vs_cats.core.params import load_params

ORIGINAL_BATCH = 20
WARM_UP_IMAGES = 100  # speed is measured after these (start-up, compilation, first batches)
RUNS = ["original", "keras/float32", "keras/bfloat16", "openvino/float32", "openvino/bfloat16",
        "openvino/int8"]


def pick_images(image_dir, count):
    """`count` images, half per class, in name order, with labels (0 = cat, 1 = dog)."""
    from dogs_vs_cats.raw_photos import FolderPhotos
    from dogs_vs_cats.splitting import find_candidates

    classes, candidates = find_candidates(FolderPhotos(image_dir).names())
    by_class = {c: [] for c in classes}
    for name, (class_name, _) in candidates.items():
        if class_name:
            by_class[class_name].append(Path(image_dir) / name)
    files, labels = [], []
    for label, class_name in enumerate(classes):
        chosen = sorted(by_class[class_name], key=lambda p: (len(p.name), p.name))[:count // 2]
        files += chosen
        labels += [label] * len(chosen)
    return files, np.array(labels)


def first_half(labels):
    """A mask of the first half of each class: the head's training images (and calibration's)."""
    half = np.zeros(len(labels), bool)
    for label in (0, 1):
        indices = np.flatnonzero(labels == label)
        half[indices[:len(indices) // 2]] = True
    return half


class Timed:
    """Wraps an engine: remembers when each batch finished, to compute marginal images/s."""

    def __init__(self, run):
        self.run, self.done, self.times = run, 0, []

    def __call__(self, images):
        features = self.run(images)
        self.done += len(features)
        self.times.append((self.done, time.perf_counter()))
        return features


def marginal_rate(times):
    """Images per second after the first WARM_UP_IMAGES, from (images done, time) pairs."""
    start_done, start = next((done, t) for done, t in times if done >= WARM_UP_IMAGES)
    end_done, end = times[-1]
    return (end_done - start_done) / (end - start)


def run_original(conv, files, out_file):
    """The recipe's loop: generator of decoded batches, one predict() call per batch of 20."""
    from PIL import Image

    from dogs_vs_cats.conv_base import build_conv_base

    conv_base, preprocess = build_conv_base(conv, "float32")
    size = conv.input_size

    def batches():
        for start in range(0, len(files), ORIGINAL_BATCH):
            images = [np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.NEAREST),
                                 dtype=np.float32) for f in files[start:start + ORIGINAL_BATCH]]
            # The original rescales by 1/255; the conv base's own preprocessing costs the same and
            # keeps the features comparable with the others.
            yield preprocess(np.stack(images))

    times, features = [], []
    for batch in batches():
        features.append(conv_base.predict(batch, verbose=0))
        times.append((sum(len(f) for f in features), time.perf_counter()))
    np.save(out_file, np.concatenate(features))
    return times


def run_project(conv, engine, precision, files, labels, out_file, batch_size, calibration):
    """The extract stage's code path, unchanged, on one engine and precision."""
    from dogs_vs_cats.engines import load_engine
    from dogs_vs_cats.features import extract_features
    from dogs_vs_cats.images import image_dataset

    quantized_model = None
    if precision == "int8":
        from dogs_vs_cats.core.params import Extract
        from dogs_vs_cats.quantization import write_int8_conv_base

        train_files = [f for f, first in zip(files, first_half(labels), strict=True) if first]
        folder = Path(out_file).with_suffix("")
        write_int8_conv_base(conv, Extract(engine, precision, batch_size), train_files, calibration, folder)
        quantized_model = folder / "conv_base.xml"
    run, preprocess, shape, note = load_engine(conv, engine, precision, quantized_model,
                                               batch_size=batch_size)
    if note:
        print(f"note: {note}", file=sys.stderr)
    timed = Timed(run)
    dataset = image_dataset(files, conv.input_size, batch_size, preprocess=preprocess)
    extract_features(timed, shape, dataset, len(files), out_file)
    return timed.times


def child(args):
    """Run one approach in this process and print its figures as JSON."""
    conv = conv_base_params(args)
    files, labels = pick_images(args.image_dir, args.images)
    if args.run == "original":
        times = run_original(conv, files, args.out)
    else:
        engine, precision = args.run.split("/")
        times = run_project(conv, engine, precision, files, labels, args.out, args.batch_size,
                            args.calibration)
    print(json.dumps({"images": len(files), "images_per_s": marginal_rate(times),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def conv_base_params(args):
    """params.yaml's conv_base section, with what the command line overrides."""
    conv = load_params().conv_base
    overrides = {key: getattr(args, key) for key in ("name", "weights") if getattr(args, key) is not None}
    if args.size:
        overrides["input_size"] = args.size
    if overrides.get("weights", conv.weights) in ("null", "none", "random"):
        overrides["weights"] = None
    return dataclasses.replace(conv, **overrides)


def train_head(features, labels):
    """The project's head (train.* params), trained on (features, labels)."""
    from dogs_vs_cats.core.runtime import seed_everything
    from dogs_vs_cats.model import build_head

    train = load_params().train
    seed_everything(train.seed)
    model = build_head(features.shape[1:], train.units, train.dropout, train.learning_rate, ["cat", "dog"])
    model.fit(features, labels, epochs=train.epochs, batch_size=train.batch_size, verbose=0)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image_dir",
                        help="folder of images in either raw layout (Kaggle's train/, or Cat/ Dog/)")
    parser.add_argument("--images", type=int, default=1000,
                        help="how many images, half per class (default 1000)")
    parser.add_argument("--name", help="conv base (default: conv_base.name)")
    parser.add_argument("--size", type=int, help="input size (default: conv_base.input_size)")
    parser.add_argument("--weights",
                        help="imagenet, a weights file, or null for random (default: conv_base.weights)")
    parser.add_argument("--batch-size", type=int, default=load_params().extract.batch_size,
                        help="batch size of the project's runs (default: extract.batch_size)")
    parser.add_argument("--calibration", type=int, default=load_params().quantize.images,
                        help="int8 calibration images (default: quantize.images)")
    parser.add_argument("--runs", default=",".join(RUNS),
                        help=f"comma-separated, from {','.join(RUNS)} (default: all)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return child(args)

    runs = args.runs.split(",")
    if "keras/float32" not in runs:
        runs.insert(0, "keras/float32")  # the reference for parity
    results, features = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            out = Path(tmp) / f"{run.replace('/', '_')}.npy"
            command = [sys.executable, "-m", __spec__.name, *sys.argv[1:], "--run", run, "--out", str(out)]
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode:
                print(f"{run}: failed\n{completed.stderr[-2000:]}", file=sys.stderr)
                continue
            results[run] = json.loads(completed.stdout.strip().splitlines()[-1])
            features[run] = np.load(out)
            print(f"{run}: {results[run]['images_per_s']:.1f} images/s", file=sys.stderr, flush=True)

    _, labels = pick_images(args.image_dir, args.images)
    half = first_half(labels)
    reference = features["keras/float32"]
    reference_head = train_head(reference[half], labels[half])
    conv = conv_base_params(args)
    print(f"{len(labels)} images from {args.image_dir}; {conv.name} at "
          f"{conv.input_size}, weights {conv.weights or 'random (seeded)'}; "
          f"{os.cpu_count()} CPUs; marginal images/s after the first {WARM_UP_IMAGES}")
    print(f"{'run':<20}{'images/s':>9}{'ratio':>7}{'peak MiB':>9}{'max diff':>9}{'mean diff':>10}"
          f"{'f32 head':>9}{'own head':>9}")
    original_rate = results.get("original", {}).get("images_per_s")
    for run, result in results.items():
        difference = np.abs(features[run] - reference) / np.abs(reference).max()
        scored = reference_head.evaluate(features[run][~half], labels[~half], verbose=0)[1]
        own = train_head(features[run][half], labels[half]).evaluate(
            features[run][~half], labels[~half], verbose=0)[1]
        ratio = f"{result['images_per_s'] / original_rate:.2f}" if original_rate else "-"
        print(f"{run:<20}{result['images_per_s']:>9.1f}{ratio:>7}{result['peak_rss_mib']:>9.0f}"
              f"{difference.max():>9.4f}{difference.mean():>10.5f}{scored:>9.3f}{own:>9.3f}")


if __name__ == "__main__":
    main()
