"""The cleanup's shard run: sessions purged per second and CPU per purged session, against loopback moto.

    .venv/bin/python benchmarks/bench_cleanup.py [--sessions N] [--messages M] [--workers 1,2,4,8]

For each number of side-by-side workers, this script puts N ended sessions of M messages (default 200
sessions of 20 messages: ten turns, docs/performance.md A2) under one shard key of the ``by-expiry``
index of a loopback moto, then runs the cleanup's whole Lambda handler with that shard's event
(``{"shard": "NN"}``) in a fresh process with ``Tracing: Active``'s environment, and prints the
sessions purged per second (wall) and the handler process's CPU time per purged session. moto runs
in this process, so the child's CPU is the function's own work only; its wall time includes moto's,
on the same cores, so the rate is a floor for one shard run (DynamoDB in the Region answers each call
in a few milliseconds without taking the function's CPU). docs/performance.md, "The cleanup", turns
these figures into the schedule, timeout and memory of the template.

Information only, never a gate: ``make bench-quick`` does not run it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid

from budgets import record
from harness import REGION, ROOT, add_source_paths, lambda_environment, loopback_world

CHILD = """
import json, sys, time
import session_cleanup.handler as handler
from tools.lambda_context import FakeLambdaContext

class Context(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 900_000

handler.PURGE_WORKERS = int(sys.argv[1])
event = {"shard": sys.argv[2]}
handler.lambda_handler({"shard": "15"}, Context("bench", 1024, "bench"))  # warm: clients, imports
cpu, wall = time.process_time(), time.perf_counter()
result = handler.lambda_handler(event, Context("bench", 1024, "bench"))
print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "result": result}))
"""


def seed(world, shard: int, sessions: int, messages: int) -> None:
    """Ended sessions of `messages` messages each, all under the shard key `shard`."""
    from chatbot_local.aws import client
    from chatbot_security.storage.items import message_item, session_item
    from chatbot_security.storage.records import LIVE, MessageRecord, SessionRecord, expiry_shard

    db = client("dynamodb", world.moto_url, REGION)
    now = int(time.time())
    items = []
    made = 0
    while made < sessions:
        session_id = str(uuid.uuid4())
        if expiry_shard(session_id) != shard:
            continue
        made += 1
        created = now - 7200
        record = SessionRecord(session_id, "bench", created, created + 86400, now - 60, created, 0, LIVE, b"k")
        items.append(session_item(record))
        for seq in range(1, messages + 1):
            message = MessageRecord(session_id, seq, str(uuid.uuid4()), "user", created * 1000, b"c" * 400)
            items.append(message_item(message, ttl=now + 86400))
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        db.batch_write_item(RequestItems={world.table_name: batch})


def measure(world, workers: int, shard: int) -> dict:
    environment = lambda_environment(
        ROOT / "functions/session_cleanup", "session_cleanup.handler", 1024, world.sink.address, tracing=True
    )
    environment |= world.function_environment("cleanup") | {"POWERTOOLS_LOG_LEVEL": "WARNING"}
    paths = [str(ROOT / "functions/session_cleanup"), str(ROOT / "layers/security"), str(ROOT)]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    finished = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CHILD, str(workers), f"{shard:02d}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--workers", default="1,2,4,8")
    options = parser.parse_args()
    add_source_paths()
    counts = [int(part) for part in options.workers.split(",")]
    print(f"cleanup shard run: {options.sessions} ended sessions of {options.messages} messages, loopback moto")
    print(f"{'workers':>8s} {'sessions/s':>11s} {'CPU ms/session':>15s} {'wall ms/session':>16s}")
    with loopback_world() as world:
        for index, workers in enumerate(counts):
            seed(world, index, options.sessions, options.messages)
            figures = measure(world, workers, index)
            removed = figures["result"]["sessions_removed"]
            if removed != options.sessions:
                print(f"the run removed {removed} of {options.sessions} sessions", file=sys.stderr)
                return 1
            rate = removed / figures["wall"]
            cpu_ms = 1000 * figures["cpu"] / removed
            print(f"{workers:8d} {rate:11.1f} {cpu_ms:15.2f} {1000 * figures['wall'] / removed:16.2f}")
            record("C", f"cleanup shard run, {workers} worker(s): sessions/s", f"{rate:.0f}/s", "", None)
            record("C", f"cleanup shard run, {workers} worker(s): CPU per session", f"{cpu_ms:.1f} ms", "", None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
