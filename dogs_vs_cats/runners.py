"""Where extract runs the conv base: in this process, or on Ray (a cluster, or a local Ray instance).

Where the work runs changes no feature, so it is chosen by environment variables, never by
params.yaml: switching changes neither dvc.lock nor what DVC reruns.

    EXTRACT_RUNNER       local (or unset): in this process; ray: on Ray Data, over a pool of actors
    RAY_ADDRESS          Ray's own variable: the cluster to join (`ray start --head` prints it);
                         unset, a local Ray instance starts on this machine for the stage
    EXTRACT_ACTORS       actors in the pool, each holding the conv base once (default 2)
    EXTRACT_ACTOR_CPUS   logical CPUs each actor reserves (default 1; a fraction is allowed)
    EXTRACT_ACTOR_GPUS   GPUs each actor reserves (default 0)

On Ray, each row of the dataset is one batch of extract.batch_size photo paths, in the listed order:
an actor decodes it with the project's own image code (images.image_dataset) and runs the engine
that load_engine builds, so every batch holds the same photos as in this process, and the results
stream back in order (Ray Data's preserve_order), batch by batch, to the stage that writes them.
Workers read the photos by their absolute paths: every node must see the project at the same path
(shared storage). Ray restarts an actor that dies and retries its batch (Ray Data's defaults).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.params import ConvBase, Extract

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

RUNNERS = ("local", "ray")
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": every Ray address is 127.0.0.1
INSTALL_RAY = "pip install -r requirements-ray.txt"
# What Ray's core prints as each of Ray Data's actors starts, which says nothing to the user: Ray
# Data keeps its actors' own constructor arguments in the object store (ray-project/ray#53727).
RAY_NOISE = re.compile(r"\[.*\] core_worker\.cc:\d+: Actor with class name: 'MapWorker.* has constructor "
                       r"arguments in the object store")


class RunnerError(UserError):
    """A bad runner variable, Ray missing, or no cluster at RAY_ADDRESS: one line and the fix."""


@dataclass(frozen=True)
class Runner:
    """Where extract runs, as the environment variables say."""

    name: str = "local"
    address: str | None = None  # RAY_ADDRESS; None: a local Ray instance
    actors: int = 2
    actor_cpus: float = 1.0
    actor_gpus: float = 0.0

    def describe(self) -> str:
        """One line on where the conv base runs."""
        if self.name == "local":
            return "in this process (EXTRACT_RUNNER=ray runs it on Ray)"
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        gpus = f", {self.actor_gpus:g} GPU" if self.actor_gpus else ""
        return f"on Ray: {self.actors} actors ({self.actor_cpus:g} CPU{gpus} each) on {where}"


def runner_from_environment(environ: Mapping[str, str] = os.environ) -> Runner:
    """The Runner that EXTRACT_RUNNER, RAY_ADDRESS and EXTRACT_ACTOR* describe, checked.

    Raises:
        RunnerError: a variable with a value it cannot take.
    """
    name = environ.get("EXTRACT_RUNNER", "").strip().lower() or "local"
    if name not in RUNNERS:
        raise RunnerError(f"error: EXTRACT_RUNNER={environ['EXTRACT_RUNNER']!r} is not a runner. "
                          "Fix: unset it (or local) to extract in this process, or ray")
    if name == "local":
        return Runner()
    return Runner(name, environ.get("RAY_ADDRESS") or None,
                  int(_number(environ, "EXTRACT_ACTORS", 2, whole=True)),
                  _number(environ, "EXTRACT_ACTOR_CPUS", 1.0),
                  _number(environ, "EXTRACT_ACTOR_GPUS", 0.0, zero=True))


def _number(environ, variable, default, whole=False, zero=False):
    text = environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or value < 0 or (value == 0 and not zero):
        kind = "a whole number above 0" if whole else "a number of 0 or more" if zero else "a number above 0"
        raise RunnerError(f"error: {variable}={text!r} must be {kind}. Fix: set it to e.g. {default}, "
                          "or unset it")
    return value


def local_feature_batches(conv: ConvBase, extract: Extract, files: list) -> tuple:
    """The features of `files`, batch by batch, computed in this process.

    Args:
        conv: the conv_base section; extract: the extract section (engine, precision, batch size).
        files: the photos, in the order of the rows to write.

    Returns:
        (an iterator of feature batches, the shape of one photo's features).
    """
    from dogs_vs_cats.engines import load_engine, run_batches
    from dogs_vs_cats.images import image_batches, image_dataset

    run, preprocess, shape, note = load_engine(conv, extract.engine, extract.precision,
                                               batch_size=extract.batch_size)
    if note:
        print(f"note: {note}")
    dataset = image_dataset(files, conv.input_size, extract.batch_size, preprocess=preprocess)
    return run_batches(run, image_batches(dataset, files, extract.batch_size)), shape


def conv_base_actor(conv: ConvBase, extract: Extract, quantized_model: str) -> type:
    """A Ray actor class holding this conv base: built once per actor, then called with one batch of
    photo paths at a time. The settings travel in the class, not as constructor arguments, which
    Ray would keep in its object store and need again to restart an actor that died."""

    class ConvBaseActor:
        def __init__(self):
            from dogs_vs_cats.engines import load_engine

            self.size = conv.input_size
            # One batch per call: OpenVINO compiled for latency, every core of the actor on it.
            self.run, self.preprocess, self.shape, _ = load_engine(
                conv, extract.engine, extract.precision, quantized_model, batch_size=extract.batch_size,
                one_batch_at_a_time=True)

        def __call__(self, rows: dict) -> dict:
            """rows["paths"]: one row, the paths of one batch; returns a row for each photo: its
            features, the node that computed them, and the photo that does not decode, if one does
            not ("" else), with why (the stage raises UnreadablePhoto for it, as in its own process)."""
            import ray

            from dogs_vs_cats.images import UnreadablePhoto, image_batches, image_dataset

            (paths,) = rows["paths"]
            paths = [str(path) for path in paths]
            dataset = image_dataset(paths, self.size, len(paths), preprocess=self.preprocess)
            unusable = ("", "")
            try:
                (images,) = image_batches(dataset, paths, len(paths))
                features = self.run(images)
            except UnreadablePhoto as error:  # not raised: Ray would wrap it beyond recognition
                unusable = (error.path, error.problem)
                features = np.zeros((len(paths), *self.shape), np.float32)
            node = ray.get_runtime_context().get_node_id()
            return {"features": features, "node": [node] * len(paths),
                    "unusable": [unusable[0]] * len(paths), "why": [unusable[1]] * len(paths)}

    return ConvBaseActor


def ray_feature_batches(runner: Runner, conv: ConvBase, extract: Extract, files: list,
                        quantized_model: Path) -> tuple:
    """The features of `files`, batch by batch, computed on Ray as `runner` says.

    The batches are those of local_feature_batches, photo for photo, streamed back in order.

    Returns:
        (an iterator of feature batches, the shape of one photo's features).
    """
    from dogs_vs_cats.conv_base import feature_shape
    from dogs_vs_cats.core.runtime import native_stderr_filtered
    from dogs_vs_cats.images import UnreadablePhoto

    ray = connect(runner)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # not its plan and timings at every run
    # Nor the warning that its progress bars are off (the stage prints its own). The logger's name
    # is the module's: if Ray moves it, the warning shows again, and nothing else changes.
    logging.getLogger("ray.data._internal.progress").addFilter(
        lambda record: "Progress bars disabled" not in record.getMessage())
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the rows of features.npy are in files' order
    context.enable_progress_bars = False  # the stage prints its own progress
    # Absolute paths: an actor's working folder is not the project's.
    if conv.local_weights is not None:
        conv = dataclasses.replace(conv, weights=str(Path(conv.local_weights).resolve()))
    batch_size = extract.batch_size
    rows = [{"paths": [str(Path(f).resolve()) for f in files[start:start + batch_size]]}
            for start in range(0, len(files), batch_size)]
    actor = conv_base_actor(conv, extract, str(Path(quantized_model).resolve()))
    dataset = ray.data.from_items(rows).map_batches(
        actor, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=runner.actors),
        num_cpus=runner.actor_cpus, num_gpus=runner.actor_gpus)
    shape = feature_shape(conv)

    def stream():
        nodes = set()
        batches = iter(dataset.iter_batches(batch_size=None, batch_format="numpy"))
        try:
            with native_stderr_filtered(RAY_NOISE):  # the actors start
                first = next(batches, None)
            for batch in [] if first is None else itertools.chain([first], batches):
                if batch["unusable"][0]:
                    raise UnreadablePhoto(os.path.relpath(batch["unusable"][0]), batch["why"][0])
                nodes.update(batch["node"])
                yield batch["features"]
            print(f"computed on {len(nodes)} Ray node{'s' if len(nodes) != 1 else ''}")
        finally:
            if hasattr(batches, "close"):
                batches.close()  # Ray Data's own end of the iteration, while Ray is still up
            ray.shutdown()

    return stream(), shape


def connect(runner: Runner) -> ModuleType:
    """Import Ray and join RAY_ADDRESS's cluster, or start a local instance: the ray module.

    Raises:
        RunnerError: Ray is not installed, or nothing answers at RAY_ADDRESS.
    """
    if not runner.address:
        # A Ray instance for this stage alone listens on the loopback address only, where no other
        # machine can join it or reach its ports: Ray's switch for single-machine instances, read
        # when Ray is imported.
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
        import ray.data
    except ImportError:
        raise RunnerError(f"error: EXTRACT_RUNNER=ray needs Ray, which is not installed. Fix: {INSTALL_RAY}, "
                          "or unset EXTRACT_RUNNER to extract in this process") from None
    if runner.address and runner.address != "auto":
        check_reachable(runner.address)
    try:
        # "local": a new instance for this stage, never one that `ray start` left running here.
        ray.init(address=runner.address or "local", include_dashboard=False, logging_level=logging.ERROR)
    except ConnectionError as error:
        raise no_cluster(runner.address, error) from None
    return ray


def no_cluster(address: str | None, reason: BaseException | str) -> RunnerError:
    """The RunnerError for RAY_ADDRESS where no Ray cluster answers, and why."""
    return RunnerError(f"error: no Ray cluster at RAY_ADDRESS={address} ({reason}). Fix: start one "
                       "(ray start --head) and set RAY_ADDRESS to the address it prints, or unset "
                       "RAY_ADDRESS to start a local Ray instance")


def check_reachable(address: str, seconds: float = 5.0) -> None:
    """Raise a RunnerError unless something listens at `address` (host:port, or ray://host:port)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=seconds):
            return
    except (OSError, ValueError) as error:
        reason = error.strerror or str(error) if isinstance(error, OSError) else "not host:port"
    raise no_cluster(address, reason)
