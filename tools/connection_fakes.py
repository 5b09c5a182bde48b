"""An in-memory :class:`chatbot_security.storage.connections.ConnectionStore` with the DynamoDB store's
conditions; tests/integration/test_connection_store_contract.py runs the same cases against both."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from chatbot_security.storage.connections import ConnectionRecord, connection_ttl, refusal_of


@dataclass
class InMemoryConnectionStore:
    clock: Callable[[], float] = time.time
    records: dict[str, ConnectionRecord] = field(default_factory=dict)
    ttls: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bind(self, connection_id: str, owner: str, session_id: str, credential_exp: int, *, kind: str) -> None:
        with self.lock:
            self.calls.append("bind")
            self.records[connection_id] = ConnectionRecord(connection_id, owner, kind, session_id, int(credential_exp))
            self.ttls[connection_id] = connection_ttl(int(credential_exp), int(self.clock()))

    def get(self, connection_id: str) -> ConnectionRecord | None:
        with self.lock:
            self.calls.append("get")
            return self.records.get(connection_id)

    def start_turn(self, connection_id: str, now: int, until: int) -> ConnectionRecord:
        with self.lock:
            self.calls.append("start_turn")
            record = self.records.get(connection_id)
            if record is None or record.is_expired(now) or record.is_busy(now):
                raise refusal_of(record, now)
            self.records[connection_id] = record = replace(record, busy_until=until)
            return record

    def finish_turn(self, connection_id: str) -> None:
        with self.lock:
            self.calls.append("finish_turn")
            record = self.records.get(connection_id)
            if record is not None:
                self.records[connection_id] = replace(record, busy_until=0)

    def forget(self, connection_id: str) -> None:
        with self.lock:
            self.calls.append("forget")
            self.records.pop(connection_id, None)
            self.ttls.pop(connection_id, None)
