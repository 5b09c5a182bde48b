"""The two events the cleanup function accepts, checked strictly; anything else is refused.

- The EventBridge schedule's event (``source`` ``aws.events``, ``detail-type`` ``Scheduled Event``):
  the run that starts one shard run per expiry shard.
- A shard run's event, exactly ``{"shard": "NN"}`` with NN one of the index's shard numbers
  (``00``..``15``): the run that purges that shard only. It never starts another run.

Whoever else may invoke the function can at most have a valid shard purged (ended sessions only,
the claim decides) or a sweep started; a malformed event does nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatbot_security.storage.records import EXPIRY_PREFIX, EXPIRY_SHARDS

SHARD_KEY = "shard"
_SHARD = re.compile(r"[0-9]{2}")


class RefusedEvent(ValueError):
    """The event is neither the schedule's nor a well-formed shard run's."""


@dataclass(frozen=True)
class ScheduledRun:
    """Start one run per shard (or, without a fan-out target, purge them all in this process)."""


@dataclass(frozen=True)
class ShardRun:
    shard: str  # two digits, 00..EXPIRY_SHARDS-1

    @property
    def bucket(self) -> str:
        return f"{EXPIRY_PREFIX}{self.shard}"

    def to_event(self) -> dict[str, str]:
        return {SHARD_KEY: self.shard}


def shard_names() -> list[str]:
    return [f"{shard:02d}" for shard in range(EXPIRY_SHARDS)]


def parse_event(event: Any) -> ScheduledRun | ShardRun:
    if not isinstance(event, Mapping):
        raise RefusedEvent("the event is not an object")
    if SHARD_KEY in event:
        return _shard_run(event)
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return ScheduledRun()
    raise RefusedEvent("the event is neither the schedule's nor a shard run's")


def _shard_run(event: Mapping[str, Any]) -> ShardRun:
    if set(event) != {SHARD_KEY}:
        raise RefusedEvent("a shard run's event has one key, shard")
    shard = event[SHARD_KEY]
    # fullmatch on str only: no int, no padding, no Unicode digits, no "07\n"
    if type(shard) is not str or not _SHARD.fullmatch(shard) or not shard.isascii() or shard not in shard_names():
        raise RefusedEvent("the shard is not one of the index's shards")
    return ShardRun(shard)
