"""Per-route throttles of the two costly routes (docs/edge.md), as chatbot-local takes them from
template.yaml: the stage's values unless set, so the stage-throttle variables raise them too."""

from __future__ import annotations

from local_kit import REGION, FakeFunction, allow_bearer_good, echo_event
from support.clocks import ManualClock

from chatbot_local.events import ApiIdentity, HttpRequest
from chatbot_local.gateway import Gateway
from chatbot_local.template import HttpApiSpec, Template, ThrottleSpec

MESSAGE_ROUTE = "POST /v1/sessions/{session_id}/messages"
SESSION_ROUTE = "POST /v1/sessions"
SESSION_ID = "0b6f1f5e-8d3c-4f5a-9b7e-2f1d3c4b5a69"


def api_of(template: Template, environ: dict[str, str]) -> HttpApiSpec:
    return template.http_api(template.resolver(environ, REGION), ())


def test_route_throttles_follow_the_stage_variables_unless_set(project_template: Template) -> None:
    api = api_of(project_template, {"API_THROTTLING_BURST_LIMIT": "7", "API_THROTTLING_RATE_LIMIT": "3"})
    assert api.route_throttles[MESSAGE_ROUTE] == ThrottleSpec(rate_limit=3.0, burst_limit=7)
    assert api.route_throttles[SESSION_ROUTE] == ThrottleSpec(rate_limit=3.0, burst_limit=7)


def test_route_throttles_take_their_own_variables_when_set(project_template: Template) -> None:
    environ = {
        "MESSAGE_POST_THROTTLING_BURST_LIMIT": "2",
        "MESSAGE_POST_THROTTLING_RATE_LIMIT": "1",
        "SESSION_CREATE_THROTTLING_BURST_LIMIT": "4",
    }
    api = api_of(project_template, environ)
    assert api.route_throttles[MESSAGE_ROUTE] == ThrottleSpec(rate_limit=1.0, burst_limit=2)
    assert api.route_throttles[SESSION_ROUTE].burst_limit == 4


def test_the_message_route_is_throttled_on_its_own(project_template: Template) -> None:
    # Given a message route limited to one request at a time
    api = api_of(
        project_template, {"MESSAGE_POST_THROTTLING_BURST_LIMIT": "1", "MESSAGE_POST_THROTTLING_RATE_LIMIT": "1"}
    )
    clock = ManualClock(1_000.0)
    functions = {"AuthorizerFunction": FakeFunction(allow_bearer_good), "ChatFunction": FakeFunction(echo_event)}
    gateway = Gateway(api, functions, ApiIdentity(REGION, "123456789012"), monotonic=clock)

    def send(method: str, path: str) -> int:
        headers = (("Host", "127.0.0.1:3000"), ("Authorization", "Bearer good-alice"))
        return gateway.handle(HttpRequest(method, path, "", headers, b"", "127.0.0.1")).status

    message_path = f"/v1/sessions/{SESSION_ID}/messages"
    # When it gets two posts at once, then other routes, then one more after a second
    posts = [send("POST", message_path) for _ in range(2)]
    others = [send("GET", "/v1/sessions") for _ in range(3)]
    clock.now += 1.0
    # Then the second post is 429 like API Gateway's throttle, the other routes are untouched
    assert posts == [200, 429]
    assert others == [200, 200, 200]
    assert send("POST", message_path) == 200


def test_the_authorizer_cache_is_off_with_the_edge_on(project_template: Template) -> None:
    assert api_of(project_template, {}).authorizers["LambdaAuthorizer"].ttl_seconds == 300
    edge = api_of(project_template, {"EDGE_PROTECTION": "waf"})
    assert edge.authorizers["LambdaAuthorizer"].ttl_seconds == 0
