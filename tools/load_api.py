"""A bounded load test of `chatbot-local` on loopback (`make load`; docs/resilience.md).

20 clients (10 signed-in users, 10 anonymous visitors) each run from their own thread, over a
keep-alive connection, a series of sessions: start one, post turns into it (every tenth turn is sent a
second time with the same `client_message_id`, as a client retrying after a lost answer would), read
it back page by page (it must hold exactly the acknowledged turns, in the order they were sent, each
once, and `message_count` must agree), delete it, start the next. The run is bounded in turns and in
time and stops by itself.

Sessions end as they would in use, which also keeps the local table small: moto copies the whole table
on every transaction, so a table that only grows makes the emulation, not the handlers, the bottleneck.

The application rate limit and the stage throttling are raised for the run (RATE_LIMIT_PER_MINUTE,
API_THROTTLING_*), so the figures measure the handlers and the emulation, not the limiters; the model
is `echo`. chatbot-local runs each function one event at a time (like one warm Lambda container):
concurrency here is the gateway's, and the figures are a laptop's, not a deployment's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chatbot_local.issuer import mint_token, read_key, read_state
from tools.local_api import GENEROUS_LIMITS, RunningApi, running_chatbot_local
from tools.progress import Progress

LOAD_ENVIRONMENT = {
    **GENEROUS_LIMITS,
    "MAX_MESSAGES_PER_SESSION": "10000",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}
RETRY_EVERY = 10
TURNS_PER_SESSION = 10


@dataclass
class Acknowledged:
    content: str
    user_message_id: str
    assistant_message_id: str


@dataclass
class Client:
    name: str
    user_token: str | None  # None: an anonymous visitor (a new session token per session)
    authorization: str = ""
    session_id: str = ""
    turns: list[Acknowledged] = field(default_factory=list)


@dataclass
class LoadReport:
    clients: int = 0
    turns: int = 0
    repeats: int = 0
    sessions: int = 0
    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: Progress | None = None  # the running count of turns (make load)

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0

    def lines(self) -> Iterator[str]:
        yield (
            f"clients: {self.clients}  turns acknowledged: {self.turns}  repeated posts: {self.repeats}  "
            f"sessions verified and deleted: {self.sessions}  requests: {self.requests}"
        )
        seconds = max(self.seconds, 1e-9)
        yield (
            f"time: {self.seconds:.1f} s  throughput: {self.turns / seconds:.1f} turns/s, "
            f"{self.requests / seconds:.1f} requests/s (reads, deletes and session starts included)"
        )
        if self.latencies_ms:
            yield (
                f"post latency ms: p50 {self.percentile(0.50):.1f}  p95 {self.percentile(0.95):.1f}  "
                f"p99 {self.percentile(0.99):.1f}  max {max(self.latencies_ms):.1f}  "
                f"mean {statistics.fmean(self.latencies_ms):.1f}"
            )
        yield "statuses: " + ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        yield f"5xx: {self.server_errors}  problems: {len(self.problems)}"
        yield from (f"PROBLEM {problem}" for problem in self.problems[:20])


class Connection:
    """One keep-alive HTTP/1.1 connection per client thread (standard library only)."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self._http = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)

    def call(self, method: str, path: str, authorization: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": authorization} if authorization else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self._http.request(method, path, body=data, headers=headers)
        response = self._http.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None

    def close(self) -> None:
        self._http.close()


def _mint(api: RunningApi, subject: str) -> str:
    """A development-issuer token, as `chatbot-local token --sub` prints it (in process: 20 are needed)."""
    folder = Path(api.environ["CHATBOT_LOCAL_STATE_DIR"])
    return mint_token(read_key(folder), read_state(folder), subject)


def _clients(api: RunningApi, count: int) -> list[Client]:
    return [Client(f"client-{n:02d}", _mint(api, f"load-user-{n:02d}") if n % 2 == 0 else None) for n in range(count)]


def _start_session(connection: Connection, client: Client, report: LoadReport) -> bool:
    if client.user_token is not None:
        client.authorization = f"Bearer {client.user_token}"
        status, body = connection.call("POST", "/v1/sessions", client.authorization)
    else:
        status, body = connection.call("POST", "/v1/anonymous-sessions")
        client.authorization = f"Bearer {body['session_token']}" if status == 201 else ""
    _count(report, status)
    if status != 201:
        _problem(report, f"{client.name}: starting a session answered {status}")
        return False
    client.session_id, client.turns = body["session_id"], []
    return True


def _post_turns(connection: Connection, client: Client, turns: int, deadline: float, report: LoadReport) -> None:
    path = f"/v1/sessions/{client.session_id}/messages"
    for n in range(turns):
        if time.monotonic() > deadline:
            return
        body = {"content": f"{client.name} {client.session_id[:8]} turn {n}", "client_message_id": str(uuid.uuid4())}
        started = time.perf_counter()
        status, answer = connection.call("POST", path, client.authorization, body)
        elapsed_ms = (time.perf_counter() - started) * 1000
        _count(report, status, elapsed_ms)
        if status != 201:
            _problem(report, f"{client.name} turn {n}: {status} {answer}")
            continue
        client.turns.append(
            Acknowledged(
                body["content"], answer["user_message"]["message_id"], answer["assistant_message"]["message_id"]
            )
        )
        with report.lock:
            report.turns += 1
        if report.progress is not None:
            report.progress.advance()
        if n % RETRY_EVERY == RETRY_EVERY - 1:  # a client retrying a post whose answer it lost
            status, again = connection.call("POST", path, client.authorization, body)
            _count(report, status)
            with report.lock:
                report.repeats += 1
            if status != 201 or again != answer:
                _problem(report, f"{client.name} turn {n}: the repeat answered {status} differently")


def _verify_and_delete(connection: Connection, client: Client, report: LoadReport) -> None:
    """The session holds exactly the acknowledged turns, in order, once each; then it is deleted."""
    stored: list[dict[str, Any]] = []
    cursor = ""
    base = f"/v1/sessions/{client.session_id}"
    while True:
        status, page = connection.call("GET", f"{base}/messages?limit=20{'&cursor=' + cursor if cursor else ''}",
                                       client.authorization)  # fmt: skip
        _count(report, status)
        if status != 200:
            _problem(report, f"{client.name}: history answered {status}")
            return
        stored.extend(page["messages"])
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    status, session = connection.call("GET", base, client.authorization)
    _count(report, status)
    expected = [
        (message_id, role, content)
        for turn in client.turns
        for message_id, role, content in (
            (turn.user_message_id, "user", turn.content),
            (turn.assistant_message_id, "assistant", f"You said: {turn.content}"),
        )
    ]
    found = [(m["message_id"], m["role"], m["content"]) for m in stored]
    if found != expected:
        _problem(report, f"{client.name}: history differs from the acknowledged turns ({len(found)} stored)")
    if len({message_id for message_id, _, _ in found}) != len(found):
        _problem(report, f"{client.name}: duplicate messages")
    if status != 200 or session["message_count"] != len(expected):
        _problem(report, f"{client.name}: message_count {session.get('message_count')} != {len(expected)}")
    status, _ = connection.call("DELETE", base, client.authorization)
    _count(report, status)
    if status != 204:
        _problem(report, f"{client.name}: deleting the session answered {status}")
    with report.lock:
        report.sessions += 1


def _drive(api: RunningApi, client: Client, turns: int, deadline: float, report: LoadReport) -> None:
    connection = Connection(api.base)
    try:
        left = turns
        while left > 0 and time.monotonic() <= deadline:
            if not _start_session(connection, client, report):
                return
            _post_turns(connection, client, min(left, TURNS_PER_SESSION), deadline, report)
            left -= min(left, TURNS_PER_SESSION)
            _verify_and_delete(connection, client, report)
    finally:
        connection.close()


def _count(report: LoadReport, status: int, post_ms: float | None = None) -> None:
    with report.lock:
        report.requests += 1
        report.statuses[status] += 1
        if post_ms is not None:
            report.latencies_ms.append(post_ms)
    if status >= 500 and report.progress is not None:
        report.progress.advance(0, server_error=True)


def _problem(report: LoadReport, text: str) -> None:
    with report.lock:
        report.problems.append(text)


def run_load(
    api: RunningApi, clients: int, turns: int, max_seconds: float, progress: Progress | None = None
) -> LoadReport:
    report = LoadReport(clients=clients, progress=progress)
    population = _clients(api, clients)
    per_client = -(-turns // clients)
    deadline = time.monotonic() + max_seconds
    threads = [
        threading.Thread(target=_drive, args=(api, client, per_client, deadline, report), name=client.name)
        for client in population
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + 120)
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def loaded_api(folder: Path) -> Iterator[RunningApi]:
    with running_chatbot_local(folder, LOAD_ENVIRONMENT) as api:
        yield api


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description="Bounded load test of chatbot-local on loopback")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--turns", type=int, default=2000, help="turns in all (default 2000)")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long (default 600)")
    args = parser.parse_args(argv)
    say(f"load: {args.clients} clients, {args.turns} turns, at most {args.max_seconds:.0f} s, "
        "RATE_LIMIT_PER_MINUTE=10000 and stage throttling raised for the run")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="chatbot-load-") as folder, loaded_api(Path(folder)) as api:
        progress = Progress("load: turns", args.turns)
        report = run_load(api, args.clients, args.turns, args.max_seconds, progress)
        progress.close()
    for line in report.lines():
        say(line)
    if report.server_errors or report.problems or report.turns < args.turns:
        say("load: FAILED")
        return 1
    say("load: PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
