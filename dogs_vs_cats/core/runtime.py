"""TensorFlow, imported without its start-up chatter and made deterministic.

Import this module before `keras` or `tensorflow`: on some CPUs TensorFlow's C++ libraries print
`All log messages before absl::InitializeLog() ...` and `oneDNN custom operations are on` to
stderr while they load, whatever TF_CPP_MIN_LOG_LEVEL says. Those lines are dropped; warnings and
errors printed during the import are passed on. oneDNN itself stays on: it is much of the CPU speed.
"""

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# TensorFlow's own C++ logging (info and warnings, e.g. the CPU-instructions notice); errors stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What the libraries print while they load: absl's banner and its INFO lines (I0000 00:00:...).
START_UP_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)|I\d{4} ")


@contextlib.contextmanager
def native_stderr_filtered(noise: re.Pattern[str] = START_UP_NOISE) -> Iterator[None]:
    """Capture what C++ code writes to file descriptor 2 in the block; pass on lines not `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not noise.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


with native_stderr_filtered():
    import keras  # noqa: E402,F401  (loads TensorFlow, its backend)
    import tensorflow as tf  # noqa: E402


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow; on a GPU, also make TensorFlow's ops deterministic.

    On the CPU the ops of this project give the same bytes run after run without op determinism
    (the e2e test checks metrics.json after `dvc repro -f`), and op determinism there turns off
    XLA's compiled training step, which is what makes `train` fast (bench/train.py).
    """
    keras.utils.set_random_seed(seed)
    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()
