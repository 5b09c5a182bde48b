"""Data access for the WebSocket stage's management API (the connection's callback URL): the only code
that pushes frames to a client or closes its connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class ConnectionGone(Exception):
    """The client has gone (GoneException, 410): nothing more can be sent on this connection."""


class ConnectionApi(Protocol):
    def post(self, connection_id: str, data: bytes) -> None: ...
    def close(self, connection_id: str) -> None: ...


class ManagementApi:
    """:class:`ConnectionApi` on ``apigatewaymanagementapi`` (PostToConnection, DeleteConnection)."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client

    def post(self, connection_id: str, data: bytes) -> None:
        """Send one frame; :class:`ConnectionGone` when the connection has closed."""
        client = self._client()
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
        except client.exceptions.GoneException:
            raise ConnectionGone() from None

    def close(self, connection_id: str) -> None:
        """Close the connection from the server's side; one already closed stays closed."""
        client = self._client()
        try:
            client.delete_connection(ConnectionId=connection_id)
        except client.exceptions.GoneException:
            return
