"""The stream function's routes: ``$connect``, ``$disconnect``, ``sendMessage`` and ``$default``.

``sendMessage`` runs the HTTP turn's first steps in the same order, with the same errors: the frame is
validated (no data access before), the connection is taken for one turn (its credential must still be
valid, and no other turn may be streaming on it), then the turn engine checks ownership, session
expiry, rate limit and idempotency and claims the turn. The worker answers it; a replayed finished turn
gets its ``done`` frame at once. Every refusal is an ``error`` frame; the connection stays open unless
it can serve nothing more (expired credential, session gone).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chatbot_security.conversation.errors import BusyError, ChatbotError, ForbiddenError, NotFoundError
from chatbot_security.conversation.failures import as_chatbot_error
from chatbot_security.conversation.models import MessageRequest, Turn
from chatbot_security.conversation.owner import Owner
from chatbot_security.conversation.turn_claims import ClaimedTurn
from chatbot_security.platform.observability import logger
from chatbot_security.storage.connections import (
    ConnectionBusy,
    ConnectionExpired,
    ConnectionRecord,
    ConnectionStore,
    ConnectionUnknown,
)
from stream import inbound, outbound
from stream.callbacks import ConnectionApi, ConnectionGone
from stream.connect import ConnectContext
from stream.handoff import TurnHandOff

# The connection is held for a turn as long as the engine holds the turn's claim: the model's time
# budget twice, plus the writes.
LEASE_MARGIN_SECONDS = 10


class TurnClaimer(Protocol):
    def claim(self, owner: Owner, session_id: str, request: MessageRequest) -> ClaimedTurn | Turn: ...


@dataclass
class StreamRoutes:
    connections: ConnectionStore
    callbacks: ConnectionApi
    engine: TurnClaimer
    handoff: TurnHandOff
    max_message_chars: int
    model_timeout_seconds: float
    clock: Callable[[], float] = time.time

    def connect(self, connection_id: str, context: ConnectContext) -> bool:
        """Bind the connection to its ticket's owner and session; False refuses it (expired already)."""
        if context.credential_exp <= int(self.clock()):
            return False
        self.connections.bind(
            connection_id, context.owner, str(context.session_id), context.credential_exp, kind=context.kind
        )
        return True

    def disconnect(self, connection_id: str) -> None:
        """Forget the connection. Best effort: API Gateway does not always send ``$disconnect``, and the
        item expires by TTL anyway."""
        try:
            self.connections.forget(connection_id)
        except Exception as error:
            logger.warning("connection not forgotten", extra={"error_type": type(error).__name__})

    def send_message(self, connection_id: str, request_id: str, body: object, is_base64: bool) -> str:
        """Validate, take the connection, claim the turn and hand it to the worker; the outcome's code."""
        try:
            request = inbound.parse_send_message(body, is_base64, self.max_message_chars)
        except ChatbotError as error:
            return self._refuse(connection_id, request_id, error)
        now = int(self.clock())
        try:
            record = self.connections.start_turn(connection_id, now, now + self._lease_seconds())
        except ConnectionBusy:
            return self._refuse(connection_id, request_id, BusyError())  # the streaming turn goes on
        except (ConnectionExpired, ConnectionUnknown):
            return self._refuse(connection_id, request_id, ForbiddenError(), close=True)
        except Exception as error:  # the table is unavailable: nothing was taken
            return self._refuse(connection_id, request_id, as_chatbot_error(error))
        return self._claim(connection_id, request_id, record, request)

    def unknown_action(self, connection_id: str, request_id: str, body: object, is_base64: bool) -> str:
        """``$default``: a frame API Gateway could not route gets the error its frame deserves."""
        refusal = inbound.refusal_of_unroutable(body, is_base64)
        error = refusal if isinstance(refusal, ChatbotError) else ChatbotError()
        return self._refuse(connection_id, request_id, error)

    # -- helpers ----------------------------------------------------------------------------
    def _claim(self, connection_id: str, request_id: str, record: ConnectionRecord, request: MessageRequest) -> str:
        """Claim the turn and hand it to the worker, which frees the connection when it is done; any other
        outcome frees it here."""
        handed_off = False
        try:
            claimed = self.engine.claim(_owner(record), record.session_id, request)
            if isinstance(claimed, Turn):
                self._send(connection_id, outbound.done_frame(claimed))  # a repeat: the first answer
                return "replayed"
            self.handoff.hand_off(
                {"turn": claimed.to_event(), "connection_id": connection_id, "request_id": request_id}
            )
            handed_off = True
            return "claimed"
        except NotFoundError as error:  # the session was deleted or has expired: the connection is useless
            return self._refuse(connection_id, request_id, error, close=True)
        except Exception as error:
            return self._refuse(connection_id, request_id, as_chatbot_error(error))
        finally:
            if not handed_off:
                self._finish(connection_id)

    def _lease_seconds(self) -> int:
        return int(2 * self.model_timeout_seconds) + LEASE_MARGIN_SECONDS

    def _refuse(self, connection_id: str, request_id: str, error: ChatbotError, *, close: bool = False) -> str:
        self._send(connection_id, outbound.error_frame(error, request_id))
        if close:
            try:
                self.callbacks.close(connection_id)
            except Exception as failure:  # it ends by itself at the latest with API Gateway's limit
                logger.warning("connection not closed", extra={"error_type": type(failure).__name__})
        return error.code

    def _send(self, connection_id: str, frame: bytes) -> None:
        try:
            self.callbacks.post(connection_id, frame)
        except ConnectionGone:
            logger.info("client gone before the answer")

    def _finish(self, connection_id: str) -> None:
        try:
            self.connections.finish_turn(connection_id)
        except Exception as error:  # the lease runs out by itself
            logger.warning("connection not freed", extra={"error_type": type(error).__name__})


def _owner(record: ConnectionRecord) -> Owner:
    if record.kind == "user":
        return Owner(key=record.owner, kind="user")
    return Owner(key=record.owner, kind="anonymous", session_id=record.session_id)  # the narrower of the two
