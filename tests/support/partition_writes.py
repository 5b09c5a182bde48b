"""A DynamoDB client that counts the writes each partition key of a table and of each of its global
secondary indexes receives, the way DynamoDB bills them: a changed item is one table write; in an
index, an entry whose keys stay and whose projected attributes change is one write, an entry that
moves (its index keys changed) is a delete under the old key and a put under the new one, an entry
that appears or disappears is one write. It delegates to a real client (moto) and reads each written
item before and after the call, so it counts what was really stored."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"})


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None
    projected: frozenset[str] | None  # None: ALL

    def entry(self, item: dict[str, Any] | None) -> tuple[Any, ...] | None:
        if item is None or self.hash_key not in item or (self.range_key and self.range_key not in item):
            return None
        return (str(item[self.hash_key]), str(item.get(self.range_key or "", "")))

    def projection(self, item: dict[str, Any]) -> dict[str, Any]:
        return item if self.projected is None else {k: v for k, v in item.items() if k in self.projected}


@dataclass
class PartitionWrites:
    """Writes per partition key: ``table`` and one counter per index name."""

    table: Counter[str] = field(default_factory=Counter)
    indexes: dict[str, Counter[str]] = field(default_factory=dict)

    def busiest_share(self, index: str | None = None) -> float:
        counts = self.table if index is None else self.indexes[index]
        total = sum(counts.values())
        return max(counts.values()) / total if total else 0.0

    def total(self, index: str | None = None) -> int:
        return sum((self.table if index is None else self.indexes[index]).values())


def indexes_of(client: Any, table: str) -> list[Index]:
    described = client.describe_table(TableName=table)["Table"]
    keys = {key["AttributeName"] for key in described["KeySchema"]}
    found = []
    for gsi in described.get("GlobalSecondaryIndexes", []):
        schema = {key["KeyType"]: key["AttributeName"] for key in gsi["KeySchema"]}
        projection = gsi["Projection"]
        kind = projection["ProjectionType"]
        projected = None
        if kind != "ALL":
            extra = set(projection.get("NonKeyAttributes", [])) if kind == "INCLUDE" else set()
            projected = frozenset(keys | set(schema.values()) | extra)
        found.append(Index(gsi["IndexName"], schema["HASH"], schema.get("RANGE"), projected))
    return found


class RecordingDynamo:
    def __init__(self, real: Any, table: str) -> None:
        self._real = real
        self._table = table
        self._indexes = indexes_of(real, table)
        self.writes = PartitionWrites(indexes={index.name: Counter() for index in self._indexes})
        self.exceptions = real.exceptions

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)
        if name not in WRITES:
            return method

        def call(**kwargs: Any) -> Any:
            keys = written_keys(name, kwargs)
            before = [self._read(key) for key in keys]
            try:
                return method(**kwargs)
            finally:
                for key, old in zip(keys, before, strict=True):
                    self._count(key, old, self._read(key))

        return call

    def _read(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._real.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item

    def _count(self, key: dict[str, Any], old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if old == new:
            return
        self.writes.table[key["pk"]["S"]] += 1
        for index in self._indexes:
            counts = self.writes.indexes[index.name]
            old_entry, new_entry = index.entry(old), index.entry(new)
            if old_entry is not None and old_entry == new_entry:
                assert old is not None
                assert new is not None
                if index.projection(old) != index.projection(new):
                    counts[old[index.hash_key]["S"]] += 1
                continue
            if old_entry is not None and old is not None:
                counts[old[index.hash_key]["S"]] += 1
            if new_entry is not None and new is not None:
                counts[new[index.hash_key]["S"]] += 1


def written_keys(operation: str, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    def key_of(request: dict[str, Any]) -> dict[str, Any]:
        item = request.get("Item") or request["Key"]
        return {"pk": item["pk"], "sk": item["sk"]}

    if operation in {"put_item", "update_item", "delete_item"}:
        return [key_of(kwargs)]
    if operation == "transact_write_items":
        return [
            key_of(next(iter(entry.values()))) for entry in kwargs["TransactItems"] if "ConditionCheck" not in entry
        ]
    requests = [request for batch in kwargs["RequestItems"].values() for request in batch]
    return [key_of(request.get("PutRequest") or request["DeleteRequest"]) for request in requests]
