"""Growing data: what each `dvc repro` recomputes as photos are added and parameters change, for an
earlier commit of this repository and for the working tree, side by side in one run.

    python -m bench.growth PHOTOS [--per-class 1950] [--more 50] [--before REV] [--work DIR]
        [--name vgg16 --size 150 --weights null] [--epochs 5]

PHOTOS is a Kaggle-style folder (cat.N.jpg, dog.N.jpg): the 4000 shared photos. The first
--per-class photos of each class (by number; with --expand, mirrored and cropped variants first
make up the count, as bench/pipeline.py does) go into a folder of class sub-folders, the project's
split.raw_dir (train: rest, --holdout validation and test photos per class). For each version of
the code, in a fresh git + DVC project with an empty feature store of its own:
  1. first `dvc repro`;
  2. --more photos per class added, `dvc repro`;
  3. a new split.seed, `dvc repro`;
  4. another conv base (conv_base.input_size 64, cheap), `dvc repro`;
  5. another split.seed, `dvc repro`;
  6. back to the first conv base, `dvc repro`: a split it has not run with, so DVC's run cache
     restores nothing, but every photo has been through this conv base before.
Each extract stage's wall time is read from the time its "Running stage" line appears until the
next stage's does, so both versions are timed alike. Test photos kept: of the previous step's test
subset, how many are still test photos.
"""

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.pipeline import set_params, variant

REPO = Path(__file__).resolve().parents[1]
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]


def write_photo(source, index, destination):
    """One photo of the class folders: the source as it is (index 0) or one of its variants."""
    destination.write_bytes(source.read_bytes() if index == 0 else variant(source, index))


def make_folders(photos, per_class, more, expand, out):
    """out/first/<class>/ with `per_class` photos each; out/more/<class>/ with `more` further ones."""
    jobs = []
    for kind in ("cat", "dog"):
        sources = sorted(Path(photos).glob(f"{kind}.*.jpg"), key=lambda path: int(path.name.split(".")[1]))
        count = per_class + more
        if count > len(sources) and not expand:
            sys.exit(f"{photos} has {len(sources)} {kind} photos, fewer than {count}: use --expand")
        for number in range(count):
            folder = out / ("first" if number < per_class else "more") / kind
            folder.mkdir(parents=True, exist_ok=True)
            jobs.append((sources[number % len(sources)], number // len(sources), folder / f"{number}.jpg"))
    with ProcessPoolExecutor() as pool:
        list(pool.map(write_photo, *zip(*jobs, strict=True), chunksize=64))


def code_of(version, destination):
    """The project's files at git revision `version`, or the working tree's for None."""
    destination.mkdir(parents=True)
    if version is None:
        names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                               capture_output=True, text=True).stdout.split()
        for name in names:
            if (REPO / name).is_file():
                (destination / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, destination / name)
    else:
        archive = subprocess.run(["git", "archive", version], cwd=REPO, check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(destination, filter="data")


def repro(project, env):
    """`dvc repro`, its output read as it comes: (wall seconds, {stage: seconds}, {stage: output})."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    times, outputs, stage, since = {}, {}, None, start
    for line in process.stdout:
        if match := re.match(r"Running stage '([^']+)'", line):
            now = time.perf_counter()
            if stage:
                times[stage] = now - since
            stage, since = match.group(1), now
            outputs[stage] = ""
        elif stage:
            outputs[stage] += line
    process.wait()
    end = time.perf_counter()
    if stage:
        times[stage] = end - since
    if process.returncode:
        sys.exit(f"dvc repro failed in {project}:\n" + "".join(outputs.values())[-4000:])
    return end - start, times, outputs


def computed(output):
    """How many photos an extract stage's output says it ran through the conv base."""
    if match := re.search(r": computed (\d+), took", output):  # with the feature store
        return int(match.group(1))
    match = re.search(r": (\d+) images through", output)  # before: every photo of the subset
    return int(match.group(1)) if match else 0


def test_photos(project):
    test = project / "data/split/test"
    return {path.relative_to(test) for path in test.glob("*/*")}


def run_version(label, version, args, folders, work):
    """Every step for one version of the code: a table row each."""
    project = work / label
    code_of(version, project)
    weights = None if args.weights == "null" else args.weights
    if weights not in (None, "imagenet"):  # a local file, linked into the project's weights/
        (project / "weights" / Path(weights).name).symlink_to(Path(weights).resolve())
        weights = f"weights/{Path(weights).name}"
    set_params(project, {
        "split": {"raw_dir": str(folders / "photos"), "train": "rest", "validation": args.holdout,
                  "test": args.holdout},
        "conv_base": {"name": args.name, "weights": weights, "input_size": args.size},
        "train": {"epochs": args.epochs},
    })
    env = dict(os.environ, FEATURE_STORE=str(work / f"store-{label}"), TF_CPP_MIN_LOG_LEVEL="2",
               DVC_NO_ANALYTICS="1")
    # The repository's own .dvc/ (its cache link type) comes with the code: no `dvc init`.
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", *IDENTITY, "commit", "-q", "-m", "project under test"]):  # DVCLive wants one
        subprocess.run(command, cwd=project, check=True, env=env)

    def add_photos():
        for path in (folders / "more").glob("*/*"):
            os.link(path, folders / "photos" / path.parent.name / path.name)

    steps = [("first `dvc repro`", lambda: None),
             (f"+{args.more} photos per class", add_photos),
             ("new `split.seed`", lambda: set_params(project, {"split": {"seed": 43}})),
             ("another conv base (input_size 64)",
              lambda: set_params(project, {"conv_base": {"input_size": 64}})),
             ("another `split.seed`", lambda: set_params(project, {"split": {"seed": 44}})),
             ("back to the first conv base",  # with this seed, a first for it: no run-cache hit
              lambda: set_params(project, {"conv_base": {"input_size": args.size}}))]
    rows, previous_test = [], None
    for step, change in steps:
        change()
        wall, times, outputs = repro(project, env)
        extracts = [stage for stage in times if stage.startswith("extract@")]
        now_test = test_photos(project)
        kept = f"{len(previous_test & now_test)} of {len(previous_test)}" if previous_test else "-"
        previous_test = now_test
        rows.append((step, label, wall, sum(times[stage] for stage in extracts),
                     sum(computed(outputs[stage]) for stage in extracts), kept, len(times)))
        print(f"{label:7} {step:36} {wall:7.1f} s  extract {rows[-1][3]:6.1f} s  computed "
              f"{rows[-1][4]:6}  test kept {kept}  stages run {len(times)}", flush=True)
    return rows


def second_clone_agrees(project, work):
    """Whether a clone of the project's last commit, its photos as they are now and an empty feature
    store give the same metrics.json as the project."""
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", *IDENTITY, "commit", "-q", "-m", "grown"], cwd=project, check=True)
    clone = work / f"{project.name}-clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    for link in (project / "weights").glob("*.h5"):
        (clone / "weights" / link.name).symlink_to(link.resolve())
    env = dict(os.environ, FEATURE_STORE=str(work / f"store-{project.name}-clone"), TF_CPP_MIN_LOG_LEVEL="2",
               DVC_NO_ANALYTICS="1")
    repro(clone, env)
    return (clone / "metrics.json").read_bytes() == (project / "metrics.json").read_bytes()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--per-class", type=int, default=1950)
    parser.add_argument("--more", type=int, default=50, help="photos per class added in step 2")
    parser.add_argument("--holdout", type=int, default=500, help="validation and test photos per class")
    parser.add_argument("--expand", action="store_true", help="make variants when PHOTOS has too few")
    parser.add_argument("--before", default="44a26cb", help="the earlier commit (issue 36's); none: skip")
    parser.add_argument("--no-clone", action="store_true", help="skip the second clone's run")
    parser.add_argument("--name", default="vgg16")
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--weights", default="null", help="null, imagenet, or a weights file")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-growth-"))
    versions = []
    labelled = [("before", args.before)] if args.before != "none" else []
    for label, version in [*labelled, ("after", None)]:
        folders = work / f"photos-{label}"
        shutil.rmtree(folders, ignore_errors=True)
        make_folders(args.photos, args.per_class, args.more, args.expand, folders)
        (folders / "first").rename(folders / "photos")
        versions.append(run_version(label, version, args, folders, work))
    agrees = None if args.no_clone else second_clone_agrees(work / "after", work)
    print(f"\n{args.name}@{args.size}, weights {args.weights}, {args.per_class} then "
          f"{args.per_class + args.more} photos per class, {args.epochs} epochs")
    print("| step | code | `dvc repro` | extract stages | photos computed | test photos kept | stages run |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for step, label, wall, extract, count, kept, stages in (row for pair in zip(*versions, strict=True)
                                                             for row in pair):
        print(f"| {step} | {label} | {wall:.0f} s | {extract:.1f} s | {count} | {kept} | {stages} |")
    if agrees is not None:
        print(f"\na second clone of 'after', with an empty feature store, wrote the same metrics.json: "
              f"{agrees}")


if __name__ == "__main__":
    main()
