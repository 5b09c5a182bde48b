"""Rule 12 as a property: whatever the sessions, the clock and where a run crashes, after cleanup has
run to completion every item of an ended session is gone and every live session is intact."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot_security.storage.items import message_item as _message_item
from chatbot_security.storage.records import LIVE, MessageRecord, SessionRecord
from chatbot_security.storage.store import DynamoSessionStore
from session_cleanup.cleanup import LOOKBACK_HOURS, purge_expired_sessions

BASE = 1_800_000_000


@dataclass(frozen=True)
class Plan:
    expires_offset: int  # seconds relative to the cleanup clock; <= 0 means ended
    deleted: bool
    messages: int

    def ended(self) -> bool:
        return self.deleted or self.expires_offset <= 0


class CrashingDynamo:
    """Delegates to a real client and raises once, on the N-th write call, like a dying container."""

    WRITES = frozenset({"batch_write_item", "delete_item", "update_item"})

    def __init__(self, real: Any, crash_at: int | None) -> None:
        self._real = real
        self._crash_at = crash_at
        self.writes = 0
        self.exceptions = real.exceptions

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)
        if name not in self.WRITES:
            return method

        def call(**kwargs: Any) -> Any:
            self.writes += 1
            if self._crash_at is not None and self.writes == self._crash_at:
                raise ConnectionError("container died")
            return method(**kwargs)

        return call


plans = st.lists(
    st.builds(
        Plan,
        expires_offset=st.integers(min_value=-(LOOKBACK_HOURS - 1) * 3600, max_value=48 * 3600),
        deleted=st.booleans(),
        messages=st.integers(min_value=0, max_value=30),
    ),
    min_size=1,
    max_size=6,
)


def seed(client: Any, table: str, now: int, plan: Plan) -> str:
    session_id = str(uuid.uuid4())
    store = DynamoSessionStore(lambda: client, table, idle_seconds=1800)
    created = now - 3600
    expires = now + plan.expires_offset
    store.put_new_session(
        SessionRecord(
            session_id, "owner", created, max(expires, created + 1), expires, created, plan.messages, LIVE, b"wrapped"
        )
    )
    for seq in range(1, plan.messages + 1):
        record = MessageRecord(session_id, seq, str(uuid.uuid4()), "user", created * 1000, b"sealed")
        client.put_item(TableName=table, Item=_message_item(record, ttl=expires + 86400))
    if plan.deleted:
        session = store.get_session(session_id)
        assert session is not None
        store.mark_deleted(session, now - 1)
    return session_id


def items_of(client: Any, table: str, session_id: str) -> list[dict[str, Any]]:
    response = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


@pytest.mark.usefixtures("aws")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=plans, clock=st.integers(min_value=0, max_value=3 * 86400), crash_at=st.none() | st.integers(1, 40))
def test_cleanup_removes_every_ended_session_and_keeps_every_live_one(
    aws: Any, plans: list[Plan], clock: int, crash_at: int | None
) -> None:
    client = boto3.client("dynamodb")
    now = BASE + clock
    seeded = [(plan, seed(client, aws.table_name, now, plan)) for plan in plans]

    # A first run may die at any write; the next scheduled run must finish the job.
    crashing = CrashingDynamo(client, crash_at)
    with contextlib.suppress(ConnectionError):
        purge_expired_sessions(DynamoSessionStore(lambda: crashing, aws.table_name, 1800, sleep=lambda _: None), now)
    purge_expired_sessions(DynamoSessionStore(lambda: client, aws.table_name, 1800, sleep=lambda _: None), now)

    for plan, session_id in seeded:
        items = items_of(client, aws.table_name, session_id)
        if plan.ended():
            assert items == [], f"ended session {plan} kept {len(items)} items"
        else:
            assert len(items) == plan.messages + 1, f"live session {plan} lost items"
            session = next(item for item in items if item["sk"]["S"] == "SESSION")
            assert session["status"]["S"] == LIVE
