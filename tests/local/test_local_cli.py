"""`chatbot-local` on the command line: the token command and the one-line configuration errors."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from chatbot_local.cli import STATE_DIR_VARIABLE, main
from chatbot_local.issuer import AUDIENCE, IssuerState, load_or_create_key, public_jwk, write_state
from tools.local_api import ROOT, free_port

EXECUTABLE = ROOT / ".venv" / "bin" / "chatbot-local"


@pytest.fixture(autouse=True)
def restored_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """serve() writes its defaults into os.environ: put everything back afterwards."""
    saved = dict(os.environ)
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(tmp_path / "state"))
    yield
    os.environ.clear()
    os.environ.update(saved)


def serve_args() -> list[str]:
    ports = ["--port", str(free_port()), "--web-port", str(free_port()), "--ws-port", str(free_port())]
    return [*ports, "--cleanup-interval", "0"]


def test_token_prints_a_development_token_as_its_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state_dir = tmp_path / "state"
    key = load_or_create_key(state_dir)
    state = IssuerState("http://127.0.0.1:9", AUDIENCE, "groups", public_jwk(key)["kid"], os.getpid())
    write_state(state_dir, state)

    status = main(["token", "--sub", "alice", "--roles", "admin, ops,", "--mfa", "--ttl", "60"])

    token = capsys.readouterr().out.strip().splitlines()[-1]
    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience=AUDIENCE, issuer=state.issuer)
    assert status == 0
    assert claims["sub"] == "alice"
    assert claims["groups"] == ["admin", "ops"]
    assert claims["amr"] == ["mfa"]
    assert claims["exp"] - claims["iat"] == 60


def test_token_without_a_running_server_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["token", "--sub", "alice"])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err == "chatbot-local: chatbot-local is not running with the development issuer (start it first)\n"


def test_token_refuses_a_blank_subject(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--sub", " "]) == 2
    assert capsys.readouterr().err == "chatbot-local: --sub must not be empty\n"


def test_token_ttl_is_bounded() -> None:
    with pytest.raises(SystemExit) as raised:
        main(["token", "--sub", "a", "--ttl", "0"])
    assert raised.value.code == 2


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MODEL_PROVIDER", "gpt-9", "MODEL_PROVIDER must be one of echo, bedrock, openai (got 'gpt-9')"),
        ("OIDC_ISSUER", "http://idp.example.com", "OIDC_ISSUER must be an https URL"),
        ("ALLOWED_ORIGINS", "*", "ALLOWED_ORIGINS takes exact origins"),
        ("AWS_REGION", "eu-wset-1", "AWS_REGION must be an AWS region such as eu-west-1 (got 'eu-wset-1')"),
    ],
)
def test_configuration_mistakes_exit_2_with_one_line(
    variable: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, value)

    status = main(serve_args())

    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith(f"chatbot-local: {message}")
    assert error.count("\n") == 1


def test_port_in_use_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        status = main(["--port", str(port), "--web-port", str(free_port()), "--ws-port", str(free_port())])

    assert status == 2
    assert capsys.readouterr().err == (
        f"chatbot-local: port {port} on 127.0.0.1 is already in use (API); choose another one\n"
    )


def test_websocket_port_in_use_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        status = main(["--port", str(free_port()), "--web-port", str(free_port()), "--ws-port", str(port)])

    assert status == 2
    assert capsys.readouterr().err == (
        f"chatbot-local: port {port} on 127.0.0.1 is already in use (WebSocket API); choose another one\n"
    )


def test_serve_help_lists_the_websocket_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])

    assert "--ws-port WS_PORT" in capsys.readouterr().out


def test_missing_template_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main([*serve_args(), "--template", str(tmp_path / "template.yaml")])

    assert status == 2
    assert capsys.readouterr().err == f"chatbot-local: template not found: {tmp_path / 'template.yaml'}\n"


@pytest.mark.local_api
def test_settings_rejected_by_the_functions_exit_2_without_a_traceback(tmp_path: Path) -> None:
    environ = {**os.environ, "SESSION_TTL_SECONDS": "5"}

    finished = subprocess.run(
        [str(EXECUTABLE), *serve_args()], env=environ, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )

    assert finished.returncode == 2
    assert finished.stderr.startswith("chatbot-local: invalid configuration: SESSION_TTL_SECONDS: ")
    assert "Traceback" not in finished.stderr
    assert finished.stderr.count("\n") == 1
