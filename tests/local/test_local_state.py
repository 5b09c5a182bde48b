"""Two chatbot-local servers from one checkout: the second keeps its own state, never refuses to
start and never removes the first one's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from chatbot_local.issuer import STATE_FILE
from chatbot_local.state import SERVERS_DIR, AwsState, claimed_state_dir, read_aws_state, write_aws_state
from tools.local_api import EXECUTABLE, ROOT, running_chatbot_local


def test_the_first_server_gets_the_shared_folder(tmp_path: Path) -> None:
    with claimed_state_dir(tmp_path / "state") as (folder, shared):
        assert (folder, shared) == (tmp_path / "state", True)


def test_a_second_server_gets_a_folder_of_its_own_and_removes_only_that(tmp_path: Path) -> None:
    base = tmp_path / "state"
    with claimed_state_dir(base) as (first, _):
        (first / STATE_FILE).write_text("{}")
        with claimed_state_dir(base) as (second, shared):
            assert not shared
            assert second == base / SERVERS_DIR / str(os.getpid())
            assert oct(second.stat().st_mode & 0o777) == "0o700"
        assert not second.exists()
        assert (first / STATE_FILE).exists()


def test_the_shared_folder_is_free_again_once_its_server_stops(tmp_path: Path) -> None:
    base = tmp_path / "state"
    with claimed_state_dir(base):
        pass
    with claimed_state_dir(base) as (folder, shared):
        assert (folder, shared) == (base, True)


def test_folders_of_second_servers_that_were_killed_are_removed(tmp_path: Path) -> None:
    base = tmp_path / "state"
    stale = base / SERVERS_DIR / "999999999"
    stale.mkdir(parents=True)
    with claimed_state_dir(base):
        assert not stale.exists()


def test_aws_state_of_a_stopped_server_is_ignored(tmp_path: Path) -> None:
    write_aws_state(tmp_path, AwsState("http://127.0.0.1:9", "eu-west-1", "t", "k", "arn:k", {}, pid=999999999))
    assert read_aws_state(tmp_path) is None


def test_a_second_server_leaves_the_first_ones_token_command_working(tmp_path: Path) -> None:
    shared = {"CHATBOT_LOCAL_STATE_DIR": str(tmp_path / "shared")}
    with running_chatbot_local(tmp_path / "first", shared) as first:
        with running_chatbot_local(tmp_path / "second", shared) as second:
            assert f"keeps its state in {tmp_path / 'shared' / SERVERS_DIR}" in second.output()
            status, _, _ = second.call("POST", "/v1/sessions", token=_token(second.output(), second.environ))
            assert status == 201
            second.process.terminate()  # a clean stop: it removes what it wrote
            second.process.wait(timeout=30)
        assert not (tmp_path / "shared" / SERVERS_DIR / str(second.process.pid)).exists()
        status, _, _ = first.call("POST", "/v1/sessions", token=first.token("alice"))
        assert status == 201


def _token(output: str, environ: dict[str, str]) -> str:
    """Run the token command the server printed (with its state folder)."""
    line = next(line for line in output.splitlines() if line.startswith("Token: "))
    assignment = line.removeprefix("Token: ").split(" ", 1)[0]
    name, _, value = assignment.partition("=")
    finished = subprocess.run(
        [str(EXECUTABLE), "token", "--sub", "bob"],
        cwd=ROOT,
        env={**environ, name: value},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return finished.stdout.strip().splitlines()[-1]
