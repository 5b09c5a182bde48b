"""What the providers' streams share: each is read once, can be closed from another thread, and then
releases its HTTP connection at once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any


class ReleasableStream:
    """A model stream over one HTTP response (``_connection``), which :meth:`close` cuts off."""

    def __init__(self) -> None:
        self._connection: Any = None
        self._chunks: list[str] = []
        self._started = False
        self._finished = False
        self._closed = False

    def _start(self) -> None:
        if self._started:
            raise RuntimeError("a model stream is read once")
        self._started = True

    def close(self) -> None:
        self._closed = True
        self._release()

    def _release(self) -> None:
        """Closes the HTTP response; its socket is shut down first, which also ends a read another thread
        is waiting in."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        shutdown = self._shutdown_of(connection)
        if shutdown is not None:
            with contextlib.suppress(RuntimeError, ValueError, OSError):  # already released or closed
                shutdown()
        connection.close()

    def _shutdown_of(self, connection: Any) -> Callable[[], object] | None:
        """How to shut the connection's socket down (None: only close it)."""
        raise NotImplementedError
