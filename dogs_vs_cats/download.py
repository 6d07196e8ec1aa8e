"""Downloading the photos' archive (the download stage of data/dvc.yaml): checked, resumable.

The bytes go to a hidden partial file beside the output (`.photos.zip.part`, ignored by git), never
to the output itself, which appears only once the whole file has the SHA-256 of download.sha256.
An interrupted download (Ctrl-C, a dropped connection) keeps the partial file, and the next run
asks the server for the rest (an HTTP range request); a server that answers with the whole file
instead starts it again. urllib honours the usual proxy variables (https_proxy, no_proxy, ...).
No TensorFlow here.
"""

import errno
import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from dogs_vs_cats.core.atomic import DiskFull, ensure_free_space
from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.params import ParamError, section

TIMEOUT = 60  # seconds to connect, and for each read: a silent server fails within about a minute
CHUNK = 2**20
OFFLINE = "Offline? put the photos in a folder and set split.raw_dir (README: Data)"


class DownloadError(UserError):
    """The server could not be reached, or stopped sending: one line, and what to do."""

    def __init__(self, url, reason):
        super().__init__(f"error: cannot download {url}: {reason}. {OFFLINE}")


def check_download(params):
    """(download.url, download.sha256), checked."""
    url = section(params, "download").get("url")
    if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
        raise ParamError("download.url", f"{url!r} is not an http(s) address",
                         "give the address of the photos' zip archive")
    sha256 = section(params, "download").get("sha256")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ParamError("download.sha256", f"{sha256!r} is not a SHA-256 (64 hexadecimal digits)",
                         "give the archive's published SHA-256 (sha256sum prints it)")
    return url, sha256.lower()


def partial_path(path):
    """Where the bytes go until they are complete and checked."""
    return path.with_name(f".{path.name}.part")


def open_response(url, start):
    """The server's answer for the bytes from `start` on: (response, offset it starts at)."""
    request = urllib.request.Request(url, headers={"User-Agent": "dogs-vs-cats-dvc"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        # A new opener each time reads the proxy variables as they are now (urlopen keeps its first).
        response = urllib.request.build_opener().open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # the partial file is not a prefix of this file: start again
            return open_response(url, 0)
        raise DownloadError(url, f"HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DownloadError(url, str(reason) or type(reason).__name__) from error
    resumed = response.status == 206 and (response.headers.get("Content-Range") or "").startswith(
        f"bytes {start}-")
    return response, start if resumed else 0


def read(response, url, received):
    """The next block of the response; b"" at its end."""
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as error:  # reset, timed out, IncompleteRead
        raise DownloadError(url, f"the connection broke after {received:,} bytes ({type(error).__name__}"
                                 f": {error}); run the same command again to resume") from error


def download(url, sha256, path):
    """Fetch `url` to `path`, resuming a partial download, and keep it only if its SHA-256 is `sha256`."""
    path = Path(path)
    partial = partial_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = partial.stat().st_size if partial.exists() else 0
    response, start = open_response(url, start)
    with response:
        length = response.headers.get("Content-Length")
        total = start + int(length) if length else None
        if total:
            ensure_free_space(path, total - start)
        digest = hashlib.sha256()
        with open(partial, "r+b" if start else "wb") as out:
            while start and (block := out.read(CHUNK)):  # the bytes kept from the last attempt
                digest.update(block)
            out.seek(start)
            out.truncate()
            with tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=path.name, file=sys.stderr, mininterval=1) as progress:
                while block := read(response, url, out.tell()):
                    try:
                        out.write(block)
                    except OSError as error:
                        if error.errno == errno.ENOSPC:
                            raise DiskFull(path) from error
                        raise
                    digest.update(block)
                    progress.update(len(block))
            if total and out.tell() != total:
                raise DownloadError(url, f"the server sent {out.tell():,} of {total:,} bytes; run the "
                                         "same command again to resume")
    actual = digest.hexdigest()
    if actual != sha256:
        partial.unlink()
        raise ParamError("download.sha256", f"{url} has SHA-256 {actual}, not {sha256}; the file was "
                         "removed", "check download.url and download.sha256 (a changed or wrong file)")
    os.replace(partial, path)
    return path
