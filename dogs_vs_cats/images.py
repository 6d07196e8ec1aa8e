"""Reading images: decoding any common format to RGB, judging which files are usable, and batching them.

`judge_image` is the one judge of a file's bytes, used by split (which keeps only usable files,
from a folder or a zip archive) and, through `read_image`, by predict.py (which reports the
others), with the decoder that extract uses. `image_dataset` is the one way images reach a model:
extract, quantize, the end-to-end training and predict.py use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.runtime import tf

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence


class UnreadablePhoto(UserError):
    """A photo of data/split/ that does not decode (changed or damaged since split judged it)."""

    def __init__(self, path, problem):
        self.path, self.problem = str(path), problem
        super().__init__(f"error: {path}: {problem}. Fix: `dvc checkout data/split` puts back the photos "
                         "that split chose, or `dvc repro -f -s split` chooses them again")


def decode_image(data: bytes | tf.Tensor) -> tf.Tensor:
    """Decode JPEG/PNG/GIF/BMP bytes to an RGB uint8 tensor (H, W, 3), whatever the file's mode.

    Grayscale, RGBA and CMYK images come out as RGB; an animated GIF gives its first frame.
    """
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """An image resized to (size, size, 3) float32, bilinear, as the exported classifier resizes."""
    return tf.image.resize(image, (size, size))


def load_image(path: str | tf.Tensor, size: int) -> tf.Tensor:
    """Read one image file and resize it to (size, size, 3) float32, not yet preprocessed."""
    return resize(decode_image(tf.io.read_file(path)), size)


def jpeg_complete(data: bytes) -> bool:
    """Whether JPEG bytes reach the end-of-image marker that follows their scans.

    Walks the marker segments by their lengths (so a thumbnail inside an EXIF segment, which has
    its own end marker, is skipped), and through entropy-coded data, where 0xFF is followed only
    by 0x00 (a stuffed byte) or a restart marker. Whatever comes after the end marker is ignored.
    """
    position = 2  # after the start-of-image marker
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return False
        marker = data[position + 1]
        if marker == 0xD9:  # end of image
            return True
        if marker == 0xFF:  # fill byte before a marker
            position += 1
        elif marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:  # no length: stuffing, TEM, RSTn
            position += 2
        else:  # a segment with a 2-byte length that counts itself
            if position + 4 > len(data):
                return False
            position += 2 + int.from_bytes(data[position + 2:position + 4], "big")


def judge_image(data: bytes) -> tuple[tf.Tensor | None, str | None]:
    """Decode image bytes: (RGB uint8 tensor, None), or (None, why they are not a usable image).

    A JPEG is first checked for an end-of-image marker after its last scan, so that a truncated
    one is reported as such and is caught even by a decoder that would fill in the missing rows
    with only a warning (TensorFlow 2.21 raises an error; tests/test_images.py checks both).
    Bytes after the marker are allowed.
    """
    if not data:
        return None, "empty file"
    if data.startswith(b"\xff\xd8") and not jpeg_complete(data):
        return None, "truncated JPEG (no end-of-image marker)"
    try:
        return decode_image(data), None
    except tf.errors.OpError:
        return None, "not a readable image (corrupt, truncated or not an image format extract reads)"


def read_image(path: str | Path) -> tuple[tf.Tensor | None, str | None]:
    """Decode the image file at `path`: (RGB uint8 tensor, None), or (None, why it is unusable)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return None, f"cannot read file ({error.strerror or type(error).__name__})"
    return judge_image(data)


def read_photo(path: str | Path) -> np.ndarray:
    """A photo of data/split/ as an RGB uint8 array, decoded as extract decodes it; an UnreadablePhoto
    if it no longer decodes (changed since split judged it)."""
    image, problem = read_image(path)
    if problem:
        raise UnreadablePhoto(path, problem)
    return image.numpy()


def first_unusable(files: Iterable[str | Path]) -> tuple[str | Path, str] | None:
    """(path, why) for the first of `files` that read_image judges unusable; None if all are usable."""
    for path in files:
        _, problem = read_image(path)
        if problem:
            return path, problem
    return None


def image_batches(dataset: tf.data.Dataset, files: Sequence[str | Path],
                  batch_size: int) -> Iterator[tf.Tensor | tuple[tf.Tensor, ...]]:
    """Iterate the batches of image_dataset(files, ..., batch_size, ...); a photo that does not decode
    raises an UnreadablePhoto naming it, not TensorFlow's error, which names no file."""
    batches = iter(dataset)
    for start in range(0, len(files), batch_size):
        try:
            yield next(batches)
        except tf.errors.OpError as error:
            unusable = first_unusable(files[start:start + batch_size])
            if unusable is None:
                raise
            raise UnreadablePhoto(*unusable) from error


def image_dataset(files: Sequence[str | Path], size: int, batch_size: int,
                  labels: Sequence[float] | np.ndarray | None = None,
                  preprocess: Callable[[tf.Tensor], tf.Tensor] | None = None, shuffle_seed: int | None = None,
                  report_problems: bool = False) -> tf.data.Dataset:
    """Batches of the image files resized to (size, size, 3), decoded in parallel ahead of the model.

    Images are float 0-255, or what `preprocess` (a conv base's preprocess_input) makes of them.
    Only the file names are held, and shuffled, given a seed, anew each epoch; otherwise the
    batches keep the order of `files`. With `labels`, each batch is (images, labels).
    With `report_problems`, each file is judged by read_image, as split judges it, and an unusable
    one does not stop the dataset: it comes as a blank image, and each batch is (images, problems),
    a problem being b"" for a usable file.
    """
    def read(path):
        image, problem = read_image(path.numpy().decode())
        return (tf.zeros((size, size, 3)), problem) if problem else (resize(image, size), "")

    def load(path, *label):
        if report_problems:
            image, problem = tf.py_function(read, [path], [tf.float32, tf.string])
            image.set_shape((size, size, 3))
            label = (problem, *label)
        else:
            image = load_image(path, size)
        if preprocess is not None:
            image = preprocess(image)
        return (image, *label) if label else image

    paths = tf.constant([str(f) for f in files], dtype=tf.string)  # typed even when empty
    dataset = tf.data.Dataset.from_tensor_slices(paths if labels is None else (paths, np.float32(labels)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    return (dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))
