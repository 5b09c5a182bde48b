"""The state folder of a running chatbot-local, and what it shares with `token` and `invoke`.

`.chatbot-local/` (gitignored, mode 0700) belongs to the first server that starts from a checkout:
it holds a lock on `server.lock` for as long as it runs (the kernel releases it when the process
ends, however it ends). A second server does not touch that folder: it keeps its own state in
`.chatbot-local/servers/<pid>/` and removes that folder, and only that one, when it stops.

Besides the issuer's files (chatbot_local.issuer), a server writes `aws.json`: the address of its
moto endpoint and the names of the resources it created there, so that `chatbot-local invoke` can
run a function against the same table, key and secrets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

LOCK_FILE = "server.lock"
AWS_FILE = "aws.json"
SERVERS_DIR = "servers"


@dataclass(frozen=True)
class AwsState:
    """What `invoke` needs to reach a running server's moto resources."""

    endpoint_url: str
    region: str
    table_name: str
    key_id: str
    key_arn: str
    secret_arns: Mapping[str, str] = field(default_factory=dict)
    pid: int = 0
    # host:port of the WebSocket API (its management API and Lambda's invoke), for the stream functions.
    ws_address: str = ""


def _private_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def claimed_state_dir(base: Path) -> Iterator[tuple[Path, bool]]:
    """Yield (the folder this server keeps its state in, whether it is the shared `base`).

    Never refuses and never deletes another live server's state: the first server gets `base`,
    any other gets a folder of its own under `base/servers/`, removed when it stops.
    """
    _private_dir(base)
    lock = os.open(base / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            lock = -1
        if lock >= 0:
            _remove_stopped_servers(base / SERVERS_DIR)
            yield base, True
            return
        own = base / SERVERS_DIR / str(os.getpid())
        _private_dir(own)
        try:
            yield own, False
        finally:
            shutil.rmtree(own, ignore_errors=True)
    finally:
        if lock >= 0:
            os.close(lock)  # releases the lock


def _remove_stopped_servers(servers: Path) -> None:
    """Folders left by second servers that were killed (their process no longer exists)."""
    if not servers.is_dir():
        return
    for folder in servers.iterdir():
        if folder.name.isdigit() and not process_alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)


def write_aws_state(folder: Path, state: AwsState) -> None:
    _private_dir(folder)
    path = folder / AWS_FILE
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({**asdict(state), "secret_arns": dict(state.secret_arns)}, handle, indent=2)
    temporary.replace(path)


def read_aws_state(folder: Path) -> AwsState | None:
    """The running server's moto endpoint and resources; None when no server runs from `folder`."""
    try:
        data = json.loads((folder / AWS_FILE).read_text(encoding="utf-8"))
        state = AwsState(**data)
    except (OSError, ValueError, TypeError):
        return None
    return state if process_alive(state.pid) else None


def clear_aws_state(folder: Path, pid: int) -> None:
    path = folder / AWS_FILE
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
