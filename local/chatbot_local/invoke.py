"""`chatbot-local invoke FUNCTION -e EVENT`: one function's real handler, once, without Docker.

Like `sam local invoke`: the function is named by its logical id in the template, it runs with its
environment from the template (parameter defaults, `--parameter-overrides` on top) and the function's
response is the only thing printed on stdout (the function's own logs go to stderr).

Like `chatbot-local serve`: the same local defaults, the same moto resources and the same development
issuer. When a server runs from this checkout, `invoke` uses its moto endpoint (the sessions it
creates are the server's); otherwise it starts its own for the one invocation.

The committed events hold placeholders that only local state can fill (see events/README.md):
an access token of the development issuer, the id of a session the event's principal owns, an
anonymous session's id and token. `invoke` fills them, so every event runs as committed.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from chatbot_local import environment
from chatbot_local.app import _check_settings
from chatbot_local.aws import LocalResources, MotoService, provision
from chatbot_local.environment import ConfigError
from chatbot_local.issuer import (
    DEFAULT_ROLES_CLAIM,
    DevIssuer,
    IssuerError,
    IssuerState,
    load_or_create_key,
    mint_token,
    read_key,
    read_state,
)
from chatbot_local.lambdas import InvocationError, LocalFunction, add_to_path, import_handler
from chatbot_local.state import read_aws_state
from chatbot_local.template import SERVERLESS_FUNCTION, FunctionSpec, Template

ACCESS_TOKEN = "REPLACE_WITH_ACCESS_TOKEN"  # noqa: S105 - a placeholder's name  # nosec B105
ADMIN_ACCESS_TOKEN = "REPLACE_WITH_ADMIN_ACCESS_TOKEN"  # noqa: S105  # nosec B105
SESSION_ID = "REPLACE_WITH_SESSION_ID"
SESSION_TOKEN = "REPLACE_WITH_SESSION_TOKEN"  # noqa: S105 - a placeholder's name  # nosec B105
PLACEHOLDERS = (ACCESS_TOKEN, ADMIN_ACCESS_TOKEN, SESSION_ID, SESSION_TOKEN)
# Who the filled access tokens are for (the subjects the committed events name).
SAMPLE_USER = "sample-user"
SAMPLE_ADMIN = "sample-admin"
ADMIN_ROLE_VARIABLE = "ADMIN_ROLE"
CHAT_FUNCTION = "ChatFunction"
LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"


@dataclass(frozen=True)
class InvokeOptions:
    function_id: str
    event_path: Path
    template_path: Path
    state_dir: Path
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    with_session: bool = False
    # Print the event with its placeholders filled instead of invoking (for `sam local invoke -e -`).
    print_event: bool = False


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """`Key=Value` pairs, as `sam local invoke --parameter-overrides` takes them (one or several per item)."""
    overrides: dict[str, str] = {}
    for item in items:
        for pair in item.split():
            key, separator, value = pair.partition("=")
            if key.startswith("ParameterKey="):
                raise ConfigError("use Key=Value pairs in --parameter-overrides")
            if not separator or not key:
                raise ConfigError(f"--parameter-overrides takes Key=Value pairs (got {pair!r})")
            overrides[key] = value
    return overrides


def invoke(options: InvokeOptions, environ: MutableMapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the function once; print its response on `out` (stdout). 0 when the function returned."""
    environ = os.environ if environ is None else environ
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    template = Template.load(options.template_path)
    functions = template.logical_ids(SERVERLESS_FUNCTION)
    if options.function_id not in functions:
        raise ConfigError(f"{options.function_id} is not a function of the template ({', '.join(functions)})")
    try:
        event = json.loads(options.event_path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read {options.event_path}: {error.strerror}") from None
    except ValueError:
        raise ConfigError(f"{options.event_path} is not JSON") from None
    _apply_overrides(template, options.parameter_overrides, environ)
    with _logs_to_stderr() as stdout:
        with contextlib.ExitStack() as running:
            tokens = _prepare(template, options, environ, running)
            specs = {
                logical_id: template.function(logical_id, _resolver(template, environ)) for logical_id in functions
            }
            _stream_environment(template, environ, options, specs)
            add_to_path([*template.layer_dirs(_resolver(template, environ)), *(s.code_dir for s in specs.values())])
            _check_settings()
            region = environment.region_of(environ)
            target = LocalFunction(specs[options.function_id], import_handler(specs[options.function_id]), region)
            chat = None
            if CHAT_FUNCTION in specs and _needs_chat(event, options):
                chat = LocalFunction(specs[CHAT_FUNCTION], import_handler(specs[CHAT_FUNCTION]), region)
            event = fill_placeholders(event, tokens, chat, with_session=options.with_session)
            if options.print_event:
                print(json.dumps(event), file=stdout if out is None else out, flush=True)
                return 0
            try:
                result = target.invoke(event)
                status = 0
            except InvocationError as error:
                cause = error.__cause__ or error
                result = {"errorMessage": str(cause), "errorType": type(cause).__name__}
                status = 1
        print(json.dumps(result), file=stdout if out is None else out, flush=True)
    return status


def _stream_environment(
    template: Template, environ: MutableMapping[str, str], options: InvokeOptions, specs: Mapping[str, FunctionSpec]
) -> None:
    """The running server's WebSocket API for the stream functions' callbacks and Lambda invoke, and
    each function's own variables (a `Ref` to a function is its name), as `serve` sets them."""
    shared = read_aws_state(options.state_dir)
    if shared is not None and shared.ws_address:
        host, _, port = shared.ws_address.rpartition(":")
        environment.use_stream_endpoints(environ, host, int(port))
    else:
        # No running server to take Lambda invocations: the cleanup purges every shard in this process.
        environ.setdefault("CLEANUP_FUNCTION", "")
    names = {logical_id: spec.function_name for logical_id, spec in specs.items()}
    resolver = template.resolver(environ, environment.region_of(environ), refs=names)
    environment.apply_function_variables(environ, template, resolver)


def _apply_overrides(template: Template, overrides: Mapping[str, str], environ: MutableMapping[str, str]) -> None:
    """A parameter override sets the variable the parameter feeds (as a deploy would)."""
    names = template.parameter_environment_names()
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(f"{key} is not a parameter of the template")
        environ[names[key]] = value


def _resolver(template: Template, environ: Mapping[str, str]) -> Any:
    return template.resolver(environ, environment.region_of(environ))


@dataclass(frozen=True)
class Tokens:
    """Mints access tokens of the development issuer (None when another issuer is configured)."""

    mint: Callable[[str, Sequence[str], bool], str] | None
    admin_role: str = "admin"


def _prepare(
    template: Template, options: InvokeOptions, environ: MutableMapping[str, str], running: contextlib.ExitStack
) -> Tokens:
    """The environment of `serve`, against a running server's moto endpoint or a private one."""
    exported_level = environ.get(LOG_LEVEL)
    environment.apply_local_defaults(environ, 8080)
    if exported_level is None:  # the function logs at the template's level, on stderr, as under sam
        del environ[LOG_LEVEL]
    environment.check(environ)
    dev_issuer = environment.uses_dev_issuer(environ)
    shared = read_aws_state(options.state_dir)
    if shared is None and options.print_event:
        raise ConfigError("--print-event fills the event from a running chatbot-local: start it first")
    if shared is not None:
        environment.isolate_aws(environ, shared.endpoint_url, shared.region)
        resources = LocalResources(
            shared.endpoint_url, shared.region, shared.table_name, shared.key_id, shared.key_arn, shared.secret_arns
        )
        environment.apply_resources(environ, template, resources)
    else:
        moto = MotoService()
        endpoint = moto.start()
        running.callback(moto.stop)
        region = environment.region_of(environ)
        environment.isolate_aws(environ, endpoint, region)
        resources = provision(template, environ, endpoint, region)
        environment.apply_resources(environ, template, resources)
    admin_role = environ.get(ADMIN_ROLE_VARIABLE) or "admin"
    if not dev_issuer:
        return Tokens(None, admin_role)
    roles_claim = environ.get("OIDC_ROLES_CLAIM") or DEFAULT_ROLES_CLAIM
    state: IssuerState | None = None
    if shared is not None:
        with contextlib.suppress(IssuerError):
            state = read_state(options.state_dir)
    if state is not None:
        key = read_key(options.state_dir)
        environment.use_dev_issuer(environ, state.issuer)
    else:
        key = load_or_create_key(options.state_dir)
        issuer = DevIssuer(key)
        issuer.start()
        running.callback(issuer.stop)
        environment.use_dev_issuer(environ, issuer.url)
        state = IssuerState(environ["OIDC_ISSUER"], environ["OIDC_AUDIENCE"], roles_claim, issuer.kid, os.getpid())
    issuer_state = state

    def mint(subject: str, roles: Sequence[str], mfa: bool) -> str:
        return mint_token(key, issuer_state, subject, roles=roles, mfa=mfa, ttl_seconds=900)

    return Tokens(mint, admin_role)


def _needs_chat(event: Any, options: InvokeOptions) -> bool:
    text = json.dumps(event)
    return SESSION_ID in text or SESSION_TOKEN in text or options.with_session


def fill_placeholders(
    event: dict[str, Any], tokens: Tokens, chat: LocalFunction | None, *, with_session: bool = False
) -> dict[str, Any]:
    """The event with every placeholder replaced by a value from the local state."""
    text = json.dumps(event)
    values: dict[str, str] = {}
    if ACCESS_TOKEN in text or ADMIN_ACCESS_TOKEN in text:
        if tokens.mint is None:
            raise ConfigError("this event needs an access token of the development issuer: unset OIDC_ISSUER")
        values[ACCESS_TOKEN] = tokens.mint(SAMPLE_USER, (), False)
        values[ADMIN_ACCESS_TOKEN] = tokens.mint(SAMPLE_ADMIN, (tokens.admin_role,), True)
    if SESSION_ID in text or SESSION_TOKEN in text or with_session:
        if chat is None:
            raise ConfigError(f"this event names a session: the template has no {CHAT_FUNCTION} to create one")
        if SESSION_TOKEN in text or _principal(event) is None:
            created = _call(chat, _route_event(event, "POST", "/v1/anonymous-sessions", None))
            values[SESSION_TOKEN] = str(created["session_token"])
        else:
            created = _call(chat, _route_event(event, "POST", "/v1/sessions", _principal(event)))
        values[SESSION_ID] = str(created["session_id"])
        if with_session:
            seeded = _route_event(event, "POST", f"/v1/sessions/{values[SESSION_ID]}/messages", _principal(event))
            if SESSION_TOKEN in values:
                session_id = values[SESSION_ID]  # what the authorizer says of an anonymous session's token
                anonymous = {"kind": "anonymous", "subject": session_id, "issuer": "", "roles": "[]", "mfa": False}
                seeded["requestContext"]["authorizer"] = {"lambda": {**anonymous, "session_id": session_id}}
            seeded["routeKey"] = seeded["requestContext"]["routeKey"] = "POST /v1/sessions/{session_id}/messages"
            seeded["pathParameters"] = {"session_id": values[SESSION_ID]}
            seeded["body"] = json.dumps({"content": "Hello from chatbot-local invoke"})
            _call(chat, seeded)
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    filled: dict[str, Any] = json.loads(text)
    return filled


def _principal(event: Mapping[str, Any]) -> dict[str, Any] | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    context = authorizer.get("lambda") if isinstance(authorizer, dict) else None
    return dict(context) if isinstance(context, dict) and context.get("kind") == "user" else None


def _route_event(
    event: Mapping[str, Any], method: str, path: str, principal: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A payload 2.0 event for the chat function, shaped after `event` (its headers and context)."""
    context = copy.deepcopy(event.get("requestContext") or {})
    http = context.get("http") or {}
    route_key = f"{method} {path}"
    now = time.time()
    context.update(
        routeKey=route_key,
        requestId=f"invoke-{int(now * 1000)}",
        timeEpoch=int(now * 1000),
        http={
            "method": method,
            "path": path,
            "protocol": http.get("protocol", "HTTP/1.1"),
            "sourceIp": http.get("sourceIp", "127.0.0.1"),
            "userAgent": http.get("userAgent", "chatbot-local"),
        },
    )
    context.pop("authorizer", None)
    if principal is not None:
        context["authorizer"] = {"lambda": dict(principal)}
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k not in ("authorization", "content-type")}
    headers["content-type"] = "application/json"
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": context,
        "body": "{}",
        "isBase64Encoded": False,
    }


def _call(chat: LocalFunction, event: dict[str, Any]) -> dict[str, Any]:
    response = chat.invoke(event)
    status = response.get("statusCode") if isinstance(response, dict) else None
    if not isinstance(status, int) or status >= 300:
        raise ConfigError(f"cannot create the session the event names ({event['routeKey']} answered {status})")
    body: dict[str, Any] = json.loads(response.get("body") or "{}")
    return body


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[TextIO]:
    """Send everything written to file descriptor 1 (the functions' log lines) to stderr, and yield
    a stream on the real stdout for the response."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    stdout = os.fdopen(os.dup(saved), "w", encoding="utf-8", closefd=True)
    try:
        yield stdout
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        stdout.close()
