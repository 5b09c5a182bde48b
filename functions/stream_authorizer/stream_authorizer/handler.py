"""The WebSocket API's ``$connect`` authorizer (docs/streaming.md): consume the stream ticket of the
query string, allow the one connection it was issued for, or deny. It never raises and never logs a
ticket.

API Gateway calls a WebSocket REQUEST authorizer with the REST-style event (``methodArn``,
``queryStringParameters``) and expects an IAM policy: Allow on the ``$connect`` method ARN with a
context of flat values, or Deny, which API Gateway answers with 403 on the handshake (a missing
``ticket`` never reaches this function: the identity source makes it a 401). Lean on purpose: no
event-handler framework and no pydantic, so that a cold handshake waits as little as possible.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatbot_security.platform.aws_clients import client
from chatbot_security.platform.lean_settings import get_lean_settings
from chatbot_security.platform.observability import logger, metrics, tracer
from chatbot_security.storage.tickets import DynamoTicketStore, TicketGrant, TicketStore, is_well_formed

# The method ARN of a WebSocket $connect: arn:<partition>:execute-api:<region>:<account>:<api>/<stage>/$connect
_CONNECT_ARN = re.compile(r"arn:aws[a-z-]*:execute-api:[a-z0-9-]+:\d{12}:[a-z0-9]+/[A-Za-z0-9_-]+/\$connect")
_PRINCIPAL = "stream-ticket"  # the bearer of a ticket: who it is travels in the context


@functools.cache
def default_ticket_store() -> DynamoTicketStore:
    return DynamoTicketStore(lambda: client("dynamodb"), get_lean_settings().table_name)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    tickets: TicketStore | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    method_arn = event.get("methodArn") if isinstance(event, Mapping) else None
    try:
        grant = _admit(event, method_arn, tickets, clock)
    except ConnectDenied as denied:
        return _deny(denied.reason, method_arn)
    except Exception as error:  # deny, never raise: an exception would be a 500 and say nothing useful
        return _deny("internal_error", method_arn, error_type=type(error).__name__)
    logger.debug("allowed", extra={"principal_kind": grant.kind})
    return _policy("Allow", str(method_arn), _context(grant))


class ConnectDenied(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _admit(
    event: Mapping[str, Any], method_arn: object, tickets: TicketStore | None, clock: Callable[[], float]
) -> TicketGrant:
    """The grant of the event's ticket, consumed; raises :class:`ConnectDenied` with the reason otherwise."""
    if not isinstance(method_arn, str) or not _CONNECT_ARN.fullmatch(method_arn):
        raise ConnectDenied("not_connect")
    ticket = _ticket(event)
    if ticket is None:
        raise ConnectDenied("no_ticket")
    if not is_well_formed(ticket):
        raise ConnectDenied("malformed")  # no data access for what cannot be a ticket
    grant = (tickets or default_ticket_store()).consume(ticket)
    if grant is None:
        raise ConnectDenied("refused")  # unknown, used or expired: indistinguishable
    if grant.credential_exp <= clock():
        raise ConnectDenied("credential_expired")
    return grant


def _ticket(event: Mapping[str, Any]) -> object:
    """The ``ticket`` query parameter as API Gateway decoded it; None when absent."""
    query = event.get("queryStringParameters")
    return query.get("ticket") if isinstance(query, Mapping) else None


def _context(grant: TicketGrant) -> dict[str, str | int]:
    """What the stream function trusts about the connection, in API Gateway's flat context values."""
    return {
        "owner": grant.owner,
        "kind": grant.kind,
        "session_id": grant.session_id,
        "credential_exp": grant.credential_exp,
    }


def _policy(effect: str, method_arn: str, context: dict[str, str | int] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "principalId": _PRINCIPAL,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
    }
    if context is not None:
        response["context"] = context
    return response


def _deny(reason: str, method_arn: object, **extra: str) -> dict[str, Any]:
    logger.info("stream connection denied", extra={"reason": reason, **extra})
    metrics.add_metric(name="StreamAuthorizerDenied", unit=MetricUnit.Count, value=1)
    # A method ARN we did not recognise is not echoed back: the deny then names no resource of ours.
    resource = method_arn if isinstance(method_arn, str) and _CONNECT_ARN.fullmatch(method_arn) else "*"
    return _policy("Deny", resource)
