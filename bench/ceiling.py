"""The extract stage against OpenVINO's own ceiling on the same int8 model, side by side in one run.

    python -m bench.ceiling PHOTOS [--weights WEIGHTS.h5] [--before REV] [--photos 1000] [--seconds 10]
                            [--repeats 5] [--conv-bases vgg16 mobilenet_v2] [--engine openvino]
                            [--precision int8]

PHOTOS is a Kaggle-style folder (cat.N.jpg, dog.N.jpg): the 4000 shared photos. For each conv base
(VGG16 at 150 with random weights; with --weights, the pretrained MobileNetV2 at 160) and each
version of the code (--before REV, then the working tree), in a project of its own:
  1. data/split/train holds --photos photos (half per class), validation and test 20 each; the
     quantize stage writes the int8 conv base (extract.engine: openvino, extract.precision: int8);
  2. `python -m stages.extract train`, whole, with a new feature store, on the first 100 photos
     and then on all of them: the stage's marginal rate is (photos - 100) / (difference of the
     median times), decoding, the store and the .npy file included;
  3. `benchmark_app -hint throughput -b BATCH` (OpenVINO's, from its wheel) on the model the quantize
     stage wrote: the engine's own rate, inference only, on random input;
  4. decoding alone: the stage's tf.data pipeline (read, decode, resize, preprocess_input) over the
     same photos with no model, on every core.
Steps 2-4 run --repeats rounds, each round every project in turn (the order reversed every other
round), so that the medians come from the same stretches of time: this machine's speed drifts by a
third over minutes. Every timed step starts after `sync`, with no earlier step's writes pending.
Prints each median rate and the ratio of the stage's to benchmark_app's; and, steadier, the stage's
marginal CPU time a photo against benchmark_app's (its cores' time over its rate). With another
--engine or --precision, no model is quantized and benchmark_app does not run: the stage of two
versions side by side. Every process inherits the environment, so `ONEDNN_MAX_CPU_ISA=AVX2 python
-m bench.ceiling ...` holds oneDNN (and OpenVINO's convolutions, not its own kernels) to AVX2, as on
a CPU without AMX. Decoding and inference share the cores, so the stage can reach at most
1 / (1 / decoding + 1 / benchmark_app) without cheaper decoding: printed as "both". The machine
should be idle.
"""

import argparse
import json
import os
import re
import resource
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
    """(wall, CPU) seconds of one stage run in a fresh process, with an empty feature store at `store`.

    `store` is a new folder each run, all of them deleted at the end: deleting thousands of entries
    just before a run made ext4 slower to create the run's own (it skips inodes freed in the last
    minutes: `recently_deleted` in a profile), a cost of the bench's, not of the stage's.
    """
    if store.exists():
        raise ValueError(f"{store} exists: each run takes a new feature store")
    env = dict(os.environ, FEATURE_STORE=str(store), TF_CPP_MIN_LOG_LEVEL="2")
    settled()
    used, start = children_cpu_seconds(), time.perf_counter()
    result = subprocess.run([sys.executable, "-m", *command], cwd=project, env=env, capture_output=True,
                            text=True)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - start, children_cpu_seconds() - used


def settled():
    """Write every dirty page to disk now, before a timed run: otherwise the kernel writes an earlier
    run's files (its store, its .npy) 30 s after them (vm.dirty_expire_centisecs), in the middle of
    whichever run comes next, and charges that run's two cores for the last one's writes."""
    os.sync()


def children_cpu_seconds():
    """CPU seconds (user and system) of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def benchmark_app(model, batch, seconds):
    """benchmark_app's THROUGHPUT figure (images/s) for `model` at `batch`."""
    settled()
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
    settled()
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if result.returncode:
        sys.exit(f"decoding failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.split()[-1])


class Subject:
    """One version of the code with one conv base, in a project of its own: its int8 conv base written
    by the quantize stage, its train photos split into the warm-up run's and the rest."""

    def __init__(self, version, conv_base, args, work):
        self.label = f"{conv_base['name']}@{conv_base['input_size']}"
        self.version, self.work, self.args = version or "working tree", work, args
        self.project = project = work / f"{version or 'now'}-{conv_base['name']}"
        code_of(version, project)
        if conv_base["weights"]:
            (project / "weights" / "pretrained.weights.h5").symlink_to(Path(args.weights).resolve())
            conv_base = dict(conv_base, weights="weights/pretrained.weights.h5")
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["conv_base"].update(conv_base)
        params["extract"].update(engine=args.engine, precision=args.precision)
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        self.batch = params["extract"]["batch_size"]
        make_split(project, args.photos, args.photos_count)
        self.int8 = args.precision == "int8"
        if self.int8:
            stage_seconds(project, ["stages.quantize"], work / f"store-quantize-{project.name}")
        self.model = project / "models" / "conv_base_int8" / "conv_base.xml"
        self.train, self.aside = project / "data" / "split" / "train", project / "aside"
        self.warm_up = {kind: sorted(self.train.joinpath(kind).iterdir())[WARM_UP // 2:]
                        for kind in ("cat", "dog")}
        self.few, self.many, self.ceilings, self.decodings = [], [], [], []

    def set_aside(self, aside):
        """Leave only the warm-up run's photos in data/split/train (aside), or all of them."""
        for kind, files in self.warm_up.items():
            (self.aside / kind).mkdir(parents=True, exist_ok=True)
            for file in files:
                if aside:
                    file.rename(self.aside / kind / file.name)
                else:
                    (self.aside / kind / file.name).rename(file)

    def run_once(self, number):
        """The stage on the warm-up photos and on all, benchmark_app and the decoding, once each."""
        extract, store = ["stages.extract", "train"], f"store-{self.project.name}-{number}"
        self.set_aside(True)
        self.few.append(stage_seconds(self.project, extract, self.work / f"{store}-few"))
        self.set_aside(False)
        self.many.append(stage_seconds(self.project, extract, self.work / f"{store}-all"))
        if self.int8:  # benchmark_app runs the model the quantize stage wrote
            self.ceilings.append(benchmark_app(self.model, self.batch, self.args.seconds))
        self.decodings.append(decoding_rate(self.project))

    def figures(self):
        """(the stage's marginal images/s, benchmark_app's, decoding's, the stage's marginal ms of CPU
        a photo), from the medians."""
        photos = self.args.photos_count - WARM_UP
        few_wall, few_cpu = map(median, zip(*self.few, strict=True))
        many_wall, many_cpu = map(median, zip(*self.many, strict=True))
        return (photos / (many_wall - few_wall), median(self.ceilings) if self.ceilings else None,
                median(self.decodings), (many_cpu - few_cpu) / photos * 1000)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--weights", type=Path, help="the pretrained MobileNetV2 weights file")
    parser.add_argument("--before", help="a git revision to measure too, first")
    parser.add_argument("--photos", dest="photos_count", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10, help="benchmark_app's duration, each repeat")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of every measurement (medians)")
    parser.add_argument("--conv-bases", nargs="+", choices=["vgg16", "mobilenet_v2"],
                        default=["vgg16", "mobilenet_v2"], help="mobilenet_v2 needs --weights")
    parser.add_argument("--engine", default="openvino", help="extract.engine (benchmark_app: openvino int8)")
    parser.add_argument("--precision", default="int8", help="extract.precision")
    args = parser.parse_args(argv)
    known = {"vgg16": {"name": "vgg16", "weights": None, "input_size": 150},
             "mobilenet_v2": {"name": "mobilenet_v2", "weights": True, "input_size": 160}}
    bases = [known[name] for name in args.conv_bases if name == "vgg16" or args.weights]
    with tempfile.TemporaryDirectory(prefix="bench-ceiling-") as scratch:
        subjects = [Subject(version, conv_base, args, Path(scratch)) for conv_base in bases
                    for version in ([args.before] if args.before else []) + [None]]
        # Round after round, every subject in turn: the machine's speed drifts over minutes, and
        # each median then comes from the same stretches of time as the others. The order turns
        # round each round, so that no subject always follows the same one.
        for number in range(args.repeats):
            for subject in subjects if number % 2 == 0 else reversed(subjects):
                subject.run_once(number)
            print(f"round {number + 1} of {args.repeats} done", flush=True)
    print()
    for subject in subjects:
        print(f"{subject.label}, {subject.version}: the stage's seconds (wall/CPU) at {WARM_UP} photos",
              *(f"{wall:.2f}/{cpu:.2f}" for wall, cpu in subject.few), f"and at {args.photos_count}",
              *(f"{wall:.2f}/{cpu:.2f}" for wall, cpu in subject.many), "; benchmark_app",
              *(f"{rate:.0f}" for rate in subject.ceilings), "; decoding",
              *(f"{rate:.0f}" for rate in subject.decodings))
    # CPU time a photo drifts less than wall time here: benchmark_app's is its cores' over its rate.
    cores = os.cpu_count()
    print("\n| conv base | code | extract stage (marginal) | benchmark_app THROUGHPUT | ratio "
          "| decoding alone | both | ms of CPU a photo: stage, benchmark_app | ratio by CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for subject in subjects:
        rate, ceiling, decoding, cpu_ms = subject.figures()
        if ceiling is None:  # no int8 model: the stage and the decoding alone
            print(f"| {subject.label} | {subject.version} | {rate:.1f} | | | {decoding:.1f} | | "
                  f"{cpu_ms:.2f} | |")
            continue
        engine_ms = cores / ceiling * 1000
        print(f"| {subject.label} | {subject.version} | {rate:.1f} | {ceiling:.1f} | {rate / ceiling:.0%} | "
              f"{decoding:.1f} | {1 / (1 / decoding + 1 / ceiling):.1f} | {cpu_ms:.2f}, {engine_ms:.2f} | "
              f"{engine_ms / cpu_ms:.0%} |")


if __name__ == "__main__":
    main()
