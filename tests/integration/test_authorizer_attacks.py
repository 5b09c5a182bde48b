"""The attack catalogue against the real authorizer handler, in process (issue 3).

Each attack is denied for its own reason (so none of them "passes" by tripping an earlier, unrelated
check or an exception), and nothing of the token reaches the logs.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from support.api import InProcessApi
from support.attacks import ATTACK_IDS, ATTACKS, OWN_SESSION, Attack, SessionGrant, Target, bearer
from support.issuer_server import IssuerServer
from support.tokens import segments_text

from authorizer.handler import lambda_handler
from tools.lambda_events import authorizer_event

UNKNOWN_KID_FLOOD = 30


@pytest.fixture
def target(oidc_env: IssuerServer, lambda_context: Any, request: pytest.FixtureRequest) -> Target:
    def new_session() -> SessionGrant:
        request.getfixturevalue("aws")  # moto only for the attacks that need a real session
        reply = InProcessApi(lambda_context).call("POST /v1/anonymous-sessions", None)
        assert reply.status == 201
        return SessionGrant(reply.body["session_id"], reply.body["session_token"])

    return Target(oidc_env.issuer, new_session)


def deny_reasons(logs: str) -> list[str]:
    return [record["reason"] for record in map(json.loads, logs.splitlines()) if record.get("message") == "denied"]


@pytest.mark.parametrize("attack", ATTACKS, ids=ATTACK_IDS)
def test_attack_is_denied_for_its_reason_and_never_logged(
    attack: Attack, target: Target, lambda_context: Any, log_output: Any
) -> None:
    # Given a forged credential
    authorization = attack.authorization(target)
    log_output.seek(0)
    log_output.truncate()
    # When the authorizer sees it
    decision = lambda_handler(authorizer_event(attack.route, authorization, **attack.path_parameters()), lambda_context)
    # Then it is denied for the expected reason, and none of the token's text is in the logs
    assert decision == {"isAuthorized": False}
    logs = log_output.getvalue()
    assert deny_reasons(logs) == [attack.reason]
    for piece in segments_text(authorization.partition(" ")[2]):
        assert piece not in logs


def test_thirty_unknown_kids_in_a_row_cost_at_most_one_jwks_fetch(
    oidc_env: IssuerServer, lambda_context: Any, log_output: Any
) -> None:
    issuer = oidc_env.issuer
    assert lambda_handler(authorizer_event("POST /v1/sessions", bearer(issuer.token())), lambda_context)["isAuthorized"]
    before = oidc_env.jwks_requests
    started = time.monotonic()
    for n in range(UNKNOWN_KID_FLOOD):
        token = issuer.token_with(headers={"kid": f"made-up-kid-{n}"})
        assert lambda_handler(authorizer_event("POST /v1/sessions", bearer(token)), lambda_context) == {
            "isAuthorized": False
        }
    assert time.monotonic() - started < 30  # all inside one cooldown window
    assert oidc_env.jwks_requests - before <= 1
    assert deny_reasons(log_output.getvalue()).count("unknown_kid") == UNKNOWN_KID_FLOOD


def test_a_10_kb_authorization_header_is_refused_before_any_parsing_and_fast(
    oidc_env: IssuerServer, lambda_context: Any, log_output: Any
) -> None:
    event = authorizer_event("POST /v1/sessions", bearer("eyJ" + "A" * 10_240))
    fetches = oidc_env.jwks_requests
    started = time.perf_counter()
    decision = lambda_handler(event, lambda_context)
    elapsed = time.perf_counter() - started
    assert decision == {"isAuthorized": False}
    assert deny_reasons(log_output.getvalue()) == ["too_large"]
    assert oidc_env.jwks_requests == fetches  # refused before any key lookup
    assert elapsed < 0.25


def test_a_session_token_on_another_session_passes_the_route_check_and_is_refused_by_the_chat_function(
    target: Target, lambda_context: Any
) -> None:
    # The authorizer decides per route, never per path (its cache key has no path): the chat function
    # refuses every session but the token's own, with the same 404 as a session that does not exist.
    mine, theirs = target.new_session(), target.new_session()
    api = InProcessApi(lambda_context)
    assert api.call(OWN_SESSION, mine.token, session_id=mine.session_id).status == 200
    reply = api.call(OWN_SESSION, mine.token, session_id=theirs.session_id)
    assert reply.status == 404
    assert reply.body["error"]["code"] == "not_found"


def test_an_expired_session_token_is_denied(
    oidc_env: IssuerServer, lambda_context: Any, aws: Any, log_output: Any
) -> None:
    import boto3

    from chatbot_security.identity import session_tokens

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=aws.secret_arns["SessionTokenSecret"])
    key = session_tokens.derive_key(secret["SecretString"])
    token = session_tokens.issue(key, "0b9f9a52-7c1e-4d4b-9a39-5d1f3a0c2b61", int(time.time()) - 1)
    event = authorizer_event(OWN_SESSION, bearer(token), session_id="0b9f9a52-7c1e-4d4b-9a39-5d1f3a0c2b61")
    assert lambda_handler(event, lambda_context) == {"isAuthorized": False}
    assert deny_reasons(log_output.getvalue()) == ["expired"]
    assert token not in log_output.getvalue()
