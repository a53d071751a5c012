"""Knowing when a request is on the wire: urllib handlers whose connections tell the
sending thread the moment their connection is up, just before the request's first byte is
written (`watching(..., connected=)`: the ledger records the request in flight then, not
while a TCP connect or a TLS handshake may still fail or hang), and the moment the whole
request is written (`watching(event)`). Before that moment a failure means the provider
got nothing (the messages failed, and are retried); after it, the provider may have
accepted them (uncertain): the ledger depends on telling the two apart.
"""

from __future__ import annotations

import http.client
import threading
import urllib.request
from contextlib import contextmanager
from typing import Callable, Iterator


# The event of the request this thread is sending and what to call once its connection is
# up, so its connection can say when the request leaves and when it is out (see
# _HTTPConnection).
_wire = threading.local()


def _connected() -> None:
    connected = getattr(_wire, "connected", None)
    if connected is not None:
        connected()


def _request_written() -> None:
    event = getattr(_wire, "event", None)
    if event is not None:
        event.set()


class _HTTPConnection(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        # http.client connects as it writes the request's first byte: nothing has left yet
        # (an error raised here closes the connection, and the request is never written)
        _connected()

    def getresponse(self, *args, **kwargs):
        # the whole request is written: from here the thread only waits for the answer,
        # without the GIL
        _request_written()
        return super().getresponse(*args, **kwargs)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        super().connect()       # the TCP connection and the TLS handshake
        _connected()

    def getresponse(self, *args, **kwargs):
        _request_written()
        return super().getresponse(*args, **kwargs)


_SIGNALLING = {http.client.HTTPConnection: _HTTPConnection,
               http.client.HTTPSConnection: _HTTPSConnection}


class _HTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_SIGNALLING.get(http_class, http_class), req, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_SIGNALLING.get(http_class, http_class), req, **kwargs)


def opener() -> urllib.request.OpenerDirector:
    """An opener whose requests tell `watching` when they connect and once written."""
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)


@contextmanager
def watching(event: threading.Event | None,
             connected: Callable[[], None] | None = None) -> Iterator[None]:
    """Requests made on this thread inside the block call `connected()` once their
    connection is up, before their first byte is written, and set `event` once fully
    written."""
    _wire.event, _wire.connected = event, connected
    try:
        yield
    finally:
        _wire.event = _wire.connected = None
