"""The engines that run the conv base for `extract`: Keras (TensorFlow) or OpenVINO (CPU only).

extract.engine picks the engine and extract.precision its arithmetic (core.params.Extract says
which combinations run). Either way an engine is a function from a batch of preprocessed
images (a tensor or an array) to its features (an array); `run_batches` runs it over a stream of
batches, OpenVINO's with several in flight at once (OpenVINOEngine.map), in their order.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.conv_base import build_conv_base, conv_base_module
from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.layout import QUANTIZED_MODEL
from dogs_vs_cats.core.params import ConvBase
from dogs_vs_cats.core.runtime import tf
from dogs_vs_cats.feature_store import cpu_flags, no_int8_model

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import keras
    import openvino as ov

    Engine = Callable[[tf.Tensor | np.ndarray], np.ndarray]  # a batch of preprocessed images -> features

OPENVINO_HINTS = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}  # int8: f32 between int8 ops


def keras_engine(conv_base: keras.Model) -> Engine:
    """Run the Keras conv base, compiled once as a tf.function."""
    run = tf.function(lambda images: tf.cast(conv_base(images, training=False), tf.float32))
    return lambda images: run(images).numpy()


def keras_note(precision: str) -> str | None:
    """What a CPU without a GPU makes of a Keras precision other than float32, or None."""
    if precision == "float32" or tf.config.list_physical_devices("GPU"):
        return None
    if precision == "float16":
        return "no GPU: TensorFlow runs float16 on this CPU, slowly; float32 or bfloat16 suit a CPU"
    if not cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return "this CPU has no bfloat16 instructions: TensorFlow emulates them, more slowly than float32"
    return None


def openvino_model(conv_base: keras.Model) -> ov.Model:
    """The Keras conv base converted to an OpenVINO model (same weights, float32)."""
    import openvino as ov

    with warnings.catch_warnings():  # Keras warns that the converter calls it on plain tensors
        warnings.simplefilter("ignore", UserWarning)
        return ov.convert_model(conv_base)


class OpenVINOEngine:
    """A conv base compiled by OpenVINO for throughput, for batches of one fixed size: streams that
    share the cores, each running its own inference request.

    Its batch size is static: OpenVINO's kernels for a fixed shape took 15 % less CPU than those for
    a batch of any size (bench/README.md), and give a photo the same bytes whatever that size
    (tests/test_feature_store.py), though not the same bytes as the any-size kernels. A shorter
    batch is padded with rows of zeros, which are dropped after; a longer one runs in parts.

    Called on one batch, it runs it on one request and waits (the Ray actors, the benchmarks);
    `map` keeps every stream busy with the next batches while the caller handles the results, and
    gives the features back in the batches' order.
    """

    def __init__(self, compiled: ov.CompiledModel):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.jobs = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self.batch_size = compiled.input(0).get_partial_shape()[0].get_length()

    def __call__(self, images: tf.Tensor | np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        parts = [images[start:start + self.batch_size] for start in range(0, len(images), self.batch_size)]
        return np.concatenate([self.request.infer(self._padded(part))[0][:len(part)].copy()
                               for part in parts or [images]])

    def _padded(self, images: np.ndarray) -> np.ndarray:
        """`images`, at most batch_size of them, with rows of zeros after them up to batch_size."""
        if len(images) > self.batch_size:
            raise ValueError(f"a batch of {len(images)} images for an engine compiled for {self.batch_size}")
        if len(images) == self.batch_size:
            return images
        padding = np.zeros((self.batch_size - len(images), *images.shape[1:]), images.dtype)
        return np.concatenate([images, padding])

    def map(self, batches: Iterable[tf.Tensor | np.ndarray]) -> Iterator[np.ndarray]:
        """The features of each batch (of at most batch_size images), in order.

        A thread of its own takes the batches and hands them to OpenVINO's requests, up to twice as
        many batches ahead of the caller as there are requests, so that the streams never wait
        while the caller keeps a result (the feature store's files). An error while taking the
        batches (a photo that does not decode) is raised here after the batches before it.
        """
        import openvino as ov

        queue = ov.AsyncInferQueue(self.compiled, self.jobs)
        changed = threading.Condition()
        finished: dict[int, np.ndarray] = {}  # their features by batch number, until their turn comes
        room = threading.Semaphore(2 * self.jobs)  # batches handed over and not yet given back
        fed: list = []  # [batches handed over, the error that stopped the feeding or None], at the end
        stop = threading.Event()

        def keep(request, handed):  # on OpenVINO's thread: the output tensor is reused, so copy it
            number, images = handed  # the batch's number, and its images before the padding
            features = request.get_output_tensor(0).data[:images].copy()
            with changed:
                finished[number] = features
                changed.notify()

        def feed():
            number, error = 0, None
            try:
                for batch in batches:
                    room.acquire()
                    if stop.is_set():
                        return
                    batch = np.asarray(batch)
                    # Copied into the request: OpenVINO reading a NumPy view in place (share_inputs)
                    # read other memory in tests/test_engines.py.
                    queue.start_async(self._padded(batch), (number, len(batch)))  # waits for a free request
                    number += 1
            except BaseException as raised:  # noqa: BLE001 (raised in the caller's thread)
                error = raised
            finally:
                with changed:
                    fed[:] = [number, error]
                    changed.notify()

        queue.set_callback(keep)
        feeder = threading.Thread(target=feed, name="openvino-feeder", daemon=True)
        feeder.start()
        given = 0
        try:
            while True:
                with changed:
                    changed.wait_for(lambda number=given: number in finished or (fed and number >= fed[0]))
                    if given not in finished:
                        break
                    features = finished.pop(given)
                room.release()
                yield features
                given += 1
            if fed[1] is not None:
                raise fed[1]
        finally:
            stop.set()
            room.release(2 * self.jobs)  # a feeder waiting for room wakes up, and stops
            feeder.join()
            queue.wait_all()


def openvino_engine(model: ov.Model | str | Path, precision: str, batch_size: int,
                    hint: str = "THROUGHPUT") -> tuple[OpenVINOEngine, str | None]:
    """Compile an OpenVINO model (or the path of a saved one) for this CPU in `precision`, for
    batches of `batch_size` images.

    Args:
        model: the model, or its .xml (its batch dimension is set to `batch_size`).
        precision: extract.precision.
        batch_size: the images of a batch (extract.batch_size); the features do not depend on it.
        hint: OpenVINO's PERFORMANCE_HINT. THROUGHPUT: streams that share the cores, for `map`;
            LATENCY: every core on each call, for a caller that runs one batch at a time (a Ray
            actor). A photo's features are the same bytes either way (tests/test_feature_store.py).

    Returns:
        (engine, note): note says what ran instead where this CPU lacks the instructions the
        precision needs (bfloat16 without AVX-512 BF16 or AMX runs float32; int8 without VNNI
        runs, more slowly); None otherwise.
    """
    import openvino as ov

    core = ov.Core()
    model = core.read_model(model) if isinstance(model, (str, Path)) else model.clone()
    shape = model.input(0).get_partial_shape()
    shape[0] = batch_size
    model.reshape(shape)
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision],
        "PERFORMANCE_HINT": hint,
    })
    note = None
    ran = compiled.get_property("INFERENCE_PRECISION_HINT")
    if precision == "bfloat16" and ran != ov.Type.bf16:
        note = f"this CPU has no bfloat16 instructions: OpenVINO ran {ran.get_type_name()} instead"
    if precision == "int8" and not cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        note = "this CPU has no VNNI instructions: int8 runs, but more slowly than on a CPU with them"
    return OpenVINOEngine(compiled), note


def run_batches(engine: Engine, batches: Iterable[tf.Tensor | np.ndarray]) -> Iterator[np.ndarray]:
    """The engine's features for each batch, in order: several in flight on OpenVINO, one at a time
    on Keras (whose TensorFlow ops use every core on each batch already)."""
    if isinstance(engine, OpenVINOEngine):
        return engine.map(batches)
    return (engine(batch) for batch in batches)


def quantize(model: ov.Model, calibration_images: tf.data.Dataset, count: int) -> ov.Model:
    """int8 post-training quantisation of an OpenVINO model (NNCF), calibrated on `count` images.

    calibration_images: a tf.data dataset of batches of one preprocessed image each.
    """
    import nncf

    class Calibration:  # NumPy batches, streamed, and a plain int length for NNCF's progress bar
        def __iter__(self):
            return calibration_images.as_numpy_iterator()

        def __len__(self):
            return count

    return nncf.quantize(model, nncf.Dataset(Calibration()), subset_size=count)


def save_openvino(model: ov.Model, path: str | Path) -> None:
    """Write an OpenVINO model as path (.xml) and its weights beside it (.bin), as they are."""
    import openvino as ov

    ov.save_model(model, path, compress_to_fp16=False)


def load_engine(conv: ConvBase, engine: str, precision: str, quantized_model: Path = QUANTIZED_MODEL, *,
                batch_size: int, one_batch_at_a_time: bool = False) -> tuple:
    """What extract runs: (engine, the conv base's preprocess_input, feature shape, note or None).

    For int8, the conv base is the one the quantize stage wrote, `quantized_model`: a UserError when
    it is missing or made for another input size.

    Args:
        conv: the conv_base section; engine, precision: extract.engine and extract.precision.
        quantized_model: the int8 conv base (.xml), for int8.
        batch_size: extract.batch_size, the size OpenVINO compiles for (Keras takes any).
        one_batch_at_a_time: OpenVINO compiled for a caller that runs one batch at a time (LATENCY),
            not for run_batches (THROUGHPUT).
    """
    if engine == "keras":
        conv_base, preprocess = build_conv_base(conv, precision)
        return keras_engine(conv_base), preprocess, tuple(conv_base.output_shape[1:]), keras_note(precision)
    if precision == "int8":
        import openvino as ov

        if not Path(quantized_model).is_file():
            raise no_int8_model(quantized_model)
        model = ov.Core().read_model(quantized_model)
        size = conv.input_size
        if list(model.input(0).get_partial_shape())[1:3] != [size, size]:
            raise UserError(f"error: {quantized_model} takes other images than {size}x{size} "
                            "(conv_base.input_size): it is stale. Fix: run `dvc repro`, whose quantize "
                            "stage writes it again")
        preprocess = conv_base_module(conv.name)[0].preprocess_input
    else:
        conv_base, preprocess = build_conv_base(conv, "float32")
        model = openvino_model(conv_base)
    hint = "LATENCY" if one_batch_at_a_time else "THROUGHPUT"
    run, note = openvino_engine(model, precision, batch_size, hint)
    shape = tuple(dimension.get_length() for dimension in model.output(0).get_partial_shape()[1:])
    return run, preprocess, shape, note
