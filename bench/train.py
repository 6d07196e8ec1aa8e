"""Benchmark: the `train` stage's step against its memory-traffic floor, side by side.

    python -m bench.train [--features 5,5,1280] [--epochs 5]

A step of the head is memory-bound: the Dense(units) kernel (features x units float32, 32.8 MB
for MobileNetV2's 32 000 features) is read by the forward pass, its gradient written, then
RMSprop reads gradient, velocity and kernel and writes velocity and kernel: about 7 passes over
the kernel. The floor printed is those bytes at the copy bandwidth this machine measures here.

Runs, each in its own process, on random features of the given shape (2000 train, 1000
validation rows, batch 20, as the recipe):
  (a) the head as compiled before: no XLA, TensorFlow op determinism on, batch 20 everywhere;
  (b) the whole step compiled by XLA (jit_compile=True), as the stage did until the update alone was;
  (c) the head as dogs_vs_cats/model.py compiles and fits it (TensorFlow step, RMSprop's update fused by
      XLA, validation in batches of 500), seeded as the train stage seeds it; run twice.
Prints ms per training step (epochs after the first, validation included), and whether the two
runs of (c) give the same weights.
"""

import argparse
import hashlib
import json
import subprocess
import sys
import time

import numpy as np

TRAIN_ROWS, VALIDATION_ROWS, BATCH, UNITS = 2000, 1000, 20, 256


def copy_bandwidth(nbytes):
    """Bytes per second of a plain copy between two arrays of `nbytes` (best of 20)."""
    source, target = np.ones(nbytes // 4, np.float32), np.empty(nbytes // 4, np.float32)
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best  # one read and one write


def child(run, shape, epochs):
    """Train the head on random features; print ms per step and a hash of the weights as JSON."""
    from dogs_vs_cats.core.runtime import keras, seed_everything, tf
    from dogs_vs_cats.features import batches
    from dogs_vs_cats.model import EVALUATION_BATCH_SIZE, build_head, fit_head

    seed_everything(42)
    if run == "before":
        tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (TRAIN_ROWS + VALIDATION_ROWS, *shape)).astype(np.float32)
    y = (rng.random(len(x)) > 0.5).astype(np.float32)
    model = build_head(shape, UNITS, 0.5, 2e-5, ["cat", "dog"])
    if run in ("before", "xla"):
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=2e-5),
                      loss="binary_crossentropy", metrics=["accuracy"], jit_compile=run == "xla")
    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    if run == "before":
        model.fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS], validation_data=(x[TRAIN_ROWS:], y[TRAIN_ROWS:]),
                  epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[EpochTimer()])
    else:
        fit_head(model, batches(x[:TRAIN_ROWS], y[:TRAIN_ROWS], BATCH, shuffle_seed=42),
                 batches(x[TRAIN_ROWS:], y[TRAIN_ROWS:], EVALUATION_BATCH_SIZE), epochs,
                 callbacks=[EpochTimer()])
    steps = TRAIN_ROWS // BATCH
    weights = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()[:12]
    print(json.dumps({"ms_per_step": 1000 * float(np.median(times[1:])) / steps, "weights": weights}))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", default="5,5,1280",
                        help="feature shape (default 5,5,1280: MobileNetV2 at 160; VGG16 at 150: 4,4,512)")
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs per run, the first not timed (default 5)")
    parser.add_argument("--run", choices=["before", "xla", "stage"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.features.split(","))
    if args.run:
        return child(args.run, shape, args.epochs)

    kernel_bytes = int(np.prod(shape)) * UNITS * 4
    floor_ms = 1000 * 7 * kernel_bytes / copy_bandwidth(kernel_bytes)
    results = {}
    for label, run in (("(a) before: no XLA, op determinism", "before"),
                       ("(b) XLA, the whole step", "xla"),
                       ("(c) stage: XLA-fused RMSprop update", "stage"), ("(c) stage, again", "stage")):
        command = [sys.executable, "-m", __spec__.name, "--features", args.features,
                   "--epochs", str(args.epochs), "--run", run]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[label] = json.loads(output.strip().splitlines()[-1])

    print(f"head on {shape} features: Dense({UNITS}) kernel {kernel_bytes / 1e6:.1f} MB, "
          f"batch {BATCH}, {TRAIN_ROWS // BATCH} steps per epoch")
    print(f"{'':<40}{'ms/step':>9}  weights")
    for label, result in results.items():
        print(f"{label:<40}{result['ms_per_step']:>9.1f}  {result['weights']}")
    print(f"{'memory-traffic floor (7 kernel passes)':<40}{floor_ms:>9.1f}")
    epochs_seconds = 30 * TRAIN_ROWS // BATCH * results["(c) stage, again"]["ms_per_step"] / 1000
    print(f"{'30 epochs of (c), estimated':<40}{epochs_seconds:>8.0f} s")


if __name__ == "__main__":
    main()
