"""Benchmark: the extract stage in its own process against Ray Data with 1 and 2 actors, side by side.

    python -m bench.ray_extract PHOTOS --images 1000        # needs requirements-ray.txt

Runs `python -m stages.extract train`, as DVC runs it, in a throw-away project whose data/split/train
holds the first --images photos of PHOTOS (half cats, half dogs, linked, not copied), for VGG16 at 150
and MobileNetV2 at 160 (random weights: the speed is the same), extract.batch_size 32, keras
float32. Each run is a fresh process: its wall time includes TensorFlow's import, the conv base's
build and, on Ray, the instance's and the actors' start; "images/s" is the stage's own count over its
own time (engine and actors started included). Every Ray run's features.npy is compared with the
in-process one, byte for byte.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BASES = {"VGG16@150": ("vgg16", 150), "MobileNetV2@160": ("mobilenet_v2", 160)}
RUNS = {"in-process": {}, "Ray, 1 actor": {"EXTRACT_RUNNER": "ray", "EXTRACT_ACTORS": "1"},
        "Ray, 2 actors": {"EXTRACT_RUNNER": "ray", "EXTRACT_ACTORS": "2"}}


def make_project(folder, photos, count):
    """The code, params.yaml and a split train subset of `count` photos (symbolic links)."""
    for package in ("stages", "dogs_vs_cats"):
        shutil.copytree(REPO / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    for kind in ("cat", "dog"):
        target = folder / "data/split/train" / kind
        target.mkdir(parents=True)
        for index in range(1, count // 2 + 1):
            (target / f"{kind}.{index}.jpg").symlink_to(Path(photos).resolve() / f"{kind}.{index}.jpg")
    (folder / "data/split/classes.json").write_text(json.dumps(["cat", "dog"]))


def run_stage(folder, name, size, environ):
    """(wall seconds, the stage's images/s, features bytes) of one `python -m stages.extract train`."""
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["conv_base"].update(name=name, input_size=size, weights=None)
    params["extract"].update(engine="keras", precision="float32", batch_size=32)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", **environ)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "stages.extract", "train"], cwd=folder, env=env,
                            capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"{name} {environ}: the stage failed:\n{result.stderr[-3000:]}")
    speed = float(re.findall(r"images in [\d.]+ s, ([\d.]+) images/s", result.stdout)[-1])
    return wall, speed, (folder / "data/features/train/features.npy").read_bytes()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="a folder of Kaggle's cat.N.jpg and dog.N.jpg")
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        make_project(Path(folder), args.photos, args.images)
        print(f"{args.images} photos, extract.batch_size 32, keras float32; wall s / stage images/s")
        print(f"{'run':<16}" + "".join(f"{base:>26}" for base in BASES))
        figures = {run: {} for run in RUNS}
        for base, (name, size) in BASES.items():
            reference = None
            for run, environ in RUNS.items():
                wall, speed, features = run_stage(Path(folder), name, size, environ)
                reference = reference or features
                same = "same" if features == reference else "DIFFERENT"
                figures[run][base] = f"{wall:6.1f} s {speed:6.1f}/s {same:>9}"
        for run, row in figures.items():
            print(f"{run:<16}" + "".join(f"{row[base]:>26}" for base in BASES))


if __name__ == "__main__":
    main()
