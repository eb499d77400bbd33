"""Serving an exported game (``video2game:play``): a static HTTP server (http.server) on localhost in a thread.
Any static server works as well (``python -m http.server`` in the export folder); file:// does not (the page fetches
its GLB and JSON)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

from paperloom import UserError

TYPES = {".glb": "model/gltf-binary", ".js": "text/javascript", ".json": "application/json", ".png": "image/png",
         ".html": "text/html"}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def log_message(self, format, *args):  # noqa: A002 (http.server's name)
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def start(folder: Path, host: str = "127.0.0.1", port: int = 0):
    """Serve `folder` in a daemon thread: (server, url). server.shutdown() stops it."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise UserError(f"{folder}: no index.html; export with web=true (video2game:export)")
    handler = functools.partial(QuietHandler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); choose another port (port=0: any free one)")\
            from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="video2game-serve", daemon=True).start()
    h, p = server.server_address[:2]
    return server, f"http://{h}:{p}/"
