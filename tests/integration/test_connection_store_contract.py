"""The connection store's contract: the same cases against the in-memory store of the unit tests and the
DynamoDB store on moto (the table made from template.yaml). A connection is bound to one owner and
session, serves one turn at a time, refuses everything once its credential has expired, and expires by TTL."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from support.clocks import FIXED_START, ManualClock

from chatbot_security.storage.connections import (
    MAX_CONNECTION_SECONDS,
    TTL_MARGIN_SECONDS,
    ConnectionBusy,
    ConnectionExpired,
    ConnectionRecord,
    ConnectionStore,
    ConnectionUnknown,
    DynamoConnectionStore,
    connection_pk,
)
from tools.connection_fakes import InMemoryConnectionStore

NOW = FIXED_START
SESSION = "8a3c2f6e-5d1b-4c7a-9e2f-0b1c2d3e4f50"


@pytest.fixture(params=["in-memory", "dynamodb"])
def store(request: pytest.FixtureRequest, clock: ManualClock) -> Any:
    if request.param == "in-memory":
        return InMemoryConnectionStore(clock=clock)
    aws = request.getfixturevalue("aws")
    client = boto3.client("dynamodb")
    dynamo = DynamoConnectionStore(lambda: client, aws.table_name, clock=clock)
    dynamo.raw_item = lambda connection_id: client.get_item(  # type: ignore[attr-defined]
        TableName=aws.table_name, Key={"pk": {"S": connection_pk(connection_id)}, "sk": {"S": "CONNECTION"}}
    ).get("Item")
    return dynamo


def _ttl(store: Any, connection_id: str) -> int:
    if isinstance(store, InMemoryConnectionStore):
        return store.ttls[connection_id]
    return int(store.raw_item(connection_id)["ttl"]["N"])


def _bind(store: ConnectionStore, connection_id: str = "conn-1=", credential_exp: int = NOW + 600) -> None:
    store.bind(connection_id, "owner-hash", SESSION, credential_exp, kind="anonymous")


def test_a_bound_connection_carries_its_owner_session_and_credential_expiry(store: ConnectionStore) -> None:
    _bind(store)

    assert store.get("conn-1=") == ConnectionRecord("conn-1=", "owner-hash", "anonymous", SESSION, NOW + 600, 0)


def test_an_unknown_connection_has_no_record(store: ConnectionStore) -> None:
    assert store.get("never-bound=") is None


def test_starting_a_turn_takes_the_connection_until_the_lease_ends(store: ConnectionStore) -> None:
    _bind(store)

    record = store.start_turn("conn-1=", NOW, NOW + 70)

    assert record.busy_until == NOW + 70
    assert record.owner == "owner-hash"
    assert record.session_id == SESSION


def test_a_second_turn_while_one_streams_is_busy(store: ConnectionStore) -> None:
    _bind(store)
    store.start_turn("conn-1=", NOW, NOW + 70)

    with pytest.raises(ConnectionBusy):
        store.start_turn("conn-1=", NOW + 5, NOW + 75)

    record = store.get("conn-1=")
    assert record is not None
    assert record.busy_until == NOW + 70


def test_a_finished_turn_frees_the_connection(store: ConnectionStore) -> None:
    _bind(store)
    store.start_turn("conn-1=", NOW, NOW + 70)

    store.finish_turn("conn-1=")

    assert store.start_turn("conn-1=", NOW + 1, NOW + 71).busy_until == NOW + 71


def test_a_lease_that_ran_out_frees_the_connection(store: ConnectionStore) -> None:
    """A worker that died does not keep the connection busy for ever."""
    _bind(store)
    store.start_turn("conn-1=", NOW, NOW + 70)

    assert store.start_turn("conn-1=", NOW + 70, NOW + 140).busy_until == NOW + 140


def test_a_connection_whose_credential_expired_is_refused_before_busy(store: ConnectionStore) -> None:
    _bind(store, credential_exp=NOW + 60)
    store.start_turn("conn-1=", NOW, NOW + 200)

    with pytest.raises(ConnectionExpired):
        store.start_turn("conn-1=", NOW + 60, NOW + 260)


def test_a_turn_on_an_unknown_connection_is_refused(store: ConnectionStore) -> None:
    with pytest.raises(ConnectionUnknown):
        store.start_turn("never-bound=", NOW, NOW + 70)


def test_a_forgotten_connection_serves_no_turn(store: ConnectionStore) -> None:
    _bind(store)

    store.forget("conn-1=")

    assert store.get("conn-1=") is None
    with pytest.raises(ConnectionUnknown):
        store.start_turn("conn-1=", NOW, NOW + 70)


def test_forgetting_twice_or_finishing_after_forgetting_is_not_an_error(store: ConnectionStore) -> None:
    _bind(store)
    store.forget("conn-1=")

    store.forget("conn-1=")
    store.finish_turn("conn-1=")

    assert store.get("conn-1=") is None  # finishing did not bring it back


def test_connections_are_independent(store: ConnectionStore) -> None:
    _bind(store, "conn-1=")
    _bind(store, "conn-2=")
    store.start_turn("conn-1=", NOW, NOW + 70)

    assert store.start_turn("conn-2=", NOW, NOW + 70).connection_id == "conn-2="


def test_the_item_expires_after_the_credential(store: ConnectionStore) -> None:
    _bind(store, credential_exp=NOW + 600)

    assert _ttl(store, "conn-1=") == NOW + 600 + TTL_MARGIN_SECONDS


def test_the_item_expires_after_api_gateways_two_hours_when_the_credential_lasts_longer(
    store: ConnectionStore,
) -> None:
    _bind(store, credential_exp=NOW + 86400)

    assert _ttl(store, "conn-1=") == NOW + MAX_CONNECTION_SECONDS + TTL_MARGIN_SECONDS
