"""The feature store: each photo's conv-base features, computed once and kept by content.

extract computes only the photos whose features the store does not hold for the same conv base,
and assembles every subset's features.npy from the store, so that adding photos, a new split.seed
or new counts, and going back to an earlier conv base compute only what is new. It never changes
a result, only time: features.npy is the same, byte for byte, as from an empty store, because each
engine gives a photo the same bytes whatever batch it is in (tests/test_feature_store.py checks
that on the CPU it runs on).

Key. An entry is named by two SHA-256 digests:
  - the conv base's (`conv_base_key`): of what decides its features, `conv_base_identity`:
    conv_base.name; the weights (imagenet; a local file's bytes; null with conv_base.seed);
    conv_base.input_size; extract.engine and extract.precision; the int8 model's bytes; the
    versions of the libraries and the source of the package's modules that compute them; the
    CPU's instruction sets that change the arithmetic (AVX-512, VNNI, BF16, AMX); a GPU that the
    Keras engine would use. extract.batch_size is not part of it.
  - the photo's: of its bytes, so that a renamed, moved or re-split photo is the same entry.

Location. $FEATURE_STORE, or else feature-store/ in the user's cache folder ($XDG_CACHE_HOME,
~/.cache): outside the workspace, so that branches, `dvc exp run --queue` and `--temp` workspaces
and other clones on the machine share it. Point FEATURE_STORE at storage that every machine
mounts to share it further. <location>/<conv base key>/ holds conv_base.json (the identity, for
people) and <photo key[:2]>/<photo key>.npy.

Safety. An entry is written under a temporary name in its own folder, then renamed into place (an
atomic rename), so concurrent writers (two queued experiments) never leave a mixed file, and an
interrupted write leaves no entry: at most its own temporary (`.tmp-*`, never read; Ctrl-C
removes it, a killed process leaves it until the store is emptied). Each entry begins with a
CRC-32 of the rest, checked on every read: an entry that fails it (a torn copy, a truncated file,
a flipped bit) counts as missing, and is computed and written again. It guards against damage,
not forgery: whoever can write the store could write a matching digest of any kind.

Size. One photo's features, float32, per conv base: 32 KiB for VGG16 at 150 (4, 4, 512), 125 KiB
for MobileNetV2 at 160 (5, 5, 1280); `du -sh` of the location says how much. Emptying it (`rm -rf`
the location, or one conv base's folder) loses nothing but time.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import os
import platform
import uuid
import zlib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.core.atomic import DiskFull, json_text
from dogs_vs_cats.core.digest import file_sha256
from dogs_vs_cats.core.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from numpy.typing import ArrayLike

    from dogs_vs_cats.core.params import ConvBase, Extract

STORE_VARIABLE = "FEATURE_STORE"
CHECK_BYTES = 4  # the CRC-32 of the entry's .npy bytes, big-endian, before them
# The instruction sets whose presence changes what a CPU engine computes, bit for bit.
ARITHMETIC_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
                    "amx_bf16", "amx_int8", "amx_fp16")


def store_location() -> Path:
    """Where the store is: $FEATURE_STORE, else feature-store/ in the user's cache folder."""
    if configured := os.environ.get(STORE_VARIABLE, "").strip():
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(cache) / "dogs-vs-cats" / "feature-store"


def cpu_flags() -> set[str]:
    """The instruction-set flags of this CPU (Linux's /proc/cpuinfo; empty elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _version(*distributions: str) -> str | None:
    for distribution in distributions:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


# The package's modules that turn a photo into features: a change to any of them changes the key.
FEATURE_CODE = ("images.py", "conv_base.py", "engines.py", "core/runtime.py")


def code_digest(modules: Sequence[str] = FEATURE_CODE) -> str:
    """The SHA-256 of the source of the package's `modules` (paths relative to dogs_vs_cats/)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for module in modules:
        digest.update((package / module).read_bytes())
    return digest.hexdigest()


def device() -> str:
    """What the Keras engine would run on: "cpu", or the GPUs CUDA_VISIBLE_DEVICES leaves to a
    TensorFlow built with CUDA (told without importing it)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    cuda = _version("nvidia-cudnn-cu12", "nvidia-cudnn-cu11") is not None
    return "cpu" if not cuda or visible == "" else f"gpu:{visible or 'all'}"


def conv_base_identity(conv: ConvBase, extract: Extract, quantized_model: Path | None = None) -> dict:
    """What decides a photo's features, besides the photo: read without TensorFlow.

    Args:
        conv: the conv_base section; extract: the extract section.
        quantized_model: the int8 conv base (.xml, its .bin beside it), part of the identity with
            precision int8; None for the conv base it is made from.
    """
    identity = {
        "name": str(conv.name).replace("_", "").lower(),  # as conv_base_module matches it
        "weights": {"sha256": file_sha256(conv.local_weights)} if conv.local_weights else conv.weights,
        "seed": conv.seed if conv.weights is None else None,
        "input_size": conv.input_size,
        "engine": extract.engine,
        "precision": extract.precision,
        "libraries": {"tensorflow": _version("tensorflow", "tensorflow-cpu"), "keras": _version("keras")},
        "code": code_digest(),
        "machine": platform.machine(),
        "cpu": sorted(cpu_flags() & set(ARITHMETIC_FLAGS)),
        "device": device() if extract.engine == "keras" else "cpu",
    }
    if extract.engine == "openvino":
        identity["libraries"]["openvino"] = _version("openvino")
    if extract.precision == "int8":
        identity["libraries"]["nncf"] = _version("nncf")
    if extract.precision == "int8" and quantized_model is not None:
        xml = Path(quantized_model)
        if not (xml.is_file() and xml.with_suffix(".bin").is_file()):
            raise no_int8_model(xml)
        identity["int8_model"] = {"xml": file_sha256(xml), "bin": file_sha256(xml.with_suffix(".bin"))}
    return identity


def no_int8_model(path: Path) -> UserError:
    """The error for an int8 conv base that the quantize stage has not written."""
    return UserError(f"error: no int8 conv base at {path}. Fix: run `dvc repro`, whose quantize stage "
                     "writes it")


def conv_base_key(identity: dict) -> str:
    """The SHA-256 of an identity (conv_base_identity), in hexadecimal."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class FeatureStore:
    """One conv base's entries in the store: each photo's features, by the SHA-256 of its bytes."""

    def __init__(self, identity: dict, location: Path | None = None):
        self.identity = identity
        self.folder = (location or store_location()) / conv_base_key(identity)

    def path(self, photo: str) -> Path:
        """Where the entry of the photo whose bytes have SHA-256 `photo` is."""
        return self.folder / photo[:2] / f"{photo}.npy"

    def get(self, photo: str) -> np.ndarray | None:
        """The features of the photo `photo` (SHA-256), or None when the store has no sound entry."""
        try:
            data = self.path(photo).read_bytes()
        except OSError:
            return None
        payload = memoryview(data)[CHECK_BYTES:]
        if zlib.crc32(payload).to_bytes(CHECK_BYTES, "big") != data[:CHECK_BYTES]:
            return None  # torn, truncated or altered: computed again
        try:
            return np.load(io.BytesIO(payload), allow_pickle=False)
        except ValueError:
            return None

    def missing(self, photos: Iterable[str]) -> list[int]:
        """The positions in `photos` (SHA-256s) of those without a sound entry."""
        return [index for index, photo in enumerate(photos) if self.get(photo) is None]

    def put(self, photo: str, features: np.ndarray) -> None:
        """Keep the features of the photo `photo` (SHA-256): written whole, or not at all."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        header = _npy_header(features.shape)
        check = zlib.crc32(features, zlib.crc32(header)).to_bytes(CHECK_BYTES, "big")
        try:
            _write_whole(self.path(photo), check, header, features, first_in_folder=self._start)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise DiskFull(self.folder) from error
            raise StoreError(self.folder, error) from error

    def _start(self) -> None:
        """Write conv_base.json, for people (no entry reads it), when the conv base's folder is new."""
        if not (self.folder / "conv_base.json").is_file():
            _write_whole(self.folder / "conv_base.json", json_text(self.identity).encode())

    def rows(self, photos: Sequence[str], missing: Sequence[int] = (), computed: Iterable[ArrayLike] = (),
             batch_size: int = 256) -> Iterator[np.ndarray]:
        """The features of `photos` (SHA-256s), in order, `batch_size` at a time.

        Args:
            photos: the photos' SHA-256s, in the order of the rows.
            missing: the positions in `photos` of those the store does not hold (`FeatureStore.missing`).
            computed: their features, batch by batch, in the order of `missing`: each entry is kept
                in the store as it passes, so an interruption keeps what was computed, and reaches
                the rows without being read back.

        Raises:
            StoreError: an entry that was sound moments ago no longer reads back whole.
            RuntimeError: `computed` gives another number of photos than `missing` holds.
        """
        fresh = self._keep(computed, [photos[position] for position in missing])
        missing = set(missing)

        def row(position):
            if position in missing:
                features = next(fresh, None)
                if features is None:
                    raise RuntimeError(f"computed fewer images than the {len(missing)} expected")
                return features
            features = self.get(photos[position])
            if features is None:
                raise StoreError(self.folder, "an entry that was sound moments ago no longer reads back")
            return features

        for start in range(0, len(photos), batch_size):
            yield np.stack([row(position) for position in range(start, min(start + batch_size, len(photos)))])
        next(fresh, None)  # past the last: a surplus raises

    def _keep(self, feature_batches: Iterable[ArrayLike], photos: Sequence[str]) -> Iterator[np.ndarray]:
        """Each photo's features from `feature_batches`, after putting them in the store as `photos`."""
        if not photos:
            return
        from dogs_vs_cats.core.runtime import keras  # loaded already: an engine computes the batches

        progress = keras.utils.Progbar(len(photos), unit_name="image")
        done = 0
        for batch in feature_batches:
            for features in np.asarray(batch):
                if done == len(photos):
                    raise RuntimeError(f"computed more images than the {len(photos)} expected")
                self.put(photos[done], features)
                done += 1
                yield features
            progress.update(done)


@functools.cache
def _npy_header(shape: tuple[int, ...]) -> bytes:
    """The .npy header of a float32 array of `shape`, as np.save writes it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                                  "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _write_whole(path: Path, *parts: bytes | np.ndarray,
                 first_in_folder: Callable[[], None] | None = None) -> None:
    """Write `parts` under a temporary name of this writer's own beside `path`, then rename it there.

    The folder is made when the first write finds it missing, after calling `first_in_folder`: a
    file's creation is the costly step here, so nothing is asked of the file system beforehand.
    """
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:16]}")  # this writer's own; short, for Windows
    try:
        try:
            file = open(tmp, "xb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            if first_in_folder is not None:
                first_in_folder()
            path.parent.mkdir(parents=True, exist_ok=True)
            file = open(tmp, "xb")  # noqa: SIM115
        with file:
            for part in parts:
                file.write(part)
        try:
            os.replace(tmp, path)
        except PermissionError:  # Windows, while another process reads the entry: it is there already
            if not path.is_file():
                raise
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class StoreError(UserError):
    """The store cannot be written or read back: its one line names FEATURE_STORE."""

    def __init__(self, folder, reason):
        super().__init__(f"error: the feature store at {folder} failed ({reason}). Fix: make it writable, "
                         f"or point {STORE_VARIABLE} at a folder that is")
