"""Writing outputs so that a crash never leaves a file that looks complete."""

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from dogs_vs_cats.core.errors import UserError


class DiskFull(UserError):
    """Not enough room for an output: one line that names it and the space it needs."""

    def __init__(self, path, needed=None):
        free = shutil.disk_usage(_existing_parent(Path(path))).free
        need = f"needs about {_megabytes(needed)}, " if needed else ""
        super().__init__(f"error: no space left for {path}: it {need}{_megabytes(free)} free. "
                         "Free some space (or move the DVC cache: dvc cache dir) and run again")


def ensure_free_space(path: str | Path, needed: int) -> None:
    """Raise DiskFull before any work if the disk that will hold `path` has less than `needed` bytes."""
    if shutil.disk_usage(_existing_parent(Path(path))).free < needed:
        raise DiskFull(path, needed)


def _existing_parent(path):
    while not path.exists():
        path = path.parent
    return path


def _megabytes(nbytes):
    return f"{nbytes / 1e6:,.0f} MB"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    An interruption leaves either the old complete output or none, never a half-written one
    (DVC removes the old one before a stage runs, unless the output persists). A stale temporary
    from an earlier crash is removed first. A full disk raises DiskFull, whose one line names the
    output.
    """
    path = Path(path)
    stem, dot, suffixes = path.name.partition(".")
    tmp = path.with_name(f".{stem}.tmp{dot}{suffixes}")  # keep the suffixes: Keras checks them
    _remove(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        _remove(path)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise DiskFull(path) from error
    finally:
        _remove(tmp)


@contextlib.contextmanager
def atomic_paths(paths: list[Path]) -> Iterator[list[Path]]:
    """atomic_path for several outputs that go together: each is built beside its old self, and only
    once the block has built them all are they swapped in, by renames alone (the old ones are set
    aside, the new ones moved in, then the old ones deleted), so that no interruption leaves some
    new beside some old for longer than a few renames.
    """
    paths = [Path(path) for path in paths]
    tmps = [path.with_name(f".{path.name}.tmp") for path in paths]
    olds = [path.with_name(f".{path.name}.tmp.old") for path in paths]
    for leftover in tmps + olds:
        _remove(leftover)
    try:
        yield tmps
        try:
            for path, old in zip(paths, olds, strict=True):
                if path.exists():
                    os.replace(path, old)
            for tmp, path in zip(tmps, paths, strict=True):
                os.replace(tmp, path)
        except BaseException:  # Ctrl-C too: every old output goes back
            for path, old in zip(paths, olds, strict=True):
                if old.exists():
                    _remove(path)
                    os.replace(old, path)
            raise
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise DiskFull(paths[0].parent) from error
    finally:
        for leftover in tmps + olds:
            _remove(leftover)


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def json_text(data: object) -> str:
    """`data` as the project writes JSON: indented, with a final newline."""
    return json.dumps(data, indent=2) + "\n"


def write_json(path: str | Path, data: object) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(data))
