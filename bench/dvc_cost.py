"""DVC's own cost with a large split: `dvc status`, a no-op `dvc checkout split` and `dvc exp run
--temp split`, for an earlier commit and the working tree, with a folder of photos and with the
download, side by side in one run.

    python -m bench.dvc_cost PHOTOS [--per-class 12500] [--holdout 1000] [--before REV] [--work DIR]

From the Kaggle-style folder PHOTOS (the 4000 shared photos), --per-class photos per class (with
mirrored and cropped variants, as bench/pipeline.py makes them) in a folder of class sub-folders
and in a PetImages-layout zip served from 127.0.0.1. For each version and layout, a fresh git + DVC
project (split.train: rest, --holdout validation and test photos per class, conv_base.weights:
null) runs `dvc repro split` and commits; then each command runs three times, timed from outside.
Only split and what precedes it have run, so `dvc status` lists the later stages as changed, and
the whole-pipeline `dvc checkout` would fail: hence `dvc checkout split`.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.growth import IDENTITY, code_of, make_folders
from bench.pipeline import make_archive, serve, set_params

COMMANDS = [["status"], ["checkout", "split"], ["exp", "run", "--temp", "split"]]


def timed(project, args, env):
    """Seconds that `dvc ARGS` takes; exits with its output if it fails."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True,
                            text=True)
    if result.returncode:
        sys.exit(f"dvc {' '.join(args)} failed in {project}:\n{result.stdout[-2000:]}\n"
                 f"{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path)
    parser.add_argument("--per-class", type=int, default=12500)
    parser.add_argument("--holdout", type=int, default=1000, help="validation and test photos per class")
    parser.add_argument("--before", default="44a26cb", help="the earlier commit (issue 36's)")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-dvc-cost-"))
    folder, archive = work / "photos", work / "site" / "photos.zip"
    if not folder.exists():
        make_folders(args.photos, args.per_class, 0, True, work)
        (work / "first").rename(folder)
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        make_archive(args.photos, args.per_class, archive)
    url = f"{serve(archive.parent)}/photos.zip"
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    env = dict(os.environ, no_proxy="127.0.0.1", NO_PROXY="127.0.0.1", TF_CPP_MIN_LOG_LEVEL="2",
               DVC_NO_ANALYTICS="1", FEATURE_STORE=str(work / "store"))
    rows = []
    for layout in ("folder", "download"):
        for label, version in (("before", args.before), ("after", None)):
            project = work / f"{label}-{layout}"
            code_of(version, project)
            raw = {"raw_dir": str(folder)} if layout == "folder" else {"raw_dir": "data/download/photos.zip"}
            set_params(project, {"download": {"url": url, "sha256": sha256},
                                 "split": {**raw, "train": "rest", "validation": args.holdout,
                                           "test": args.holdout},
                                 "conv_base": {"weights": None}})
            for command in (["git", "init", "-q"], ["git", "add", "-A"],
                            ["git", *IDENTITY, "commit", "-q", "-m", "project under test"]):
                subprocess.run(command, cwd=project, check=True)
            split_seconds = timed(project, ["repro", "split"], env)
            for command in (["git", "add", "-A"], ["git", *IDENTITY, "commit", "-q", "-m", "split"]):
                subprocess.run(command, cwd=project, check=True)
            files = sum(1 for _ in (project / "data/split").rglob("*") if _.is_file())
            print(f"{layout} {label}: dvc repro split {split_seconds:.0f} s, {files:,} files in data/split",
                  flush=True)
            for command in COMMANDS:
                seconds = [timed(project, command, env) for _ in range(3)]
                rows.append((layout, label, " ".join(command), seconds))
                print(f"    dvc {' '.join(command):24} " + ", ".join(f"{s:.2f}" for s in seconds), flush=True)
    print("\n| layout | command | before | after |\n| --- | --- | --- | --- |")
    for index in range(0, len(rows), 2 * len(COMMANDS)):
        for offset in range(len(COMMANDS)):
            before, after = rows[index + offset], rows[index + len(COMMANDS) + offset]
            print(f"| {before[0]} | `dvc {before[2]}` | {', '.join(f'{s:.1f}' for s in before[3])} s | "
                  f"{', '.join(f'{s:.1f}' for s in after[3])} s |")


if __name__ == "__main__":
    main()
