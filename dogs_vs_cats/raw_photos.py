"""The raw photos that split reads, from a folder or straight out of a zip archive (never unpacked).

Both kinds answer the same three questions, by the file's name relative to the folder or archive
root ("PetImages/Cat/1.jpg"): which names there are, a file's bytes, and a file copied to a path.
Split writes only under data/split/, each copy named by the last part of the name, so no name
in an archive can make it write anywhere else. What an archive cannot be trusted with:
  not a zip, or truncated (no central directory)   one line naming split.raw_dir
  a member with a bad CRC, encrypted, compressed   that member skipped, with the reason in
    by a method zipfile lacks                        data/split/report.json
  a member named with "..", an absolute path, a    skipped, never read
    drive, a device or a character Windows refuses
  a member declared larger than MAX_PHOTO_BYTES    skipped, never decompressed (a zip bomb); and
                                                   none is read past its declared size
"""

import shutil
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from dogs_vs_cats.core.params import ParamError

MAX_PHOTO_BYTES = 64 * 2**20  # one photo, uncompressed: camera JPEGs are a few MB
UNSAFE_CHARACTERS = set('\\:<>"|?*') | {chr(code) for code in range(32)}
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{port}{n}" for port in ("COM", "LPT") for n in range(10))}


class Unreadable(Exception):
    """A file that cannot be read: its message is the reason split reports."""


def windows_refuses(part: str) -> bool:
    """Whether Windows refuses `part` of a path: a device name (CON, LPT1.jpg), a character it
    refuses (drive and stream colons, backslashes...), or a final dot or space."""
    return (any(char in UNSAFE_CHARACTERS for char in part) or part.endswith((".", " "))
            or part.split(".")[0].upper() in WINDOWS_DEVICES)


def sorted_names(names: Iterable[str]) -> list[str]:
    """Names in the order of their path parts, as sorted(Path(...)) orders files on disk."""
    return sorted(names, key=lambda name: PurePosixPath(name).parts)


class FolderPhotos:
    """The files under a folder, at any depth."""

    def __init__(self, root):
        self.root = Path(root)

    def names(self) -> list[str]:
        """Every file's name, relative to the folder, in sorted_names order."""
        return sorted_names(path.relative_to(self.root).as_posix()
                            for path in self.root.rglob("*") if path.is_file())

    def path(self, name: str) -> str:
        """How split's report names the file."""
        return str(self.root / name)

    def refused(self, name: str) -> str | None:
        """Why a name is not to be trusted: never, for the files of a folder."""
        return None

    def read(self, name: str) -> bytes:
        """The file's bytes; Unreadable when it cannot be read."""
        try:
            return (self.root / name).read_bytes()
        except OSError as error:
            raise Unreadable(f"cannot read file ({error.strerror or type(error).__name__})") from error

    def copy(self, name: str, destination: str | Path) -> None:
        """Copy the file to `destination`."""
        shutil.copyfile(self.root / name, destination)


class ZipPhotos:
    """The members of a zip archive, read in place."""

    def __init__(self, archive):
        self.archive = Path(archive)
        try:
            self.zip = zipfile.ZipFile(self.archive)
        except (zipfile.BadZipFile, OSError) as error:
            raise ParamError("split.raw_dir", f"{archive} is not a readable zip archive ({error})",
                             "if it is the download, delete it and run dvc repro again; or point "
                             "split.raw_dir at a folder of photos") from error
        self.members = {info.filename: info for info in self.zip.infolist() if not info.is_dir()}

    def names(self) -> list[str]:
        """Every member's name (folders left out), in sorted_names order."""
        return sorted_names(self.members)

    def path(self, name: str) -> str:
        """How split's report names the member: the archive's path, then the member's name."""
        return f"{self.archive}/{name}"

    def refused(self, name: str) -> str | None:
        """Why a member's name is not to be trusted, or None.

        Absolute, "..", a backslash, or what Windows would read as a drive, a stream or a device
        (C:x.jpg, a:b, CON.jpg): split names its copy by the last part, and must not be led elsewhere.
        """
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or any(windows_refuses(part) for part in parts):
            return "unsafe name in the archive (absolute, '..', a drive, a device or a character " \
                   "Windows refuses): not read"
        return None

    def read(self, name: str) -> bytes:
        """The member's bytes, decompressed and CRC-checked; Unreadable when they cannot be trusted."""
        info = self.members[name]
        if problem := self.refused(name):
            raise Unreadable(problem)
        if info.file_size > MAX_PHOTO_BYTES:
            raise Unreadable(f"declared size {info.file_size:,} bytes, over the "
                             f"{MAX_PHOTO_BYTES // 2**20} MiB of a photo (a zip bomb?): not read")
        try:
            with self.zip.open(info) as member:  # reads at most file_size bytes, then checks the CRC
                return member.read()
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:  # bad CRC; bad or short deflate data
            raise Unreadable(f"corrupt in the archive ({type(error).__name__}: {error})") from error
        except (RuntimeError, NotImplementedError) as error:  # encrypted; an unknown compression
            raise Unreadable(f"cannot be read from the archive ({error})") from error

    def copy(self, name: str, destination: str | Path) -> None:
        """Write the member's bytes (read as `read` reads them) to `destination`."""
        Path(destination).write_bytes(self.read(name))


def open_photos(raw_dir: str | Path) -> FolderPhotos | ZipPhotos:
    """The photos of split.raw_dir: a folder, or a .zip archive."""
    raw_dir = Path(raw_dir)
    return FolderPhotos(raw_dir) if raw_dir.is_dir() else ZipPhotos(raw_dir)
