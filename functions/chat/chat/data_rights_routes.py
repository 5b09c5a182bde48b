"""HTTP routes of the caller's own data rights: export (GET /v1/me/export) and erasure (DELETE /v1/me).

They are declared on the chat API's resolver (importing this module registers them), like the routes of
:mod:`chat.api` (:mod:`chat.all_routes` imports them all), and feed the OpenAPI document the same way.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from chat.resolver import app, conversations, json_response, principal
from chat.routes import AUTHORIZED, BEARER, Cursor, responses
from chatbot_security.conversation.data_rights import DEFAULT_EXPORT_PAGE, DataRights, ExportPage
from chatbot_security.conversation.owner import Owner

ExportPageSize = Annotated[
    int, Query(ge=1, le=100, description="Messages per page (a page also visits at most this many sessions)")
]


def data_rights() -> DataRights:
    service = conversations()
    return DataRights(
        service.store,
        service.data_keys,
        service.identity,
        service.erasure,
        service.clock,
        usage=lambda owner: service.quotas.report(owner.key, owner.kind),
    )


def owner() -> Owner:
    return conversations().owner(principal())


@app.get(
    "/v1/me/export",
    summary="Export everything held about you, one page at a time",
    description=(
        "Your live sessions, oldest first, each with its messages decrypted (an anonymous token: its own "
        "session). Pages hold at most `limit` messages and stay far below Lambda's 6 MB response limit; a "
        "session whose messages do not fit continues on the next page (join pages by `session_id`). Follow "
        "`next_cursor` until it is null."
    ),
    security=BEARER,
    responses=responses(200, "One page of your data", ExportPage, *AUTHORIZED, 404),
)
def handle_export_my_data(limit: ExportPageSize = DEFAULT_EXPORT_PAGE, cursor: Cursor = None) -> Response[str]:
    return json_response(200, data_rights().export(owner(), limit, cursor))


@app.delete(
    "/v1/me",
    status_code=204,
    summary="Erase every session, message and idempotency record of yours",
    description=(
        "An anonymous token erases its session and is refused afterwards. Rate and token counters are kept "
        "until they expire (at most a day), so that erasing cannot reset a budget. 503 with Retry-After when "
        "part of the erasure could not be done now: repeating the call finishes it."
    ),
    security=BEARER,
    responses=responses(204, "Erased", None, *AUTHORIZED, 404),
)
def handle_erase_my_data() -> None:
    data_rights().erase(owner())  # audited by the logic, whatever the outcome
