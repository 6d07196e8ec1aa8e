"""The SHA-256 of a file: the download's check, a photo's key in the feature store, a weights file's."""

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of the file at `path`, in hexadecimal."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
