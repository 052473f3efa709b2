"""``--status-port``: a tiny HTTP endpoint for monitoring, with no names in it.

``GET /`` (or ``/status``) answers one JSON object::

    {"status": "ok", "uptime_seconds": 3605, "connections": 3, "members": 3, "tls": true}

``connections`` counts open connections (joined or still joining), ``members``
the joined ones. A relay with ``--cluster`` adds what it knows of the cluster::

    "cluster": {"node": "relay1-4242-a1b2c3", "state": "up", "redis_ms": 0.4, "remote_members": 40}

``state`` is ``up`` or ``down`` (Redis unreachable: ``redis_ms`` is null and
``error`` says what Redis answered). Nothing else: no names, addresses or fingerprints, so the
endpoint tells a monitor that the relay is alive and how busy it is, and
nothing about who uses it. It is off unless ``--status-port`` is given and
binds loopback unless ``--status-host`` says otherwise.

One request at a time on one thread (``http.server.HTTPServer``), each with
a short socket timeout, so a stuck monitor cannot hold it for long and a
flood of requests cannot start threads.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

DEFAULT_STATUS_HOST = "127.0.0.1"
#: Seconds a status client may take to send its request.
REQUEST_TIMEOUT = 2.0
PATHS = frozenset({"/", "/status"})


class _Handler(BaseHTTPRequestHandler):
    server: _StatusHTTPServer
    timeout = REQUEST_TIMEOUT
    server_version = "susurro-relay"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        if self.path.split("?", 1)[0] not in PATHS:
            body = b'{"error": "not found; try /status"}\n'
            code = 404
        else:
            body = (json.dumps(self.server.snapshot()) + "\n").encode()
            code = 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # monitors poll often; the relay's log is for relay events


class _StatusHTTPServer(HTTPServer):
    snapshot: Callable[[], dict[str, object]]


class StatusServer:
    """Serves ``snapshot()`` as JSON on (host, port) from one background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        counts: Callable[[], tuple[int, int]],
        tls: bool,
        cluster: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        """``counts`` returns (connections, members); ``cluster`` the cluster section; uptime counts from this call."""
        self._started = time.monotonic()
        self._counts = counts
        self._cluster = cluster
        self._tls = tls
        self._host, self._port = host, port
        self._httpd: _StatusHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, object]:
        connections, members = self._counts()
        snapshot: dict[str, object] = {
            "status": "ok",
            "uptime_seconds": int(time.monotonic() - self._started),
            "connections": connections,
            "members": members,
            "tls": self._tls,
        }
        if self._cluster is not None:
            snapshot["cluster"] = self._cluster()
        return snapshot

    def start(self) -> tuple[str, int]:
        """Bind and serve; returns the bound (host, port). Raises ``OSError``."""
        server_class = type(
            "StatusHTTPServer",
            (_StatusHTTPServer,),
            {"address_family": socket.AF_INET6 if ":" in self._host else socket.AF_INET},
        )
        httpd = server_class((self._host, self._port), _Handler)
        httpd.snapshot = self.snapshot
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="relay-status", daemon=True
        )
        self._thread.start()
        host, port = httpd.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
