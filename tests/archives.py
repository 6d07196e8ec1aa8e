"""Zip archives of photos, and a web server on 127.0.0.1 that serves one, as a download site would.

The server answers range requests (206) unless told not to (or answers them with the wrong range),
can drop the first connection after some bytes, and records every request, so that tests can see
resumption and proxies at work.
Nothing here reaches any other address.
"""

import io
import re
import socket
import threading
import zipfile
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from helpers import image_array, jpeg_bytes


def petimages_zip(per_class, size=40, extra=True, photos=None):
    """Bytes of a zip in Microsoft's PetImages layout: PetImages/{Cat,Dog}/N.jpg beside a readme.

    With `extra`, as the real archive: an empty Cat/0.jpg, a text file named Dog/0.jpg, Thumbs.db.
    `photos` ({"Cat": [bytes, ...], "Dog": [...]}) replaces the drawn images.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme[1].txt", "Kaggle Cats and Dogs Dataset (test copy)\n")
        for folder, kind in (("Cat", "cat"), ("Dog", "dog")):
            images = (photos or {}).get(folder) or [jpeg_bytes(image_array(kind, i, size))
                                                    for i in range(1, per_class + 1)]
            for i, data in enumerate(images, start=1):
                archive.writestr(f"PetImages/{folder}/{i}.jpg", data)
        if extra:
            archive.writestr("PetImages/Cat/0.jpg", b"")
            archive.writestr("PetImages/Dog/0.jpg", b"not an image at all\n")
            archive.writestr("PetImages/Dog/Thumbs.db", b"\x00" * 64)
    return buffer.getvalue()


class ArchiveServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data, ranges=True, drop_after=None, wrong_range=False):
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.data, self.ranges, self.drop_after, self.wrong_range = data, ranges, drop_after, wrong_range
        self.requests = []  # (path as the client sent it, its Range header or None)

    def url(self, name="photos.zip"):
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class ArchiveHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        server, data = self.server, self.server.data
        requested = self.headers.get("Range")
        server.requests.append((self.path, requested))
        if self.path.endswith("/missing.zip"):
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", requested or "")
        start = int(match[1]) if match and server.ranges else 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start and server.wrong_range:  # 206, but the whole file
            start = 0
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if server.drop_after is not None:  # the first answer only: a connection lost half-way
            body, server.drop_after = body[:server.drop_after], None
            self.wfile.write(body)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serving(data, **options):
    """An ArchiveServer for `data` on 127.0.0.1, running in a thread for the `with` block."""
    server = ArchiveServer(data, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_port():
    """A port on 127.0.0.1 that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def closed_port():
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
