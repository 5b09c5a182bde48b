"""A live connection of the local WebSocket API, and API Gateway's limits on connections."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

from chatbot_local.websocket_events import Handshake

API_GATEWAY_MAX_MESSAGE_BYTES = 128 * 1024


@dataclass(frozen=True)
class ConnectionLimits:
    """API Gateway's quotas; shorter in tests."""

    idle_seconds: float = 600.0
    max_lifetime_seconds: float = 7200.0
    max_message_bytes: int = API_GATEWAY_MAX_MESSAGE_BYTES


@dataclass
class Connection:
    handshake: Handshake
    socket: web.WebSocketResponse
    started: float  # event-loop time
    last_active: float
    last_active_at: float = field(default_factory=time.time)  # wall clock, for GET @connections
    close_code: int | None = None  # the code the server closed with, if it did
    close_reason: str = ""

    def touch(self, loop_time: float) -> None:
        self.last_active, self.last_active_at = loop_time, time.time()

    async def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        await self.socket.close(code=code, message=reason.encode())
