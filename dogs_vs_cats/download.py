"""Downloading the photos' archive (the download stage): checked, resumable.

The stage runs in every `dvc repro`, so that `dvc status` after it is up to date whichever photos
the user chose: it fetches the archive only when split.raw_dir names DOWNLOAD_FILE, and otherwise
writes a note there (stages/download.py), beside any archive fetched before, kept for a switch back.

The bytes go to a hidden partial file beside the output, named after the SHA-256 they must have
(`.photos.zip.<sha256>.part`, ignored by git), never to the output itself, which appears only once
the whole file has the SHA-256 of download.sha256. An interrupted download (Ctrl-C, a dropped
connection) keeps the partial file, and the next run asks the server for the rest (an HTTP range
request); a server that answers with the whole file instead starts it again. The output is
persistent (dvc.yaml): a file already there with the right SHA-256 is kept, so a change to
this code does not fetch 800 MB again. urllib honours the usual proxy variables (https_proxy,
no_proxy, ...). No TensorFlow here.
"""

import errno
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from dogs_vs_cats.core.atomic import DiskFull, ensure_free_space
from dogs_vs_cats.core.digest import file_sha256
from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.layout import DOWNLOAD_FILE
from dogs_vs_cats.core.params import ParamError, Params

TIMEOUT = 60  # seconds to connect (per address of the host), and for each read
CHUNK = 2**20
OFFLINE = "Offline? put the photos in a folder and set split.raw_dir (README: Data)"
WRONG_ADDRESS = "Check download.url, or put the photos in a folder and set split.raw_dir (README: Data)"


class DownloadError(UserError):
    """The server could not be reached, refused the file, or stopped sending: one line, and what to do."""

    def __init__(self, url, reason, hint=OFFLINE):
        super().__init__(f"error: cannot download {url}: {reason}. {hint}")


class RangeNotSatisfiable(Exception):
    """The server has no bytes after those already received: the partial file may be complete."""


def downloads_photos(params: Params | dict) -> bool:
    """Whether split.raw_dir is the download's archive (as written, or with ./ or trailing slashes)."""
    raw_dir = Params.of(params).split.raw_dir
    return isinstance(raw_dir, str) and os.path.normpath(raw_dir) == os.path.normpath(DOWNLOAD_FILE)


def partial_path(path: Path, sha256: str) -> Path:
    """Where the bytes of the file with `sha256` go until they are complete and checked."""
    return path.with_name(f".{path.name}.{sha256}.part")


def open_response(url: str, start: int) -> tuple[http.client.HTTPResponse, int]:
    """The server's answer for the bytes from `start` on: (response, the offset it starts at)."""
    request = urllib.request.Request(url, headers={"User-Agent": "dogs-vs-cats-dvc"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        # A new opener each time reads the proxy variables as they are now (urlopen keeps its first).
        response = urllib.request.build_opener().open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and start:
            raise RangeNotSatisfiable from error
        raise DownloadError(url, f"HTTP {error.code} {error.reason}", WRONG_ADDRESS) from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DownloadError(url, str(reason) or type(reason).__name__) from error
    if response.status != 206:
        return response, 0  # the whole file
    if (response.headers.get("Content-Range") or "").startswith(f"bytes {start}-"):
        return response, start
    response.close()  # a range other than the one asked for: ask for the whole file
    return open_response(url, 0)


def read_block(response: http.client.HTTPResponse, url: str, received: int) -> bytes:
    """The next block of the response; b"" at its end."""
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as error:  # reset, timed out, IncompleteRead
        raise DownloadError(url, f"the connection broke after {received:,} bytes ({type(error).__name__}"
                                 f": {error}); run the same command again to resume") from error


def fetch(url: str, partial: Path, label: str) -> None:
    """Append the rest of the file at `url` to `partial` (or write it whole, when the server must)."""
    start = partial.stat().st_size if partial.exists() else 0
    response, start = open_response(url, start)
    with response:
        length = response.headers.get("Content-Length")
        total = start + int(length) if length else None
        if total:
            ensure_free_space(partial, total - start)
        write_response(response, url, partial, start, total, label)


def write_response(response: http.client.HTTPResponse, url: str, partial: Path, start: int, total: int | None,
                   label: str) -> None:
    """Write the response's bytes into `partial` from `start` on, with a progress bar."""
    with open(partial, "r+b" if start else "wb") as out:
        out.seek(start)
        out.truncate()
        with tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=label, file=sys.stderr, mininterval=1) as progress:
            while block := read_block(response, url, out.tell()):
                try:
                    out.write(block)
                except OSError as error:
                    if error.errno == errno.ENOSPC:
                        raise DiskFull(partial) from error
                    raise
                progress.update(len(block))
        if total and out.tell() != total:
            raise DownloadError(url, f"the server sent {out.tell():,} of {total:,} bytes; run the same "
                                     "command again to resume")


def download(url: str, sha256: str, path: str | Path) -> Path:
    """Fetch `url` to `path`, resuming a partial download; keep it only if its SHA-256 is `sha256`."""
    path = Path(path)
    if path.exists() and file_sha256(path) == sha256:
        print(f"{path} is there with SHA-256 {sha256}: nothing to download")
        return path
    # Another file stays until this one is complete and checked (dvc.lock still describes it).
    partial = partial_path(path, sha256)
    for stale in path.parent.glob(f".{path.name}.*.part"):  # another SHA-256's bytes
        if stale != partial:
            stale.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fetch(url, partial, path.name)
    except RangeNotSatisfiable:  # nothing after the bytes we have: complete, or not this file at all
        if file_sha256(partial) != sha256:
            partial.unlink()
            fetch(url, partial, path.name)
    actual = file_sha256(partial)
    if actual != sha256:
        partial.unlink()
        raise ParamError("download.sha256", f"{url} gave a file whose SHA-256 is {actual}, not {sha256}; "
                         "it was removed", "check download.url and download.sha256 (a changed or wrong file)")
    os.replace(partial, path)
    return path
