"""The HTTP API emulation: CORS, routing, throttling, the Lambda authorizer and its cache, and
the Lambda proxy integration, in API Gateway's order and with API Gateway's own responses.

    preflight?            -> 204 (CORS headers for allowed origins only)
    no route              -> 404 {"message":"Not Found"}
    throttled             -> 429 {"message":"Too Many Requests"}
    identity source empty -> 401 {"message":"Unauthorized"}   (authorizer not called)
    authorizer says no    -> 403 {"message":"Forbidden"}
    authorizer fails      -> 500 {"message":"Internal Server Error"}
    function fails        -> 500 {"message":"Internal Server Error"}
    otherwise             -> the function's response
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from chatbot_local.cloudformation import TemplateError
from chatbot_local.cors import CorsPolicy
from chatbot_local.events import (
    ApiIdentity,
    HttpRequest,
    HttpResponse,
    IntegrationResponseError,
    authorizer_event,
    gateway_message,
    integration_event,
    integration_response,
    request_context,
)
from chatbot_local.lambdas import InvocationError, Invoker
from chatbot_local.routing import RouteMatch, RouteTable
from chatbot_local.template import AuthorizerSpec, HttpApiSpec, ThrottleSpec

API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
_CACHE_MAX_ENTRIES = 10_000
_CONTEXT_VARIABLES = {"routeKey", "stage", "apiId", "accountId", "domainName", "httpMethod", "path", "protocol"}

NOT_FOUND = (404, "Not Found")
UNAUTHORIZED = (401, "Unauthorized")
FORBIDDEN = (403, "Forbidden")
TOO_MANY_REQUESTS = (429, "Too Many Requests")
INTERNAL_ERROR = (500, "Internal Server Error")
TOO_LARGE = (413, "Request Entity Too Large")


@dataclass(frozen=True)
class Decision:
    """An authorizer's answer: allowed with a context, or a gateway error response."""

    allowed: bool
    context: Mapping[str, Any] | None = None
    error: tuple[int, str] | None = None
    reason: str | None = None


class AuthorizerCache:
    """Authorizer results keyed by authorizer and identity-source values, for the configured TTL."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, tuple[str, ...]], tuple[float, Decision]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, tuple[str, ...]]) -> Decision | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: tuple[str, tuple[str, ...]], decision: Decision, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            if len(self._entries) >= _CACHE_MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                while len(self._entries) >= _CACHE_MAX_ENTRIES:
                    del self._entries[next(iter(self._entries))]
            self._entries[key] = (now + ttl_seconds, decision)


class TokenBucket:
    """Stage/route throttling: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, spec: ThrottleSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = spec.rate_limit
        self._capacity = float(spec.burst_limit)
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def new_request_id() -> str:
    """Unique per request, shaped like API Gateway's (`JKJaXmPLvHcESHA=`)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


class Gateway:
    """Answers HttpRequests the way the template's HTTP API would."""

    def __init__(
        self,
        api: HttpApiSpec,
        functions: Mapping[str, Invoker],
        identity: ApiIdentity,
        *,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        denial_reason: Callable[[], str | None] | None = None,
    ) -> None:
        for authorizer in api.authorizers.values():
            _check_supported(authorizer)
        missing = {route.function_id for route in api.routes} | {a.function_id for a in api.authorizers.values()}
        missing -= set(functions)
        if missing:
            raise TemplateError(f"no function loaded for {', '.join(sorted(missing))}")
        self.api = api
        self._routes = RouteTable(api.routes)
        self._functions = functions
        self._identity = identity
        self._cors = CorsPolicy(api.cors) if api.cors else None
        self._log = log or (lambda line: None)
        self._clock = clock
        self._monotonic = monotonic
        self.authorizer_cache = AuthorizerCache(monotonic)
        self._buckets: dict[str, TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        # The reason the authorizer gave for its last denial in this thread (its log record).
        self._denial_reason = denial_reason or (lambda: None)
        self._request = threading.local()

    # Public entry points ----------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        started = self._monotonic()
        request_id = new_request_id()
        self._request.reason = None
        headers = request.headers
        match: RouteMatch | None = None
        if self._cors is not None and CorsPolicy.is_preflight(request.method, headers):
            response = HttpResponse(204, list(self._cors.preflight_headers(headers.get("origin")).items()))
            # Logged under the route it asks about, so no session id or subject reaches the log either.
            match = self._routes.match(headers.get("access-control-request-method", "").upper(), request.raw_path)
        else:
            match = self._routes.match(request.method, request.raw_path)
            response = self._dispatch(request, match, request_id)
            response = self._with_cors(response, headers.get("origin"))
        response.headers.append(("apigw-requestid", request_id))
        elapsed_ms = (self._monotonic() - started) * 1000
        reason = self._request.reason or _error_code(response)
        suffix = f" reason={reason}" if reason else ""
        self._log(f"{_route_label(request, match)} {response.status} {elapsed_ms:.0f}ms{suffix}")
        return response

    def too_large(self, request: HttpRequest) -> HttpResponse:
        """413 for a body over API Gateway's 10 MB limit (the body is not read)."""
        response = self._with_cors(gateway_message(*TOO_LARGE), request.headers.get("origin"))
        response.headers.append(("apigw-requestid", new_request_id()))
        self._log(f"{_route_label(request, None)} {response.status} 0ms reason=body_too_large")
        return response

    # Steps ------------------------------------------------------------------------------------

    def _dispatch(self, request: HttpRequest, match: RouteMatch | None, request_id: str) -> HttpResponse:
        if match is None:
            return gateway_message(*NOT_FOUND)
        if not self._admit(match.route.route_key):
            return gateway_message(*TOO_MANY_REQUESTS)
        context = request_context(request, match.route.route_key, request_id, self._clock(), self._identity)
        authorizer_context: Mapping[str, Any] | None = None
        if match.route.authorizer is not None:
            decision = self._authorize(self.api.authorizers[match.route.authorizer], request, match, context)
            if decision.error is not None:
                return gateway_message(*decision.error)
            authorizer_context = decision.context or {}
        event = integration_event(request, match, context, authorizer_context)
        try:
            return integration_response(self._functions[match.route.function_id].invoke(event))
        except (InvocationError, IntegrationResponseError) as error:
            self._log(f"{match.route.function_id}: {error}")
            return gateway_message(*INTERNAL_ERROR)

    def _admit(self, route_key: str) -> bool:
        spec = self.api.route_throttles.get(route_key) or self.api.default_throttle
        if spec is None:
            return True
        key = route_key if route_key in self.api.route_throttles else "$stage"
        with self._buckets_lock:
            bucket = self._buckets.setdefault(key, TokenBucket(spec, self._monotonic))
        return bucket.take()

    def _authorize(
        self, authorizer: AuthorizerSpec, request: HttpRequest, match: RouteMatch, context: dict[str, Any]
    ) -> Decision:
        values = [_identity_value(source, request, match, context) for source in authorizer.identity_sources]
        if any(not value for value in values):
            self._request.reason = "no_identity_source"
            return Decision(False, error=UNAUTHORIZED)
        identity_values = [value for value in values if value]
        key = (authorizer.name, tuple(identity_values))
        cached = self.authorizer_cache.get(key)
        if cached is not None:
            self._request.reason = cached.reason
            return cached
        event = authorizer_event(request, match, context, identity_values, self._identity)
        self._denial_reason()  # forget a reason left over from an earlier call in this thread
        try:
            result = self._functions[authorizer.function_id].invoke(event)
        except InvocationError as error:
            self._log(f"{authorizer.function_id}: {error}")
            return Decision(False, error=INTERNAL_ERROR)
        decision = _simple_response(result)
        if decision.error == FORBIDDEN:
            decision = Decision(False, error=FORBIDDEN, reason=_printable(self._denial_reason() or "denied"))
            self._request.reason = decision.reason
        if decision.error == INTERNAL_ERROR:
            self._log(f"{authorizer.function_id}: invalid authorizer response")
            return decision
        self.authorizer_cache.put(key, decision, authorizer.ttl_seconds)
        return decision

    def _with_cors(self, response: HttpResponse, origin: str | None) -> HttpResponse:
        if self._cors is None:
            return response
        kept = [(name, value) for name, value in response.headers if not name.lower().startswith("access-control-")]
        response.headers = kept + list(self._cors.response_headers(origin).items())
        return response


def _check_supported(authorizer: AuthorizerSpec) -> None:
    if authorizer.payload_version != "2.0" or not authorizer.simple_responses:
        raise TemplateError(f"authorizer {authorizer.name}: the local API supports payload 2.0 with simple responses")
    for source in authorizer.identity_sources:
        if source.startswith("$context.") and source.removeprefix("$context.") not in _CONTEXT_VARIABLES:
            raise TemplateError(f"authorizer {authorizer.name}: identity source {source} is not supported locally")


def _identity_value(source: str, request: HttpRequest, match: RouteMatch, context: dict[str, Any]) -> str | None:
    if source.startswith("$request.header."):
        return request.headers.get(source.removeprefix("$request.header.").lower())
    if source.startswith("$request.querystring."):
        values = parse_qs(request.raw_query, keep_blank_values=True).get(source.removeprefix("$request.querystring."))
        return ",".join(values) if values else None
    if source.startswith("$context."):
        name = source.removeprefix("$context.")
        http = context["http"]
        aliases = {"httpMethod": http["method"], "path": http["path"], "protocol": http["protocol"]}
        value = aliases.get(name, context.get(name))
        return None if value is None else str(value)
    return None  # $stageVariables: the local stage has none


def _simple_response(result: Any) -> Decision:
    if not isinstance(result, dict) or not isinstance(result.get("isAuthorized"), bool):
        return Decision(False, error=INTERNAL_ERROR)
    context = result.get("context")
    if context is not None and not isinstance(context, dict):
        return Decision(False, error=INTERNAL_ERROR)
    if not result["isAuthorized"]:
        return Decision(False, error=FORBIDDEN)
    return Decision(True, context=context)


def _route_label(request: HttpRequest, match: RouteMatch | None) -> str:
    """The route key (`POST /v1/sessions/{session_id}`): never the path, which carries ids and subjects."""
    method = _printable(request.method[:16]).upper()
    if match is not None and match.route.path.startswith("/"):
        return f"{method} {match.route.path}"
    return f"{method} (no route)"


def _printable(text: str) -> str:
    return "".join(char if char.isascii() and (char.isalnum() or char in "_-.:") else "?" for char in text[:64])


def _error_code(response: HttpResponse) -> str | None:
    """The chat API's error code (`{"error": {"code": ...}}`), for the console line."""
    if response.status < 400 or not response.body.startswith(b'{"error"'):
        return None
    try:
        code = json.loads(response.body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return _printable(code) if isinstance(code, str) else None
