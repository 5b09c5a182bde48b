"""Run the template's functions in this process, the way the Lambda runtime would.

Code folders and layer folders go on `sys.path` (like `/var/task` and `/opt/python`), the handler
is imported from the template's `Handler`, and each invocation gets a JSON copy of its event and a
LambdaContext. One lock per function: like one warm container, a function runs one event at a time.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chatbot_local.template import ACCOUNT_ID, FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


class Invoker(Protocol):
    """Anything the gateway can invoke with an event (a LocalFunction, or a fake in tests)."""

    def invoke(self, event: dict[str, Any]) -> Any: ...


class HandlerImportError(Exception):
    """A function's handler cannot be imported."""


class InvocationError(Exception):
    """The function raised, or returned something that is not JSON."""


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def add_to_path(folders: Iterable[Path]) -> None:
    """Put code and layer folders first on sys.path (idempotent)."""
    for folder in reversed(list(folders)):
        text = str(folder)
        if text in sys.path:
            sys.path.remove(text)
        sys.path.insert(0, text)


def import_handler(spec: FunctionSpec) -> Handler:
    """Import `spec.handler`; call add_to_path first, and only after the environment is set."""
    try:
        module = importlib.import_module(spec.module_name)
        handler = getattr(module, spec.attribute_name)
    except Exception as error:
        raise HandlerImportError(
            f"cannot import {spec.handler} for {spec.logical_id} from {spec.code_dir} ({type(error).__name__}: {error})"
        ) from error
    if not callable(handler):
        raise HandlerImportError(f"{spec.handler} is not callable")
    return handler  # type: ignore[no-any-return]


class LocalFunction:
    """One function of the template, invoked in process."""

    def __init__(self, spec: FunctionSpec, handler: Handler, region: str) -> None:
        self.spec = spec
        self._handler = handler
        self.name = spec.function_name or spec.logical_id
        self._arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.name}"
        self._lock = threading.Lock()

    def context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.name,
            memory_limit_in_mb=self.spec.memory_mb,
            invoked_function_arn=self._arn,
            aws_request_id=str(uuid.uuid4()),
            timeout_seconds=self.spec.timeout_seconds,
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler with a JSON copy of `event`; return its JSON-serialisable result."""
        payload = json.loads(json.dumps(event))
        with self._lock:
            try:
                result = self._handler(payload, self.context())
            except Exception as error:
                raise InvocationError(f"{self.spec.logical_id} raised {type(error).__name__}") from error
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as error:
            raise InvocationError(f"{self.spec.logical_id} returned a value that is not JSON") from error
