"""Stream tickets for the WebSocket API: authorised like every session route, then issued for the
caller's own session (docs/streaming.md). No HTTP and no boto3 here."""

from __future__ import annotations

from pydantic import BaseModel, Field

from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.errors import ForbiddenError, NotFoundError
from chatbot_security.identity.principal import Principal
from chatbot_security.storage.records import rfc3339
from chatbot_security.storage.tickets import TicketGrant, TicketNotIssued, TicketStore


class StreamTicket(BaseModel):
    ticket: str = Field(description="Single use, at most 60 seconds; the one credential allowed in a URL")
    expires_at: str = Field(description="RFC 3339: the ticket is refused from this moment")
    url: str = Field(description="The WebSocket URL to connect to: STREAM_URL with `?ticket=<ticket>`")


def issue_stream_ticket(
    conversations: Conversations, tickets: TicketStore, principal: Principal, session_id: str
) -> StreamTicket:
    """A ticket that opens one connection to ``session_id`` as the caller, until the earlier of 60
    seconds and the caller's credential expiry. 404 when streaming is off or the session is not the
    caller's live one (the ownership check of every session route)."""
    stream_url = conversations.settings.stream_url
    if stream_url is None:
        raise NotFoundError()
    conversations.get_session(principal, session_id)  # owner only; anonymous: its own session only
    if principal.expires_at is None:
        raise ForbiddenError()  # a connection must know when its credential ends
    grant = TicketGrant(
        owner=conversations.identity.owner_of(principal),
        kind=principal.kind,
        session_id=session_id,
        credential_exp=principal.expires_at,
    )
    try:
        issued = tickets.issue(grant)
    except TicketNotIssued:
        raise ForbiddenError() from None
    return StreamTicket(
        ticket=issued.ticket, expires_at=rfc3339(issued.expires_at), url=f"{stream_url}?ticket={issued.ticket}"
    )
