"""The HTTP route of the streaming front door: stream tickets (docs/streaming.md). Registered on the
chat API's resolver when a module imports it (:mod:`chat.all_routes`)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from chat.dependencies import default_ticket_store
from chat.resolver import app, conversations, json_response, principal
from chat.routes import AUTHORIZED, BEARER, SessionId, responses
from chatbot_security.conversation.stream_tickets import StreamTicket, issue_stream_ticket
from chatbot_security.storage.tickets import TicketStore


def tickets() -> TicketStore:
    store: TicketStore = app.context.get("tickets") or default_ticket_store()
    return store


@app.post(
    "/v1/sessions/<session_id>/stream-tickets",
    status_code=201,
    summary="Get a ticket to stream a session over the WebSocket API",
    description=(
        "Single use, valid for at most 60 seconds and never beyond the caller's credential; it opens one "
        "connection to this session, as the caller, until the credential expires. Connect to `url`. 404 also "
        "when streaming is not configured."
    ),
    security=BEARER,
    responses=responses(201, "The ticket and the URL to connect to", StreamTicket, *AUTHORIZED, 404),
)
def handle_create_stream_ticket(session_id: SessionId) -> Response[str]:
    return json_response(201, issue_stream_ticket(conversations(), tickets(), principal(), str(session_id)))
