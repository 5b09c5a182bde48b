"""The committed events/chat-*.json samples (also used by `sam local invoke`) reach their routes and
get the documented answers, in the order a client would send them."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.caches import reset_caches

from chat.handler import lambda_handler as chat_handler
from tools.lambda_events import EVENTS, body_of, filled_event

pytestmark = pytest.mark.usefixtures("aws")

SAMPLE_SESSION_ID = "6f1c2b9e-8a47-4c1e-9d3b-2f6a8e4c1d2a"
ROOT = Path(__file__).resolve().parents[2]
# In the order a client uses them; each with the status its sample gets.
SAMPLES = [
    ("chat-create-session.json", 201),
    ("chat-post-message.json", 201),
    ("chat-post-message-retry.json", 201),
    ("chat-post-message-retry.json", 201),
    ("chat-list-messages.json", 200),
    ("chat-get-session.json", 200),
    ("chat-create-stream-ticket.json", 201),
    ("chat-list-sessions.json", 200),
    ("chat-export-my-data.json", 200),
    ("chat-get-usage.json", 200),
    ("chat-delete-session.json", 204),
    ("chat-get-session.json", 404),
    ("chat-create-anonymous-session.json", 201),
    ("chat-admin-erase-user.json", 204),
    ("chat-erase-my-data.json", 204),
]


def chat_routes_in_template() -> set[str]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    events = template["Resources"]["ChatFunction"]["Properties"]["Events"].values()
    return {f"{event['Properties']['Method']} {event['Properties']['Path']}" for event in events}


def test_every_chat_route_has_a_sample_event() -> None:
    samples = {json.loads(path.read_text())["routeKey"] for path in EVENTS.glob("chat-*.json")}
    assert samples == chat_routes_in_template()


def test_the_samples_walk_through_every_route(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the sample principal's issuer and a container whose next session id is the one put in the samples
    monkeypatch.setenv("OIDC_ISSUER", "https://issuer.example.test")
    monkeypatch.setenv("STREAM_URL", "wss://abcdef1234.execute-api.eu-west-1.amazonaws.com/v1")
    reset_caches()
    from chat.dependencies import default_conversations

    ids = itertools.chain([SAMPLE_SESSION_ID], (str(uuid.uuid4()) for _ in itertools.count()))
    monkeypatch.setattr(default_conversations(), "new_id", lambda: next(ids))
    answers: list[tuple[str, int, Any]] = []
    for name, _status in SAMPLES:
        # When each sample is sent with its session placeholder filled
        response = chat_handler(filled_event(name, REPLACE_WITH_SESSION_ID=SAMPLE_SESSION_ID), lambda_context)
        answers.append((name, response["statusCode"], body_of(response)))
        assert response["headers"]["Cache-Control"] == "no-store"
    # Then each gets its documented status
    assert [(name, status) for name, status, _ in answers] == SAMPLES
    first, repeat = answers[2][2], answers[3][2]
    assert repeat == first
    assert [m["content"] for m in answers[4][2]["messages"]][:2] == ["Hello there", "You said: Hello there"]
    body = {name: answer for name, _, answer in answers}
    [exported] = body["chat-export-my-data.json"]["sessions"]
    assert exported["session_id"] == SAMPLE_SESSION_ID
    assert exported["messages"] == answers[4][2]["messages"]
