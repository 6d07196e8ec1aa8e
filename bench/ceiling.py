"""The extract stage against OpenVINO's own ceiling on the same int8 model, side by side in one run.

    python -m bench.ceiling PHOTOS [--weights WEIGHTS.h5] [--before REV] [--photos 1000] [--seconds 20]
                            [--repeats 3]

PHOTOS is a Kaggle-style folder (cat.N.jpg, dog.N.jpg): the 4000 shared photos. For each conv base
(VGG16 at 150 with random weights; with --weights, the pretrained MobileNetV2 at 160) and each
version of the code (--before REV, then the working tree), in a project of its own:
  1. data/split/train holds --photos photos (half per class), validation and test 20 each; the
     quantize stage writes the int8 conv base (extract.engine: openvino, extract.precision: int8);
  2. `python -m stages.extract train`, whole, with an empty feature store, on the first 100 photos
     and then on all of them, --repeats times each: the stage's marginal rate is (photos - 100) /
     (difference of the median times), decoding, the store and the .npy file included;
  3. `benchmark_app -hint throughput -b BATCH` (OpenVINO's, from its wheel) on the model the quantize
     stage wrote: the engine's own rate, inference only, on random input;
  4. decoding alone: the stage's tf.data pipeline (read, decode, resize, preprocess_input) over the
     same photos with no model, on every core.
Prints each rate and the ratio of the stage's to benchmark_app's. Decoding and inference share the
cores, so the stage can reach at most 1 / (1 / decoding + 1 / benchmark_app) without cheaper
decoding: printed as "both". The machine should be idle.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import yaml

from bench.growth import code_of

WARM_UP = 100  # photos: the marginal rate is measured beyond them (start-up, compilation)


def make_split(project, photos, count):
    """data/split/{train,validation,test}/{cat,dog}/ as links to the photos: `count` in train."""
    split = project / "data" / "split"
    for kind in ("cat", "dog"):
        sources = sorted(Path(photos).glob(f"{kind}.*.jpg"), key=lambda p: int(p.name.split(".")[1]))
        chosen = {"train": sources[:count // 2], "validation": sources[count // 2:count // 2 + 20],
                  "test": sources[count // 2 + 20:count // 2 + 40]}
        for subset, files in chosen.items():
            folder = split / subset / kind
            folder.mkdir(parents=True, exist_ok=True)
            for file in files:
                (folder / file.name).symlink_to(file.resolve())
    (split / "classes.json").write_text(json.dumps(["cat", "dog"]))


def stage_seconds(project, command, store):
    """Wall time of one stage run in a fresh process, with its own feature store."""
    env = dict(os.environ, FEATURE_STORE=str(store), TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", *command], cwd=project, env=env, capture_output=True,
                            text=True)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def benchmark_app(model, batch, seconds):
    """benchmark_app's THROUGHPUT figure (images/s) for `model` at `batch`."""
    result = subprocess.run(["benchmark_app", "-m", str(model), "-d", "CPU", "-hint", "throughput",
                             "-b", str(batch), "-t", str(seconds)], capture_output=True, text=True)
    found = re.search(r"Throughput:\s+([\d.]+) FPS", result.stdout)
    if not found:
        sys.exit(f"benchmark_app failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return float(found.group(1))


def decoding_rate(project):
    """Images/s of the stage's decoding alone, over data/split/train, in a fresh process."""
    code = ("import sys, time; from pathlib import Path; sys.path.insert(0, '.'); "
            "from dogs_vs_cats.conv_base import conv_base_module; "
            "from dogs_vs_cats.core.params import load_params; "
            "from dogs_vs_cats.images import image_dataset; "
            "params = load_params(); conv = params.conv_base; "
            "files = sorted(Path('data/split/train').rglob('*.jpg')); "
            "preprocess = conv_base_module(conv.name)[0].preprocess_input; "
            "batches = image_dataset(files, conv.input_size, params.extract.batch_size, "
            "preprocess=preprocess); "
            "start = time.perf_counter(); count = sum(len(batch) for batch in batches); "
            "print(count / (time.perf_counter() - start))")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if result.returncode:
        sys.exit(f"decoding failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.split()[-1])


def measure(version, conv_base, args, work):
    """(the stage's marginal images/s, benchmark_app's, decoding's) for one version and conv base."""
    project = work / f"{version or 'now'}-{conv_base['name']}"
    code_of(version, project)
    if conv_base["weights"]:
        (project / "weights" / "pretrained.weights.h5").symlink_to(Path(args.weights).resolve())
        conv_base = dict(conv_base, weights="weights/pretrained.weights.h5")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["conv_base"].update(conv_base)
    params["extract"].update(engine="openvino", precision="int8")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    make_split(project, args.photos, args.photos_count)
    stage_seconds(project, ["stages.quantize"], work / "store-quantize")

    train = project / "data" / "split" / "train"
    kept = {kind: sorted(train.joinpath(kind).iterdir()) for kind in ("cat", "dog")}
    aside = project / "aside"
    for kind, files in kept.items():  # the warm-up run: the first WARM_UP photos only
        (aside / kind).mkdir(parents=True)
        for file in files[WARM_UP // 2:]:
            file.rename(aside / kind / file.name)
    extract = ["stages.extract", "train"]
    few = median([stage_seconds(project, extract, work / f"store-{project.name}-few{run}")
                  for run in range(args.repeats)])
    for kind in kept:
        for file in (aside / kind).iterdir():
            file.rename(train / kind / file.name)
    many = median([stage_seconds(project, extract, work / f"store-{project.name}-many{run}")
                   for run in range(args.repeats)])
    rate = (args.photos_count - WARM_UP) / (many - few)
    model = project / "models" / "conv_base_int8" / "conv_base.xml"
    ceiling = benchmark_app(model, params["extract"]["batch_size"], args.seconds)
    return rate, ceiling, decoding_rate(project)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--weights", type=Path, help="the pretrained MobileNetV2 weights file")
    parser.add_argument("--before", help="a git revision to measure too, first")
    parser.add_argument("--photos", dest="photos_count", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20, help="benchmark_app's duration")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the stage at each count (median)")
    args = parser.parse_args(argv)
    bases = [{"name": "vgg16", "weights": None, "input_size": 150}]
    if args.weights:
        bases.append({"name": "mobilenet_v2", "weights": True, "input_size": 160})
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ceiling-") as scratch:
        for conv_base in bases:
            for version in ([args.before] if args.before else []) + [None]:
                rate, ceiling, decoding = measure(version, conv_base, args, Path(scratch))
                label = f"{conv_base['name']}@{conv_base['input_size']}"
                rows.append((label, version or "working tree", rate, ceiling, decoding))
                print(f"{label:16} {version or 'working tree':14} stage {rate:7.1f} images/s, "
                      f"benchmark_app {ceiling:7.1f}: {rate / ceiling:.0%}; decoding alone {decoding:.1f}",
                      flush=True)
    print("\n| conv base | code | extract stage (marginal) | benchmark_app THROUGHPUT | ratio "
          "| decoding alone | both |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, version, rate, ceiling, decoding in rows:
        print(f"| {label} | {version} | {rate:.1f} | {ceiling:.1f} | {rate / ceiling:.0%} | {decoding:.1f} | "
              f"{1 / (1 / decoding + 1 / ceiling):.1f} |")


if __name__ == "__main__":
    main()
