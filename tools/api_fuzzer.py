"""Schemathesis against the committed docs/openapi.json on a running `chatbot-local`.

Every operation of the document is fuzzed with positive (schema-valid) and negative (schema-violating)
cases. Each case carries a valid credential: a fresh OIDC token of the development issuer (with the
admin role and MFA, so the admin route runs too) or the session token of an anonymous session. Path
ids, cursors and the admin route's subject are often real ones, so that the cases reach past the
"no such session" answer into history pages, turns, replays, deletion and erasure: the strategies put
a placeholder there, and :class:`ApiFuzzer` swaps in a live value from its pools just before the call
(a live value is as schema-valid as the placeholder, so the case's own bookkeeping stays true).

Checks on every answer: no 5xx, a documented status code, Content-Type and body schema as documented,
schema-violating input refused with a 4xx, and our own: the chat function's security headers and a
generic error message (never an echo of the input).

`make fuzz` runs at least 1,000 cases (``python -m tools.api_fuzzer --cases-per-operation 110``);
tests/local/test_api_fuzzing.py runs a small, derandomised version in the normal suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tools.local_api import EXECUTABLE, GENEROUS_LIMITS, ROOT, RunningApi, running_chatbot_local
from tools.progress import Progress

OPENAPI = ROOT / "docs" / "openapi.json"
# An operation of the document, as schemathesis's schema hands it out (its type parameters unbound), and a case of it.
type Operation = APIOperation[Any, Any, Any, Any]
type FuzzCase = Case[Operation]
# The limits that would otherwise answer most cases with 429 or 409 before any deeper code runs.
FUZZ_ENVIRONMENT = {
    **GENEROUS_LIMITS,
    "MAX_MESSAGES_PER_SESSION": "40",
}
# Placeholders the strategies generate and ApiFuzzer replaces with live values (all schema-valid).
SESSION_PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
SUBJECT_PLACEHOLDER = "fuzz-subject-placeholder"
CURSOR_PLACEHOLDER = "fuzzcursorplaceholder"
OIDC_PLACEHOLDER = "Bearer fuzz-oidc-placeholder"
ANONYMOUS_PLACEHOLDER = "Bearer fuzz-anonymous-placeholder"
USER_SESSIONS = 3
ANONYMOUS_SESSIONS = 3
VICTIM = "fuzz-victim"
# A refused request is any documented 4xx; 413 included (schemathesis' default list lacks it).
SCHEMATHESIS_CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "409", "413", "415",
                                                                   "422", "429"]}}}
)  # fmt: skip
GENERIC_MESSAGES = {
    "The request could not be completed.",
    "The request body is not valid UTF-8 JSON.",
    "You are not allowed to do this.",
    "The resource does not exist.",
    "The session has reached its message limit; start a new session.",
    "The request body is too large.",
    "Send the request body as application/json.",
    "The request does not match the API schema.",
    "Too many requests; retry later.",
    "The model provider failed to answer.",
    "The model provider did not answer in time.",
    "A service the API depends on is busy; retry later.",
    "You have reached the limit of live sessions; delete one first.",
    "This client_message_id was already used for another message in this session.",
}
# A 422 names each failing declared field with its rule, or counts unknown fields (docs/api.md).
VALIDATION_PART = re.compile(
    r"(?P<field>[a-z_]+): [A-Za-z0-9 ,.\"'/?#_-]+|\d+ unknown fields? in the (?:body|query|path|request)"
)
DECLARED_FIELDS = {"content", "client_message_id", "limit", "cursor", "session_id", "subject", "body"}
# Words of the rules themselves: a sent value that is one of them is not an echo.
RULE_WORDS = " ".join(
    [*DECLARED_FIELDS, "unknown fields in the body query path request at most least characters must be a UUIDv4",
     "JSON object valid integer string required invalid format value not blank next_cursor of this listing",
     "no control characters other than newline and tab, no bidirectional controls"]
)  # fmt: skip


# -- our own checks, in schemathesis' check signature ----------------------------------------
def chat_security_headers(ctx: CheckContext, response: Response, case: FuzzCase) -> bool | None:
    """docs/contract.md section 3: every answer of the chat function carries these two headers."""
    body = _json(response)
    from_chat_function = response.status_code in (200, 201, 204) or (isinstance(body, dict) and "error" in body)
    if from_chat_function:
        headers = {name.lower(): value for name, value in response.headers.items()}
        assert headers.get("cache-control") == ["no-store"], "Cache-Control: no-store is missing"
        assert headers.get("x-content-type-options") == ["nosniff"], "X-Content-Type-Options: nosniff is missing"
    return None


def generic_error_body(ctx: CheckContext, response: Response, case: FuzzCase) -> bool | None:
    """Errors say one of the generic messages, with a request id, and nothing else."""
    body = _json(response)
    if isinstance(body, dict) and "error" in body:
        error = body["error"]
        assert set(body) == {"error"}, "the error body has other members"
        if error.get("code") == "validation_error":
            assert _names_fields_and_rules_only(str(error.get("message")), case), "the 422 message is not as documented"
        else:
            assert error.get("message") in GENERIC_MESSAGES, "the error message is not one of the generic messages"
        assert error.get("request_id"), "the error has no request id"
    return None


def _names_fields_and_rules_only(message: str, case: FuzzCase) -> bool:
    """Every part of the message is a declared field with its rule, or a count of unknown fields, and no
    value the request sent (four characters or more) appears in it."""
    if message == "The request does not match the API schema.":
        return True
    for part in message.split("; "):
        matched = VALIDATION_PART.fullmatch(part)
        if matched is None or (matched["field"] is not None and matched["field"] not in DECLARED_FIELDS):
            return False
    sent = [*(case.query or {}).values(), *(case.path_parameters or {}).values()]
    if isinstance(case.body, dict):
        sent += [*(name for name in case.body if name not in DECLARED_FIELDS), *case.body.values()]
    return not any(
        isinstance(value, str) and len(value) >= 4 and value in message and value not in RULE_WORDS for value in sent
    )


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    chat_security_headers,
    generic_error_body,
]


def _json(response: Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None


# -- the fuzzer --------------------------------------------------------------------------------
@dataclass
class Failure:
    operation: str
    mode: str
    status: int
    title: str


@dataclass
class FuzzReport:
    cases: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    progress: Progress | None = None  # the running count of cases (make fuzz)

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def distinct_failures(self) -> list[Failure]:
        seen: dict[tuple[str, str, int, str], Failure] = {}
        for failure in self.failures:
            seen.setdefault((failure.operation, failure.mode, failure.status, failure.title), failure)
        return list(seen.values())

    def lines(self) -> Iterator[str]:
        yield f"{'operation':<40} {'positive':>8} {'negative':>8}  statuses"
        for operation in sorted({operation for operation, _ in self.cases}):
            positive, negative = self.cases[(operation, "positive")], self.cases[(operation, "negative")]
            statuses = " ".join(f"{s}x{n}" for s, n in sorted(self.by_operation.get(operation, Counter()).items()))
            yield f"{operation:<40} {positive:>8} {negative:>8}  {statuses}"
        yield "statuses: " + ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        yield (
            f"cases: {self.total}  5xx: {self.server_errors}  failures: {len(self.failures)} "
            f"({len(self.distinct_failures())} distinct)  time: {self.seconds:.1f} s"
        )
        for failure in self.distinct_failures():
            yield f"FAILED {failure.operation} [{failure.mode}] {failure.status}: {failure.title}"


@dataclass
class Slot:
    """A credential and one of its live sessions."""

    authorization: str
    session_id: str


class ApiFuzzer:
    def __init__(self, api: RunningApi, derandomize: bool = False) -> None:
        self.api = api
        self.derandomize = derandomize
        self.http = requests.Session()
        self.user_token = mint(api, "fuzz", "--roles", "admin", "--mfa")
        self.victim_token = mint(api, VICTIM)
        self.user_slots = [Slot(f"Bearer {self.user_token}", self._new_user_session()) for _ in range(USER_SESSIONS)]
        self.anonymous_slots = [self._new_anonymous_slot() for _ in range(ANONYMOUS_SESSIONS)]
        self.cursors: list[str] = []
        self._with_history(self.user_slots[0].session_id, self.user_slots[0].authorization)
        self._victim_sessions()
        schemathesis.openapi.format("uuid4", st.uuids(version=4).map(str))
        self.schema = schemathesis.openapi.from_path(str(OPENAPI), config=SCHEMATHESIS_CONFIG)

    # -- running ----------------------------------------------------------------------------
    def run(self, cases_per_operation: int, progress: Progress | None = None) -> FuzzReport:
        report = FuzzReport(progress=progress)
        started = time.monotonic()
        operations = self._operations()
        if progress is not None:  # at most this many: hypothesis may find fewer distinct cases
            progress.total = len(operations) * 2 * cases_per_operation
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                self._fuzz(operation, mode, cases_per_operation, report)
        report.seconds = time.monotonic() - started
        return report

    def _fuzz(self, operation: Any, mode: GenerationMode, examples: int, report: FuzzReport) -> None:
        strategy = st.one_of(self._strategies(operation, mode))

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=self.derandomize,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=strategy, pick=st.integers(0, 1_000))
        def one_case(case: FuzzCase, pick: int) -> None:
            self._run_case(operation.label, mode, case, pick, report)

        with contextlib.suppress(Unsatisfiable):  # no negative case exists for an operation without inputs
            one_case()

    def _strategies(self, operation: Any, mode: GenerationMode) -> list[Any]:
        """Generated ids and live ones, for a signed-in user and for an anonymous visitor."""
        has_session = "{session_id}" in operation.path
        strategies = []
        for authorization in (OIDC_PLACEHOLDER, ANONYMOUS_PLACEHOLDER):
            headers = {"Authorization": authorization}
            strategies.append(operation.as_strategy(generation_mode=mode, headers=headers))
            if has_session:
                live = {"session_id": SESSION_PLACEHOLDER}
                strategies.append(operation.as_strategy(generation_mode=mode, headers=headers, path_parameters=live))
                if operation.method.upper() == "GET" and operation.path.endswith("/messages"):
                    strategies.append(
                        operation.as_strategy(
                            generation_mode=mode, headers=headers, path_parameters=live,
                            query={"cursor": CURSOR_PLACEHOLDER, "limit": 2},
                        )
                    )  # fmt: skip
        if "{subject}" in operation.path:
            strategies.append(
                operation.as_strategy(
                    generation_mode=mode,
                    headers={"Authorization": OIDC_PLACEHOLDER},
                    path_parameters={"subject": SUBJECT_PLACEHOLDER},
                )
            )
        return strategies

    def _run_case(self, label: str, mode: GenerationMode, case: FuzzCase, pick: int, report: FuzzReport) -> None:
        slot = self._fill_in(case, pick)
        report.cases[(label, mode.value)] += 1
        response = case.call(base_url=self.api.base, session=self.http, timeout=30)
        report.statuses[response.status_code] += 1
        report.by_operation.setdefault(label, Counter())[response.status_code] += 1
        if report.progress is not None:
            report.progress.advance(server_error=response.status_code >= 500)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                report.failures.append(Failure(label, mode.value, response.status_code, failure.title))
        self._learn(label, case, response, slot)

    def _operations(self) -> list[Operation]:
        operations = []
        for result in self.schema.get_all_operations():
            if not isinstance(result, Ok):
                raise result.err()  # docs/openapi.json is not a valid document: nothing to fuzz
            operations.append(result.ok())
        return operations

    def _fill_in(self, case: FuzzCase, pick: int) -> Slot | None:
        """Swap the placeholders for live values; returns the slot whose session the case uses."""
        anonymous = case.headers is not None and case.headers.get("Authorization") == ANONYMOUS_PLACEHOLDER
        slots = self.anonymous_slots if anonymous else self.user_slots
        slot = slots[pick % len(slots)]
        if case.headers and case.headers.get("Authorization") in (OIDC_PLACEHOLDER, ANONYMOUS_PLACEHOLDER):
            case.headers["Authorization"] = slot.authorization
        used: Slot | None = None
        if case.path_parameters and case.path_parameters.get("session_id") == SESSION_PLACEHOLDER:
            case.path_parameters["session_id"] = slot.session_id
            used = slot
        if case.path_parameters and case.path_parameters.get("subject") == SUBJECT_PLACEHOLDER:
            case.path_parameters["subject"] = VICTIM
        if case.query and case.query.get("cursor") == CURSOR_PLACEHOLDER:
            if self.cursors:
                case.query["cursor"] = self.cursors[pick % len(self.cursors)]
            else:
                del case.query["cursor"]
        return used

    def _learn(self, label: str, case: FuzzCase, response: Response, slot: Slot | None) -> None:
        """Keep the pools live: harvest cursors, replace sessions that were deleted or filled up."""
        body = _json(response)
        if label == "GET /v1/sessions/{session_id}/messages" and response.status_code == 200:
            cursor = body.get("next_cursor") if isinstance(body, dict) else None
            if cursor and cursor not in self.cursors:
                self.cursors = [*self.cursors[-19:], cursor]
        ended = (label == "DELETE /v1/sessions/{session_id}" and response.status_code == 204) or (
            label == "POST /v1/sessions/{session_id}/messages" and response.status_code == 409
        )
        if slot is not None and ended:
            self._replace(slot)
        if label == "DELETE /v1/admin/users/{subject}" and response.status_code == 204:
            self._victim_sessions()
        if label == "DELETE /v1/me" and response.status_code == 204:
            self._after_own_erasure(case.headers.get("Authorization") if case.headers else None)

    # -- pools ------------------------------------------------------------------------------
    def _after_own_erasure(self, authorization: str | None) -> None:
        """The caller erased everything of theirs: every session of the user, or the anonymous slot's."""
        erased = [slot for slot in self.anonymous_slots if slot.authorization == authorization]
        if authorization == f"Bearer {self.user_token}":
            erased = self.user_slots
        for slot in erased:
            self._replace(slot)

    def _replace(self, slot: Slot) -> None:
        if slot in self.anonymous_slots:
            fresh = self._new_anonymous_slot()
            slot.authorization, slot.session_id = fresh.authorization, fresh.session_id
        else:
            slot.session_id = self._new_user_session()

    def _new_user_session(self) -> str:
        return str(self._call("POST", "/v1/sessions", f"Bearer {self.user_token}", 201)["session_id"])

    def _new_anonymous_slot(self) -> Slot:
        created = self._call("POST", "/v1/anonymous-sessions", None, 201)
        return Slot(f"Bearer {created['session_token']}", created["session_id"])

    def _with_history(self, session_id: str, authorization: str) -> None:
        for n in range(4):
            self._call("POST", f"/v1/sessions/{session_id}/messages", authorization, 201, {"content": f"warm-up {n}"})

    def _victim_sessions(self) -> None:
        session_id = self._call("POST", "/v1/sessions", f"Bearer {self.victim_token}", 201)["session_id"]
        self._with_history(session_id, f"Bearer {self.victim_token}")

    def _call(self, method: str, path: str, authorization: str | None, expected: int, body: Any = None) -> Any:
        headers = {"Authorization": authorization} if authorization else {}
        response = self.http.request(method, self.api.base + path, headers=headers, json=body, timeout=30)
        if response.status_code != expected:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response.json()


def mint(api: RunningApi, subject: str, *options: str) -> str:
    """`chatbot-local token`: a fresh access token of the running API's development issuer."""
    finished = subprocess.run(
        [str(EXECUTABLE), "token", "--sub", subject, *options],
        cwd=ROOT, env=api.environ, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return finished.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def fuzzed_api(folder: Path) -> Iterator[RunningApi]:
    with running_chatbot_local(folder, FUZZ_ENVIRONMENT) as api:
        yield api


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description="Fuzz the running chatbot-local with docs/openapi.json")
    parser.add_argument("--cases-per-operation", type=int, default=110, help="per operation and mode (default 110)")
    parser.add_argument("--minimum", type=int, default=1000, help="fail if fewer cases ran (default 1000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chatbot-fuzz-") as folder, fuzzed_api(Path(folder)) as api:
        progress = Progress("fuzz: cases", args.minimum)
        report = ApiFuzzer(api).run(args.cases_per_operation, progress)
        progress.close()
    for line in report.lines():
        say(line)
    if report.failures or report.total < args.minimum:
        say(f"fuzz: FAILED ({report.total} cases, minimum {args.minimum})")
        return 1
    say("fuzz: PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
