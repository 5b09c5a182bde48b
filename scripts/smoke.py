"""Smoke test of a deployed chatbot endpoint: routes, statuses, security headers, CORS and ownership.

    python3 scripts/smoke.py --url https://<api>.execute-api.<region>.amazonaws.com/ [--origin ORIGIN]
                             [--create] [--anonymous]          (make smoke URL=... TOKEN=... [TOKEN2=...])

Tokens are read from SMOKE_TOKEN and SMOKE_TOKEN2 (never from the command line, where other users of the
machine could read them) and never printed. Read-only unless ``--create``: then it creates one session,
posts ONE message (so that a retired or inaccessible model fails here with its 502, not for the first
user), reads it back and deletes the session. ``--anonymous`` (with ``--create``) takes an anonymous
session instead of SMOKE_TOKEN. Python standard library only, so it runs anywhere. Exit status 0 when
every check passes, 1 otherwise (each failure printed with its reason), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_SECONDS = 35.0  # the model's 25 s budget, the function's 29 s, API Gateway's 30 s, and a margin
SMOKE_MESSAGE = "Smoke test after a deploy: please answer with one word."
GATEWAY_BODIES = {401: {"message": "Unauthorized"}, 403: {"message": "Forbidden"}, 404: {"message": "Not Found"}}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to check, never followed (it would carry the token elsewhere)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Failure(Exception):
    """One check did not hold; the message says what was expected and what came back."""


class Skipped(Exception):
    """A check that this run cannot make (said so, not counted as a failure)."""


@dataclass
class Smoke:
    base: str
    token: str = ""
    token2: str = ""
    origin: str = ""
    timeout: float = TIMEOUT_SECONDS
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base = self.base.rstrip("/")
        self._opener = urllib.request.build_opener(_NoRedirects)

    # ------------------------------------------------------------------ plumbing

    def call(  # nosec B107 - an empty token means no Authorization header
        self, method: str, path: str, token: str = "", body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"User-Agent": "chatbot-smoke", "Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)  # noqa: S310 - http(s) only, checked in main
        try:
            with self._opener.open(request, timeout=self.timeout) as response:  # nosec B310
                answer = Answer(response.status, _lower(response.headers), response.read())
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, _lower(error.headers), error.read())
            error.close()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise Failure(f"{method} {_route(path)}: no answer ({error})") from error
        if answer.status >= 500:
            self.server_errors.append(f"{method} {_route(path)} -> {answer.status} {_excerpt(answer)}")
        return answer

    def check(self, name: str, step: Callable[[], None]) -> None:
        try:
            step()
        except Skipped as reason:
            self.skipped.append(name)
            print(f"skip {name}: {reason}", flush=True)
        except Failure as failure:
            self.failed.append(f"{name}: {failure}")
            print(f"FAIL {name}: {failure}", flush=True)
        else:
            self.passed.append(name)
            print(f"ok   {name}", flush=True)

    # ------------------------------------------------------------------ checks

    def gateway_refusals(self) -> None:
        self.check("401 without credentials", lambda: expect_gateway(self.call("GET", "/v1/sessions"), 401))
        garbage = "smoke-" + uuid.uuid4().hex
        self.check("403 with a garbage token", lambda: expect_gateway(self.call("GET", "/v1/sessions", garbage), 403))
        unknown = f"/v1/smoke-{uuid.uuid4().hex[:8]}"
        self.check("404 for an unknown route", lambda: expect_gateway(self.call("GET", unknown, garbage), 404))

    def reads(self, token: str) -> None:
        def list_sessions() -> None:
            answer = self.call("GET", "/v1/sessions", token)
            expect_function(answer, 200)
            if not isinstance(answer.json().get("sessions"), list):
                raise Failure(f"200 without a sessions list: {_excerpt(answer)}")

        self.check("200 listing the caller's sessions, with the security headers", list_sessions)
        missing = f"/v1/sessions/{uuid.uuid4()}"
        self.check("404 for a random session id", lambda: expect_error(self.call("GET", missing, token), 404))

    def cors(self, token: str) -> None:
        def preflight() -> None:
            answer = self.call("OPTIONS", "/v1/sessions", headers=_preflight_headers(self.origin))
            if answer.status not in (200, 204):
                raise Failure(f"preflight answered {answer.status}, expected 204 {_excerpt(answer)}")
            if answer.headers.get("access-control-allow-origin") != self.origin:
                raise Failure(f"preflight allows {answer.headers.get('access-control-allow-origin')!r}")
            methods = _items(answer.headers.get("access-control-allow-methods", ""))
            headers = _items(answer.headers.get("access-control-allow-headers", ""))
            if "post" not in methods or not {"authorization", "content-type"} <= headers:
                raise Failure(f"preflight allows methods {sorted(methods)} and headers {sorted(headers)}")

        def other_origin() -> None:
            stranger = "https://smoke-not-allowed.invalid"
            answer = self.call("OPTIONS", "/v1/sessions", headers=_preflight_headers(stranger))
            if answer.headers.get("access-control-allow-origin") in (stranger, "*"):
                raise Failure("a preflight from an origin that is not configured is allowed")

        def simple_request() -> None:
            answer = self.call("GET", "/v1/sessions", token, headers={"Origin": self.origin})
            if answer.headers.get("access-control-allow-origin") != self.origin:
                raise Failure(f"no Access-Control-Allow-Origin for {self.origin} on a {answer.status}")

        self.check(f"CORS preflight for {self.origin}", preflight)
        self.check("CORS refuses another origin", other_origin)
        if token:
            self.check(f"CORS header on an authorized request from {self.origin}", simple_request)

    def ownership_of_existing(self, token: str, token2: str) -> None:
        def other_reads_nothing() -> None:
            sessions = self.call("GET", "/v1/sessions", token).json() or {}
            listed = sessions.get("sessions") or []
            if not listed:
                raise Skipped("the first token has no session to try (--create makes one)")
            expect_error(self.call("GET", f"/v1/sessions/{listed[0]['session_id']}", token2), 404)

        self.check("404 when the second token reads the first one's session", other_reads_nothing)

    def conversation(self, token: str, token2: str) -> None:
        """One session, one message, read back, tried by the other token, deleted."""
        created: dict[str, str] = {}

        def create() -> None:
            answer = self.call("POST", "/v1/sessions", token, body={})
            expect_function(answer, 201)
            created["id"] = str(answer.json()["session_id"])

        self.check("201 creating a session", create)
        if "id" in created:
            self.turn(token, created["id"])
            if token2:
                self.foreign_access(token2, created["id"])
            self.delete(token, created["id"])

    def anonymous_conversation(self) -> None:
        created: dict[str, str] = {}

        def create() -> None:
            answer = self.call("POST", "/v1/anonymous-sessions", body={})
            expect_function(answer, 201)
            body = answer.json()
            created.update(id=str(body["session_id"]), token=str(body["session_token"]))

        self.check("201 creating an anonymous session", create)
        if "id" in created:
            self.reads(created["token"])
            self.turn(created["token"], created["id"])
            self.delete(created["token"], created["id"])

    def turn(self, token: str, session_id: str) -> None:
        messages = f"/v1/sessions/{session_id}/messages"

        def post() -> None:
            answer = self.call("POST", messages, token, body={"content": SMOKE_MESSAGE})
            if answer.status in (502, 504):
                raise Failure(
                    f"the model failed ({answer.status} {_excerpt(answer)}): check the model id and its access in "
                    "this account and Region (docs/infrastructure.md, Default model)"
                )
            expect_function(answer, 201)
            reply = answer.json().get("assistant_message", {})
            if reply.get("role") != "assistant" or not reply.get("content"):
                raise Failure(f"201 without an assistant answer: {_excerpt(answer)}")

        def read_back() -> None:
            answer = self.call("GET", messages, token)
            expect_function(answer, 200)
            if len(answer.json().get("messages", [])) != 2:
                raise Failure(f"expected the question and the answer, got {_excerpt(answer)}")

        self.check("201 posting one message: the model answers", post)
        self.check("200 reading the conversation back", read_back)

    def foreign_access(self, token2: str, session_id: str) -> None:
        path = f"/v1/sessions/{session_id}"
        self.check("404 when another user reads the session", lambda: expect_error(self.call("GET", path, token2), 404))
        self.check(
            "404 when another user reads its messages",
            lambda: expect_error(self.call("GET", path + "/messages", token2), 404),
        )
        self.check(
            "404 when another user posts to it",
            lambda: expect_error(self.call("POST", path + "/messages", token2, body={"content": "x"}), 404),
        )
        self.check("404 when another user deletes it", lambda: expect_error(self.call("DELETE", path, token2), 404))

    def delete(self, token: str, session_id: str) -> None:
        path = f"/v1/sessions/{session_id}"

        def remove() -> None:
            answer = self.call("DELETE", path, token)
            if answer.status != 204:
                raise Failure(f"expected 204, got {answer.status} {_excerpt(answer)}")
            expect_security_headers(answer, body=False)

        self.check("204 deleting the session", remove)
        self.check("404 for the deleted session", lambda: expect_error(self.call("GET", path, token), 404))

    def no_server_errors(self) -> None:
        def none() -> None:
            if self.server_errors:
                raise Failure("; ".join(self.server_errors))

        self.check("no 5xx answer", none)


# --------------------------------------------------------------------------- expectations


def expect_gateway(answer: Answer, status: int) -> None:
    """API Gateway's own answer: its status and its exact body."""
    if answer.status != status or answer.json() != GATEWAY_BODIES[status]:
        raise Failure(f"expected {status} {json.dumps(GATEWAY_BODIES[status])}, got {answer.status} {_excerpt(answer)}")


def expect_function(answer: Answer, status: int) -> None:
    if answer.status != status:
        raise Failure(f"expected {status}, got {answer.status} {_excerpt(answer)}")
    expect_security_headers(answer, body=True)
    if not isinstance(answer.json(), dict):
        raise Failure(f"{status} without a JSON object body: {_excerpt(answer)}")


def expect_error(answer: Answer, status: int) -> None:
    """The chat function's error shape: {"error": {"code", "message", "request_id"}} and its headers."""
    if answer.status != status:
        raise Failure(f"expected {status}, got {answer.status} {_excerpt(answer)}")
    expect_security_headers(answer, body=True)
    error = (answer.json() or {}).get("error") if isinstance(answer.json(), dict) else None
    if not isinstance(error, dict) or not {"code", "message", "request_id"} <= set(error):
        raise Failure(f"{status} without the error body: {_excerpt(answer)}")


def expect_security_headers(answer: Answer, body: bool) -> None:
    problems = []
    if "no-store" not in answer.headers.get("cache-control", ""):
        problems.append(f"Cache-Control {answer.headers.get('cache-control')!r} (expected no-store)")
    if answer.headers.get("x-content-type-options") != "nosniff":
        problems.append(f"X-Content-Type-Options {answer.headers.get('x-content-type-options')!r}")
    if body and not answer.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"Content-Type {answer.headers.get('content-type')!r}")
    if problems:
        raise Failure(f"{answer.status} with " + ", ".join(problems))


# --------------------------------------------------------------------------- helpers


def _lower(headers: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in (headers.items() if headers else [])}


def _items(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",") if item.strip()}


def _preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


def _route(path: str) -> str:
    """The path with ids replaced, for messages (a session id is not a secret, but needs no printing)."""
    parts = ["{id}" if len(part) >= 32 else part for part in path.split("/")]
    return "/".join(parts)


def _excerpt(answer: Answer) -> str:
    text = answer.body[:200].decode("utf-8", errors="replace").replace("\n", " ")
    return text or "(empty body)"


def run_smoke(smoke: Smoke, create: bool, anonymous: bool) -> int:
    try:
        smoke.gateway_refusals()
        if smoke.token:
            smoke.reads(smoke.token)
        if smoke.origin:
            smoke.cors(smoke.token)
        if create and anonymous:
            smoke.anonymous_conversation()
        elif create and smoke.token:
            smoke.conversation(smoke.token, smoke.token2)
        elif smoke.token and smoke.token2:
            smoke.ownership_of_existing(smoke.token, smoke.token2)
    except Failure as failure:  # the endpoint stopped answering
        smoke.failed.append(str(failure))
        print(f"FAIL {failure}", flush=True)
    smoke.no_server_errors()
    skipped = f", {len(smoke.skipped)} skipped" if smoke.skipped else ""
    print(f"{len(smoke.passed)} checks passed, {len(smoke.failed)} failed{skipped} against {smoke.base}", flush=True)
    return 1 if smoke.failed else 0


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="base URL of the API (the stack's ApiUrl output)")
    parser.add_argument("--origin", default="", help="a configured front-end origin: checks CORS for it")
    parser.add_argument("--create", action="store_true", help="create a session, post one message, delete it")
    parser.add_argument("--anonymous", action="store_true", help="with --create: use an anonymous session")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    url = urllib.parse.urlsplit(arguments.url)
    if url.scheme not in ("https", "http") or not url.netloc:
        parser.error("--url must be an http(s) URL such as the stack's ApiUrl output")
    if url.scheme == "http" and url.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must be https (http only for a local API on loopback): the token would travel in clear")
    if arguments.anonymous and not arguments.create:
        parser.error("--anonymous needs --create")
    if arguments.create and not (arguments.anonymous or environ.get("SMOKE_TOKEN")):
        parser.error("--create needs SMOKE_TOKEN (or --anonymous)")
    smoke = Smoke(
        arguments.url,
        token=environ.get("SMOKE_TOKEN", ""),
        token2=environ.get("SMOKE_TOKEN2", ""),
        origin=arguments.origin,
        timeout=arguments.timeout,
    )
    return run_smoke(smoke, arguments.create, arguments.anonymous)


if __name__ == "__main__":
    sys.exit(main())
