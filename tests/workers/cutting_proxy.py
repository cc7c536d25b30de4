"""
A TCP proxy in front of a real Redis that loses a reply the way a dropped
connection does: the command reaches Redis and runs, and the connection
closes before its reply comes back.
"""
from __future__ import annotations

import socket
import threading
import time

from tests.conftest import free_port


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` both ways. Once armed with
    ``cut(command)``, the next client chunk holding ``command`` is
    forwarded (or not, ``delivered=False``), and then that connection is
    closed without a reply. With ``refuse_for``, the network is down: every
    open connection closes with it, and new ones are refused for that many
    seconds."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener = socket.create_server(('127.0.0.1', self.port))
        self._armed: bytes | None = None
        self._delivered = True
        self._refuse_for = 0.0
        self._refuse_until = 0.0
        self._lock = threading.Lock()
        self.cuts = 0
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name='cutting-proxy').start()

    def url(self, db: int) -> str:
        return f'redis://127.0.0.1:{self.port}/{db}'

    def cut(self, command: bytes, *, delivered: bool = True, refuse_for: float = 0.0) -> None:
        with self._lock:
            self._armed = command.upper()
            self._delivered = delivered
            self._refuse_for = refuse_for

    @property
    def refusing(self) -> bool:
        """Whether new connections are refused now (``refuse_for``)."""
        return time.monotonic() < self._refuse_until

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.add(client)
            cutting = threading.Event()
            threading.Thread(target=self._pump_requests, args=(client, upstream, cutting),
                             daemon=True).start()
            threading.Thread(target=self._pump_replies, args=(upstream, client, cutting),
                             daemon=True).start()

    def _pump_requests(self, client: socket.socket, upstream: socket.socket,
                       cutting: threading.Event) -> None:
        try:
            while chunk := client.recv(65536):
                if self._should_cut(chunk):
                    cutting.set()  # before Redis can answer
                    if self._delivered:
                        upstream.sendall(chunk)
                        time.sleep(0.2)  # Redis runs the command; its reply is dropped
                    for other in self._cut_off(client):
                        try:
                            other.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass  # closed meanwhile
                    break
                upstream.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(client)
            client.close()
            upstream.close()

    def _should_cut(self, chunk: bytes) -> bool:
        with self._lock:
            if self._armed is None or self._armed not in chunk.upper():
                return False
            self._armed = None
            self.cuts += 1
            self._refuse_until = time.monotonic() + self._refuse_for
            return True

    def _cut_off(self, client: socket.socket) -> list[socket.socket]:
        """The connections a cut closes: this one, or all when the network is down."""
        with self._lock:
            return list(self._open) if self._refuse_for else [client]

    @staticmethod
    def _pump_replies(upstream: socket.socket, client: socket.socket,
                      cutting: threading.Event) -> None:
        try:
            while chunk := upstream.recv(65536):
                if cutting.is_set():
                    break
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()
