"""A client generated from docs/openapi.json by a well-known generator (openapi-python-client) runs
the README's conversation against chatbot-local: create a session, post a message, list messages."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tools.local_api import ROOT, RunningApi, running_chatbot_local

PACKAGE = "chatbot_api_client"
GENERATOR = ROOT / ".venv" / "bin" / "openapi-python-client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    folder = tmp_path_factory.mktemp("client")
    environ = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    document, target = str(ROOT / "docs" / "openapi.json"), str(folder / PACKAGE)
    subprocess.run(
        [str(GENERATOR), "generate", "--path", document, "--meta", "none", "--output-path", target],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    sys.path.insert(0, str(folder))
    try:
        names = ["", ".api.sessions.create_session", ".api.messages.post_message", ".api.messages.list_messages"]
        names.append(".models.message_request")
        yield {name.rsplit(".", 1)[-1] or "client": importlib.import_module(PACKAGE + name) for name in names}
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.startswith(PACKAGE)]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(tmp_path_factory.mktemp("client-api"), arguments=["--cleanup-interval", "0"]) as api:
        yield api


def test_the_generated_methods_are_named_after_the_operation_ids(generated: dict[str, Any]) -> None:
    assert {"create_session", "post_message", "list_messages"} <= set(generated)
    assert hasattr(generated["post_message"], "sync")


def test_a_generated_client_runs_the_readme_conversation(generated: dict[str, Any], server: RunningApi) -> None:
    client = generated["client"].AuthenticatedClient(base_url=server.base, token=server.token("alice"))
    with client:
        session = generated["create_session"].sync(client=client)
        request = generated["message_request"].MessageRequest(content="Hello")
        turn = generated["post_message"].sync(session.session_id, client=client, body=request)
        page = generated["list_messages"].sync(session.session_id, client=client)

    assert turn.assistant_message.content == "You said: Hello"
    assert [(m.role.value, m.content) for m in page.messages] == [("user", "Hello"), ("assistant", "You said: Hello")]
