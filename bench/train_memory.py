"""The train stage's peak memory: features loaded whole as NumPy arrays (before) against batches
streamed from the memory-mapped .npy files (now), and whether both write the same metrics.

    python -m bench.train_memory [--photos 8000] [--shape 5,5,1280] [--epochs 2] [--before 5d723ed]

Writes random but learnable features of `--photos` photos (split as train 80 %, validation and test
10 % each; 5,5,1280 is MobileNetV2 at 160) into a scratch project, then runs `python -m stages.train`
there twice, each in its own process: with the code of commit --before (the last that loaded the
features whole, taken with `git archive`) and with this checkout's. Prints each run's wall time and
peak resident memory (ru_maxrss) and compares the two metrics.json files byte for byte.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]

RUN_TRAIN = ("import resource, runpy, sys, time; start = time.perf_counter(); "
             "runpy.run_module('stages.train', run_name='__main__'); "
             "print('MEASURED', time.perf_counter() - start, "
             "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")


def write_features(project, photos, shape):
    """Random features whose mean says the class, as extract would write them, subset by subset."""
    rng = np.random.default_rng(0)
    counts = {"train": photos * 8 // 10, "validation": photos // 10, "test": photos // 10}
    for subset, count in counts.items():
        out = project / "data/features" / subset
        out.mkdir(parents=True)
        labels = (np.arange(count) % 2).astype(np.float32)
        features = np.lib.format.open_memmap(out / "features.npy", "w+", np.float32, (count, *shape))
        for start in range(0, count, 500):
            block = labels[start:start + 500]
            features[start:start + 500] = (rng.standard_normal((len(block), *shape), dtype=np.float32)
                                           + block.reshape(-1, *[1] * len(shape)) * 0.05)
        features.flush()
        np.save(out / "labels.npy", labels)
        (out / "files.txt").write_text("".join(f"{subset}/{('cats', 'dogs')[int(y)]}/{i}.jpg\n"
                                               for i, y in enumerate(labels)))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=8000)
    parser.add_argument("--shape", default="5,5,1280")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--before", default="5d723ed", help="a commit whose train loaded the features whole")
    args = parser.parse_args(argv)
    shape = tuple(int(n) for n in args.shape.split(","))

    with tempfile.TemporaryDirectory(prefix="bench-train-memory-") as scratch:
        project = Path(scratch)
        counts = write_features(project, args.photos, shape)
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["conv_base"].update(name="mobilenet_v2", weights=None, input_size=160)
        params["train"]["epochs"] = args.epochs
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        size = sum(counts.values()) * np.prod(shape) * 4 / 2**20
        print(f"{counts} photos, features {shape}: {size:,.0f} MiB on disk")
        before = project / "code-before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before, "stages", "dogs_vs_cats"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        metrics = {}
        for name, code in ((f"before ({args.before})", before), ("now: streamed", REPO)):
            env = dict(os.environ, PYTHONPATH=str(code), TF_CPP_MIN_LOG_LEVEL="2")
            result = subprocess.run([sys.executable, "-c", RUN_TRAIN], cwd=project, env=env,
                                    capture_output=True, text=True)
            if result.returncode:
                sys.exit(result.stderr[-3000:])
            line = next(line for line in result.stderr.splitlines() if line.startswith("MEASURED"))
            _, seconds, max_rss = line.split()
            mib = int(max_rss) / (1024 if sys.platform != "darwin" else 2**20)
            metrics[name] = (project / "metrics.json").read_bytes()
            print(f"{name:22} {float(seconds):7.1f} s  peak {mib:8,.0f} MiB  "
                  f"({mib / args.photos * 1000:,.0f} MiB per 1,000 photos)")
            shutil.rmtree(project / "dvclive", ignore_errors=True)
        same = len(set(metrics.values())) == 1
        print(f"metrics.json: {'the same bytes' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
