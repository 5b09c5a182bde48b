"""The attack catalogue through the running local API (`chatbot-local` in a subprocess), issue 3.

The local API runs the real authorizer and chat handlers behind its API Gateway emulation, with the
tests' loopback issuer as OIDC_ISSUER (so the tests hold the signing key and count JWKS fetches).
Every attack must come back as API Gateway's own 403, be denied by the authorizer for its reason, and
leave none of the token's text in anything the process printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.attacks import ATTACK_IDS, ATTACKS, OWN_SESSION, Attack, SessionGrant, Target, bearer
from support.issuer_server import IssuerServer
from support.tokens import segments_text

from tools.local_api import ROOT, free_port

pytestmark = pytest.mark.local_api

EXECUTABLE = ROOT / ".venv" / "bin" / "chatbot-local"
SESSION_TTL_SECONDS = 60
# Configuration a developer may have exported must not leak into this run.
_OWN_CONFIGURATION = ("OIDC_", "ADMIN_", "ALLOW_", "SESSION_", "MAX_", "RATE_", "ANON_", "MODEL_", "BEDROCK_", "PII_")


@dataclass
class Reply:
    status: int
    body: Any
    elapsed: float
    log: str  # what the process printed while answering


@dataclass
class LocalApi:
    process: subprocess.Popen[str]
    base: str
    log_path: Path
    issuer: IssuerServer
    early: SessionGrant | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def call(self, method: str, path: str, authorization: str | None = None) -> Reply:
        headers = {"Authorization": authorization} if authorization is not None else {}
        request = urllib.request.Request(self.base + path, method=method, headers=headers)
        offset = self.log_path.stat().st_size
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        elapsed = time.monotonic() - started
        time.sleep(0.02)  # let the process finish writing its lines for this request
        with self.log_path.open(errors="replace") as log:
            log.seek(offset)
            printed = log.read()
        return Reply(status, json.loads(raw) if raw else None, elapsed, printed)

    def new_session(self) -> SessionGrant:
        reply = self.call("POST", "/v1/anonymous-sessions")
        assert reply.status == 201, reply
        return SessionGrant(reply.body["session_id"], reply.body["session_token"])

    def target(self) -> Target:
        return Target(self.issuer.issuer, self.new_session)


def path_of(route: str, **parameters: str) -> tuple[str, str]:
    method, _, template = route.partition(" ")
    for name, value in parameters.items():
        template = template.replace("{" + name + "}", value)
    return method, template


def deny_reasons(printed: str) -> list[str | None]:
    reasons: list[str | None] = []
    for line in printed.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") == "denied":
            reasons.append(record.get("reason"))
    return reasons


@pytest.fixture(scope="module")
def local_api(issuer_server: IssuerServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    issuer_server.down = False
    log_path = tmp_path_factory.mktemp("attack-log") / "chatbot-local.log"
    environ = {name: value for name, value in os.environ.items() if not name.startswith(_OWN_CONFIGURATION)}
    environ.update(
        {
            "CHATBOT_LOCAL_STATE_DIR": str(tmp_path_factory.mktemp("attack-state")),
            "OIDC_ISSUER": issuer_server.url,
            "OIDC_AUDIENCE": issuer_server.issuer.audience,
            "SESSION_TTL_SECONDS": str(SESSION_TTL_SECONDS),
            "ANON_SESSIONS_PER_HOUR": "1000",
            # Everything the functions log, debug included, goes to the captured output.
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
        }
    )
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(EXECUTABLE),
                *("--host", "127.0.0.1", "--port", str(port), "--web-port", str(free_port())),
                *("--ws-port", str(free_port())),
            ],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    api = LocalApi(process, f"http://127.0.0.1:{port}", log_path, issuer_server)
    try:
        deadline = time.monotonic() + 60
        while "API:" not in api.log():
            assert process.poll() is None, api.log()
            assert time.monotonic() < deadline, "chatbot-local did not start"
            time.sleep(0.1)
        api.early = api.new_session()  # expires SESSION_TTL_SECONDS from now: see the last test
        yield api
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)


@pytest.mark.parametrize("attack", ATTACKS, ids=ATTACK_IDS)
def test_attack_is_refused_by_the_gateway_with_403_and_never_printed(local_api: LocalApi, attack: Attack) -> None:
    authorization = attack.authorization(local_api.target())
    method, path = path_of(attack.route, **attack.path_parameters())

    reply = local_api.call(method, path, authorization)

    assert (reply.status, reply.body) == (403, {"message": "Forbidden"})
    assert deny_reasons(reply.log) == [attack.reason]
    assert "raised" not in reply.log
    for piece in segments_text(authorization.partition(" ")[2], public=(local_api.issuer.url,)):
        assert piece not in local_api.log()


def test_a_valid_token_is_allowed_and_not_printed(local_api: LocalApi) -> None:
    token = local_api.issuer.issuer.token(sub="local-alice")
    reply = local_api.call("GET", "/v1/sessions", bearer(token))
    assert reply.status == 200
    assert all(piece not in local_api.log() for piece in segments_text(token, public=(local_api.issuer.url,)))


def test_thirty_unknown_kids_in_a_row_cost_at_most_one_jwks_fetch(local_api: LocalApi) -> None:
    issuer = local_api.issuer.issuer
    assert local_api.call("GET", "/v1/sessions", bearer(issuer.token())).status == 200  # keys are loaded
    before = local_api.issuer.jwks_requests
    started = time.monotonic()
    for n in range(30):
        reply = local_api.call("GET", "/v1/sessions", bearer(issuer.token_with(headers={"kid": f"local-made-up-{n}"})))
        assert reply.status == 403
    assert time.monotonic() - started < 30  # one cooldown window
    assert local_api.issuer.jwks_requests - before <= 1


def test_a_10_kb_authorization_header_is_answered_fast(local_api: LocalApi) -> None:
    reply = local_api.call("GET", "/v1/sessions", bearer("eyJ" + "A" * 10_240))
    assert reply.status == 403
    assert deny_reasons(reply.log) == ["too_large"]
    assert reply.elapsed < 1.0


def test_a_session_token_on_another_session_is_a_404_from_the_chat_function(local_api: LocalApi) -> None:
    mine, theirs = local_api.new_session(), local_api.new_session()
    assert local_api.call(*path_of(OWN_SESSION, session_id=mine.session_id), bearer(mine.token)).status == 200
    reply = local_api.call(*path_of(OWN_SESSION, session_id=theirs.session_id), bearer(mine.token))
    assert reply.status == 404
    assert reply.body["error"]["code"] == "not_found"


def test_a_cached_allow_is_not_served_on_another_route_or_to_another_principal(local_api: LocalApi) -> None:
    issuer = local_api.issuer.issuer
    alice, bob = issuer.token(sub="cache-alice"), issuer.token(sub="cache-bob")
    created = local_api.call("POST", "/v1/sessions", bearer(alice))
    assert created.status == 201
    assert local_api.call("GET", "/v1/sessions", bearer(alice)).status == 200  # now cached for this route
    admin = local_api.call("DELETE", "/v1/admin/users/cache-bob", bearer(alice))
    assert admin.status == 403
    assert deny_reasons(admin.log) == ["missing_role"]
    listed = local_api.call("GET", "/v1/sessions", bearer(bob))
    assert listed.status == 200
    assert listed.body == {"sessions": [], "next_cursor": None}


def test_an_expired_session_token_is_denied(local_api: LocalApi) -> None:
    # Kept last: the session made when the API started expires SESSION_TTL_SECONDS later.
    early = local_api.early
    assert early is not None
    expires_at = int(early.token.split(".")[2])
    time.sleep(max(0.0, expires_at - time.time() + 1))
    reply = local_api.call(*path_of(OWN_SESSION, session_id=early.session_id), bearer(early.token))
    assert reply.status == 403
    assert deny_reasons(reply.log) == ["expired"]
