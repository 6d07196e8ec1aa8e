"""The whole archive: every stage's wall time and peak memory on 25,000 photos, for two conv bases.

    python -m bench.pipeline PHOTOS --weights WEIGHTS.h5 [--per-class 12500] [--holdout 1000]
                             [--conv-bases mobilenet_v2 vgg16] [--work DIR]

PHOTOS is a Kaggle-style folder (cat.N.jpg, dog.N.jpg): the 4000 shared photos, say. From them it
makes an archive in PetImages' layout with --per-class photos per class (each source photo as it is,
mirrored, and cropped to each corner, re-encoded as JPEG, until there are enough), plus an empty
file and a text file per class as the real archive has, and serves it from 127.0.0.1. A project
copied from this repository then runs `dvc repro -s STAGE` stage by stage with its default
split.raw_dir (the download), split.train: rest and 1000 validation and test photos per class:
first with the pretrained MobileNetV2 at 160 (WEIGHTS.h5, linked into weights/), then with VGG16 at
150 (weights: null: timing does not depend on the weights) from quantize on (--conv-bases: which,
in which order). Each stage runs in a
fresh process, whose peak resident memory (of dvc and the stage, the larger) is printed with its
wall time, as a table, with the share of the whole that heatmaps and label_issues (issue 37) take.
"""

import argparse
import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml
from PIL import Image, ImageOps

from dogs_vs_cats.download import file_sha256

REPO = Path(__file__).resolve().parents[1]
COPIED = ["stages", "dogs_vs_cats", "dvc.yaml", "params.yaml", "requirements.txt",
          ".dvcignore", ".gitignore", "weights/.gitignore"]
MAIN_STAGES = ["page", "check", "check_model", "download", "split"]
CONV_STAGES = ["quantize", "extract@train", "extract@validation", "extract@test", "label_issues", "train",
               "plots", "augment", "finetune", "heatmaps"]
EXPLAINING = ("label_issues", "heatmaps")  # what the model sees and which labels look wrong

# Runs one command and prints the peak RSS of its process tree (Linux and macOS: ru_maxrss of the
# waited-for descendants; KiB on Linux).
MEASURE = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
           "code = subprocess.run(sys.argv[1:]).returncode; "
           "print('MEASURED', code, time.perf_counter() - start, "
           "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)")


def variant(path, index):
    """JPEG bytes of the photo at `path`: as it is (0), mirrored (1), or cropped to 85 % at a corner."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if index == 1:
            image = ImageOps.mirror(image)
        elif index > 1:
            width, height = image.size
            w, h = int(width * 0.85), int(height * 0.85)
            left, top = [(0, 0), (width - w, 0), (0, height - h), (width - w, height - h)][(index - 2) % 4]
            image = image.crop((left, top, left + w, top + h))
            if index >= 6:
                image = ImageOps.mirror(image)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        return buffer.getvalue()


def make_archive(photos, per_class, out):
    """A PetImages-layout zip of `per_class` photos per class made from the Kaggle folder `photos`."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive, ProcessPoolExecutor() as pool:
        archive.writestr("readme[1].txt", "A stand-in for PetImages, made by bench/pipeline.py\n")
        for folder, kind in (("Cat", "cat"), ("Dog", "dog")):
            sources = sorted(Path(photos).glob(f"{kind}.*.jpg"), key=lambda p: int(p.name.split(".")[1]))
            paths = [sources[i % len(sources)] for i in range(per_class)]
            variants = [i // len(sources) for i in range(per_class)]
            for number, data in enumerate(pool.map(variant, paths, variants, chunksize=64)):
                archive.writestr(f"PetImages/{folder}/{number}.jpg", data)
            archive.writestr(f"PetImages/{folder}/{per_class}.jpg", b"")  # as the real one: unreadable
            archive.writestr(f"PetImages/{folder}/Thumbs.db", b"\x00" * 512)


def serve(folder):
    """An HTTP server for `folder` on 127.0.0.1, in a thread; returns its base URL."""
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def set_params(project, overrides):
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in overrides.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run_stage(project, stage):
    """`dvc repro -s STAGE` in a fresh measuring process: (seconds, peak RSS in MiB)."""
    env = dict(os.environ, no_proxy="127.0.0.1", NO_PROXY="127.0.0.1", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-c", MEASURE, sys.executable, "-m", "dvc", "repro", "-s", stage]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    line = next(line for line in result.stderr.splitlines() if line.startswith("MEASURED"))
    _, code, seconds, max_rss = line.split()
    if code != "0":
        sys.exit(f"{stage} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    kib = int(max_rss) if sys.platform != "darwin" else int(max_rss) / 1024
    return float(seconds), kib / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--weights", type=Path, required=True, help="the pretrained MobileNetV2 weights file")
    parser.add_argument("--per-class", type=int, default=12500)
    parser.add_argument("--holdout", type=int, default=1000, help="validation and test photos per class")
    parser.add_argument("--conv-bases", nargs="+", choices=["mobilenet_v2", "vgg16"],
                        default=["mobilenet_v2", "vgg16"], help="which to run, in this order")
    parser.add_argument("--work", type=Path, help="a folder to keep the archive and project in")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    archive = work / f"site-{args.per_class}" / "photos.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    if not archive.exists():
        start = time.perf_counter()
        make_archive(args.photos, args.per_class, archive)
        print(f"archive: {archive.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - start:.0f} s")
    sha256 = file_sha256(archive)

    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    for name in COPIED:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, project / name)
    (project / "weights" / "pretrained.weights.h5").symlink_to(args.weights.resolve())
    set_params(project, {
        "download": {"url": f"{serve(archive.parent)}/photos.zip", "sha256": sha256},
        "split": {"train": "rest", "validation": args.holdout, "test": args.holdout},
    })
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
                "-c", "commit.gpgsign=false"]
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"], ["git", "add", "-A"],
                    ["git", *identity, "commit", "-q", "-m", "project under test"]):  # DVCLive wants a commit
        subprocess.run(command, cwd=project, check=True)

    rows, accuracy = [], {}
    pretrained = {"name": "mobilenet_v2", "weights": "weights/pretrained.weights.h5", "input_size": 160}
    runs = {"mobilenet_v2": ("MobileNetV2@160", pretrained),
            "vgg16": ("VGG16@150", {"name": "vgg16", "weights": None, "input_size": 150})}
    for index, (conv_base, settings) in enumerate(runs[name] for name in args.conv_bases):
        stages = CONV_STAGES if index else MAIN_STAGES + CONV_STAGES
        set_params(project, {"conv_base": settings})
        if index:
            subprocess.run([sys.executable, "-m", "dvc", "repro", "-s", "check"], cwd=project, check=True,
                           capture_output=True)
        for stage in stages:
            seconds, mib = run_stage(project, stage)
            rows.append((conv_base, stage, seconds, mib))
            print(f"{conv_base:16} {stage:24} {seconds:8.1f} s {mib:8.0f} MiB", flush=True)
        accuracy[conv_base] = json.loads((project / "metrics.json").read_text())["test"]["accuracy"]
    report = json.loads((project / "data/split/report.json").read_text())
    print(f"\nusable: {report['usable']}, skipped: {report['skipped']}")
    print(f"test accuracy: {accuracy} (VGG16's weights are random)")
    print("\n| conv base | stage | wall time | peak RSS |\n| --- | --- | --- | --- |")
    for conv_base, stage, seconds, mib in rows:
        print(f"| {conv_base} | {stage} | {seconds:.0f} s | {mib:,.0f} MiB |")
    for conv_base in dict.fromkeys(row[0] for row in rows):
        times = {stage: seconds for base, stage, seconds, _ in rows if base == conv_base}
        added = sum(times[stage] for stage in EXPLAINING)
        print(f"{conv_base}: {' + '.join(EXPLAINING)} {added:.1f} s of {sum(times.values()):.1f} s in all "
              f"({added / (sum(times.values()) - added):.1%} added to the rest)")


if __name__ == "__main__":
    main()
