"""Count AWS API calls per service with a botocore event hook (docs/contract.md section 7, item 3).

Every client created while counting (boto3, Powertools parameters, a Stubber's client) gets a
``before-parameter-build`` handler, which botocore emits once per API call, retries or not, and which
a Stubber does not short-circuit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session


class AwsCalls:
    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()

    def by_service(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for (service, _operation), count in self.calls.items():
            counts[service] += count
        return dict(counts)

    def operations(self, service: str) -> dict[str, int]:
        return {operation: count for (name, operation), count in self.calls.items() if name == service}

    def clear(self) -> None:
        self.calls.clear()

    def _count(self, event_name: str, **kwargs: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls[(service, operation)] += 1


@contextmanager
def counting_aws_calls() -> Iterator[AwsCalls]:
    """Count the calls of every botocore client created inside the block."""
    counter = AwsCalls()
    real_create_client = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = real_create_client(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", counter._count)
        return client

    botocore.session.Session.create_client = create_client
    try:
        yield counter
    finally:
        botocore.session.Session.create_client = real_create_client
