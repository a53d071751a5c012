"""Knowing when a request is on the wire: urllib handlers whose connections signal, on the
sending thread, the moment the whole request is written (`watching(event)`). Before that
moment a failure means the provider got nothing (the messages failed, and are retried);
after it, the provider may have accepted them (uncertain): the ledger depends on telling
the two apart.
"""

from __future__ import annotations

import http.client
import threading
import urllib.request
from contextlib import contextmanager
from typing import Iterator


# The event of the request this thread is sending, so its connection can say when the
# request is out (see _HTTPConnection).
_wire = threading.local()


def _request_written() -> None:
    event = getattr(_wire, "event", None)
    if event is not None:
        event.set()


class _HTTPConnection(http.client.HTTPConnection):
    def getresponse(self, *args, **kwargs):
        # the whole request is written: from here the thread only waits for the answer,
        # without the GIL
        _request_written()
        return super().getresponse(*args, **kwargs)


class _HTTPSConnection(http.client.HTTPSConnection):
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
    """An opener whose requests signal `watching`'s event once written."""
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)


@contextmanager
def watching(event: threading.Event | None) -> Iterator[None]:
    """Requests made on this thread inside the block set `event` once fully written."""
    _wire.event = event
    try:
        yield
    finally:
        _wire.event = None
