"""A loopback TCP proxy in front of a real storage server that breaks downloads on purpose.

Every connection is forwarded byte for byte. The first ``faulty`` connections whose response grows past
``after`` bytes are then either cut (both sockets closed: a broken stream) or stalled (held open, nothing
more sent: a hung server) while later connections pass untouched, so a client that resumes gets the
rest. ``faulty=None`` breaks every such connection. The proxy records each request's head, so a test can
see whether a retry asked for a byte range (a resume) or the whole object (a restart).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FaultProxy:
    upstream_port: int
    mode: str = "pass"  # pass | cut | stall
    after: int = 0
    faulty: int | None = 1
    requests: list[bytes] = field(default_factory=list)
    broken: int = 0
    # Called once per fault, before the connection breaks (e.g. to replace the object meanwhile).
    on_fault: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            for target in (self._upload, self._download):
                t = threading.Thread(target=target, args=(client, upstream), daemon=True)
                t.start()
                self._threads.append(t)

    def _upload(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client to server: forwarded as is; request heads recorded."""
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if data[:8].split(b" ")[0] in (b"GET", b"HEAD", b"PUT", b"POST", b"DELETE"):
                    with self._lock:
                        self.requests.append(data.split(b"\r\n\r\n", 1)[0])
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _download(self, client: socket.socket, upstream: socket.socket) -> None:
        """Server to client: forwarded until this connection is one to break."""
        sent = 0
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if self.mode != "pass" and sent + len(data) > self.after and self._take_fault():
                    client.sendall(data[: max(0, self.after - sent)])
                    if self.on_fault is not None:
                        self.on_fault()
                    if self.mode == "cut":
                        # shutdown, not just close: the other thread's recv holds the socket open.
                        for sock in (client, upstream):
                            with contextlib.suppress(OSError):
                                sock.shutdown(socket.SHUT_RDWR)
                            sock.close()
                    else:  # stall: hold the connection open, send nothing more
                        self._closing.wait()
                    return
                client.sendall(data)
                sent += len(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def _take_fault(self) -> bool:
        with self._lock:
            if self.faulty is not None and self.broken >= self.faulty:
                return False
            self.broken += 1
            return True

    def ranges(self) -> list[str | None]:
        """The Range header of every GET, in order (None: the whole object)."""
        out: list[str | None] = []
        for head in self.requests:
            if not head.startswith(b"GET "):
                continue
            found = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"range":
                    found = value.strip().decode()
            out.append(found)
        return out

    def close(self) -> None:
        self._closing.set()
        self._server.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
