"""`chatbot-local invoke FUNCTION -e EVENT`: every committed event gives its documented answer, as
committed, against a running chatbot-local (sharing its state) or on its own."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tools.local_api import EXECUTABLE, ROOT, RunningApi, running_chatbot_local

EVENTS = ROOT / "events"
_ROW = re.compile(r"^\| `([a-z0-9-]+\.json)` \| `([A-Za-z]+)` \| ([^|]+?) \|$")


def documented_answers() -> dict[str, tuple[str, str]]:
    """events/README.md's table: event file -> (function, answer)."""
    rows = (_ROW.match(line) for line in (EVENTS / "README.md").read_text().splitlines())
    return {row[1]: (row[2], row[3]) for row in rows if row}


def run_invoke(
    environ: dict[str, str], function: str, event: Path | str, *arguments: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(environ, function, "-e", str(event), *arguments)


def run_cli(environ: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXECUTABLE), "invoke", *arguments],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def answer_of(finished: subprocess.CompletedProcess[str]) -> str:
    """What the function answered, in the words of events/README.md."""
    assert finished.returncode == 0, finished.stderr
    (line,) = finished.stdout.splitlines()  # the response is the only thing on stdout
    result: Any = json.loads(line)
    if "isAuthorized" in result:
        if result["isAuthorized"]:
            return "allowed"
        reasons = re.findall(r'"reason":\s*"([a-z_]+)"', finished.stderr)
        return f"denied: {reasons[-1] if reasons else '?'}"
    if "statusCode" in result:
        return str(result["statusCode"])
    return "counts" if {"sessions_removed", "items_removed"} <= set(result) else repr(result)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(tmp_path_factory.mktemp("invoke"), arguments=["--cleanup-interval", "0"]) as api:
        yield api


def test_every_committed_event_is_documented() -> None:
    events = {path.name for path in EVENTS.glob("*.json")} - {"env.local.json"}  # sam's --env-vars file
    assert set(documented_answers()) == events


def test_every_committed_event_gives_its_documented_answer(server: RunningApi) -> None:
    expected = documented_answers()

    def run(item: tuple[str, tuple[str, str]]) -> tuple[str, str]:
        name, (function, _) = item
        return name, answer_of(run_invoke(server.environ, function, EVENTS / name))

    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = dict(pool.map(run, sorted(expected.items())))

    assert answers == {name: answer for name, (_, answer) in expected.items()}


def test_invoke_shares_the_running_servers_sessions(server: RunningApi) -> None:
    finished = run_invoke(server.environ, "ChatFunction", EVENTS / "chat-create-anonymous-session.json")
    created = json.loads(json.loads(finished.stdout)["body"])

    status, body, _ = server.call("GET", f"/v1/sessions/{created['session_id']}", token=created["session_token"])

    assert status == 200
    assert body["session_id"] == created["session_id"]


def test_with_session_puts_one_turn_in_the_session_the_event_names(server: RunningApi) -> None:
    finished = run_invoke(server.environ, "ChatFunction", EVENTS / "chat-list-messages.json", "--with-session")

    messages = json.loads(json.loads(finished.stdout)["body"])["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant"]


def test_parameter_overrides_reach_the_functions_environment(server: RunningApi) -> None:
    event = EVENTS / "chat-create-anonymous-session.json"
    finished = run_invoke(server.environ, "ChatFunction", event, "--parameter-overrides", "AllowAnonymous=false")

    assert answer_of(finished) == "404"


def test_invoke_runs_on_its_own_without_a_server(tmp_path: Path, server: RunningApi) -> None:
    environ = {**server.environ, "CHATBOT_LOCAL_STATE_DIR": str(tmp_path / "alone")}

    finished = run_invoke(environ, "AuthorizerFunction", EVENTS / "authorizer-request-user.json")

    assert answer_of(finished) == "allowed"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["NoSuchFunction", "-e", "events/chat-create-session.json"], "NoSuchFunction is not a function"),
        (["ChatFunction", "-e", "events/missing.json"], "cannot read events/missing.json"),
        (
            ["ChatFunction", "-e", "events/chat-create-session.json", "--parameter-overrides", "Nope=1"],
            "Nope is not a parameter of the template",
        ),
    ],
)
def test_mistakes_are_one_line_and_exit_status_2(server: RunningApi, arguments: Sequence[str], message: str) -> None:
    finished = run_cli(server.environ, *arguments)

    assert finished.returncode == 2
    assert finished.stdout == ""
    assert finished.stderr.startswith(f"chatbot-local: {message}")


def test_with_session_seeds_an_anonymous_session_for_an_event_that_names_its_token(server: RunningApi) -> None:
    event = EVENTS / "authorizer-request-anonymous.json"

    finished = run_invoke(server.environ, "AuthorizerFunction", event, "--with-session")

    assert answer_of(finished) == "allowed"


def test_print_event_fills_the_placeholders_from_the_running_server(server: RunningApi) -> None:
    finished = run_invoke(server.environ, "ChatFunction", EVENTS / "chat-get-session.json", "--print-event")

    event = json.loads(finished.stdout)
    assert "REPLACE_WITH" not in finished.stdout
    assert event["rawPath"] == f"/v1/sessions/{event['pathParameters']['session_id']}"
