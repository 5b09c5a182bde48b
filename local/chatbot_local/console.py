"""The console of `chatbot-local serve`: one line per request, with the authorizer's denial reason.

The functions log JSON through Powertools at `POWERTOOLS_LOG_LEVEL` (WARNING locally, so their
INFO lines stay off the console). The authorizer's "denied" record is INFO: a handler on the
functions' logger keeps its `reason` for the gateway's line, without printing the record.
"""

from __future__ import annotations

import logging
import threading


class DenialReasons(logging.Handler):
    """Remembers, per thread, the `reason` of the last log record that carries one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        reason = getattr(record, "reason", None)
        if isinstance(reason, str):
            self._local.reason = reason

    def take(self) -> str | None:
        """The reason recorded in this thread since the last call (then forgotten)."""
        reason: str | None = getattr(self._local, "reason", None)
        self._local.reason = None
        return reason


def capture_denial_reasons() -> DenialReasons:
    """Attach a DenialReasons handler to the functions' logger (imported with the handlers).

    The logger itself is lowered to INFO so the "denied" record reaches this handler; its own
    handlers keep the configured level, so the console prints what it printed before.
    """
    capture = DenialReasons()
    try:
        from chatbot_security.platform.observability import logger as functions_logger
    except ImportError:
        return capture
    underlying = logging.getLogger(functions_logger.name)
    configured = underlying.getEffectiveLevel()
    for handler in underlying.handlers:
        if handler.level < configured:
            handler.setLevel(configured)
    if configured > logging.INFO:
        underlying.setLevel(logging.INFO)
    underlying.addHandler(capture)
    return capture
