"""Writing outputs so that a crash never leaves a file that looks complete."""

import contextlib
import json
import os
import shutil
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    An interruption leaves either the old complete output or none, never a half-written one
    (DVC removes the old one before a stage runs). A stale temporary from an earlier crash is
    removed first.
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
    finally:
        _remove(tmp)


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(path, data):
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
