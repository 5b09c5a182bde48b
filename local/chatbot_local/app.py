"""`chatbot-local serve`: start everything in order, print where it is, stop cleanly on a signal.

bind the API, WebSocket and demo ports  (a port in use fails first, before anything starts)
environment: local defaults, checks
moto + the template's resources    (table, key, secrets)
development issuer                 (when OIDC_ISSUER is unset)
import the handlers                (after the environment is final, like a Lambda cold start)
listen, print the URLs, wait for SIGINT/SIGTERM, stop in reverse order
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import shlex
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from chatbot_local import environment
from chatbot_local.aws import LocalResources, MotoService, provision
from chatbot_local.console import capture_denial_reasons
from chatbot_local.cors import allowed_origins
from chatbot_local.environment import ConfigError, region_of
from chatbot_local.events import ApiIdentity, scheduled_event
from chatbot_local.gateway import Gateway
from chatbot_local.http_front import BackgroundServer, api_handler
from chatbot_local.issuer import (
    DEFAULT_ROLES_CLAIM,
    DevIssuer,
    IssuerState,
    clear_state,
    load_or_create_key,
    write_state,
)
from chatbot_local.lambdas import InvocationError, LocalFunction, add_to_path, import_handler
from chatbot_local.state import AwsState, claimed_state_dir, clear_aws_state, write_aws_state
from chatbot_local.template import ACCOUNT_ID, SERVERLESS_FUNCTION, STACK_NAME, FunctionSpec, Template
from chatbot_local.web import static_handler
from chatbot_local.websocket_server import WebSocketServer
from chatbot_local.websocket_template import WebSocketApiSpec, websocket_api

Log = Callable[[str], None]
STATE_DIR_VARIABLE = "CHATBOT_LOCAL_STATE_DIR"


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    web_port: int
    template_path: Path
    state_dir: Path
    web_dir: Path
    cleanup_interval: float = 300.0
    # The moto endpoint: loopback on a free port unless told otherwise (a container needs a known
    # address: `--aws-port 4566`, and `--aws-host 0.0.0.0` off the host's network).
    aws_host: str = "127.0.0.1"
    aws_port: int = 0
    # The development issuer's port (its URL is the tokens' `iss`): fixed for events/env.local.json.
    issuer_port: int = 0
    # Where it listens: its URL stays http://127.0.0.1:<port>; `--issuer-host 0.0.0.0` lets a container
    # fetch the JWKS (public keys only: tokens are minted from the state folder, never over HTTP).
    issuer_host: str = "127.0.0.1"
    # The WebSocket API (streaming), its management API and Lambda's async invoke.
    ws_port: int = 3001
    # `--moderation fake`: MODERATION=guardrail with the local fake guardrail (docs/local-development.md).
    fake_guardrail: bool = False


def _say(line: str) -> None:
    print(line, flush=True)


def serve(options: ServeOptions, environ: MutableMapping[str, str] | None = None, log: Log = _say) -> int:
    """Run until SIGINT or SIGTERM; 0 on a clean stop. Configuration mistakes raise (exit 2)."""
    environ = os.environ if environ is None else environ
    started = time.monotonic()
    # Powertools warns on every invocation that publishes no metric; metrics are off locally.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, _stopper(stop)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.ExitStack() as running:
            folder, shared = running.enter_context(claimed_state_dir(options.state_dir))
            if not shared:
                log(
                    f"chatbot-local: another chatbot-local uses {options.state_dir}; "
                    f"this one keeps its state in {folder}"
                )
            api_url, web_url, dev_issuer, aws_url, ws_url = _start(
                dataclasses.replace(options, state_dir=folder), environ, running, stop, log
            )
            log(f"chatbot-local is ready in {time.monotonic() - started:.1f} s")
            log(f"API:   {api_url}")
            log(f"Stream: {ws_url}")
            log(f"Demo:  {web_url}/")
            log(f"AWS:   {aws_url} (moto)")
            if environment.edge_enabled(environ):
                log(f"Edge:  requests need {environment.ORIGIN_HEADER} (value: secret {_origin_secret_name(environ)})")
            if dev_issuer:
                prefix = "" if shared else f"{STATE_DIR_VARIABLE}={shlex.quote(str(folder))} "
                log(f"Token: {prefix}{_token_command()} token --sub alice")
            else:
                log(f"Token: get access tokens from {environ['OIDC_ISSUER']}")
            while not stop.wait(0.5):
                pass
            log("chatbot-local: stopping")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _start(
    options: ServeOptions,
    environ: MutableMapping[str, str],
    running: contextlib.ExitStack,
    stop: threading.Event,
    log: Log,
) -> tuple[str, str, bool, str, str]:
    template = Template.load(options.template_path)
    api, sockets, web = _bind(options, region_of(environ), running, log)

    if options.fake_guardrail:
        environment.use_fake_guardrail(environ)
    environment.apply_local_defaults(environ, web.port)
    environment.check(environ)
    dev_issuer = environment.uses_dev_issuer(environ)

    endpoint, region, resources = _provision_aws(options, template, environ, running, sockets.port)

    issuer: DevIssuer | None = None
    if dev_issuer:
        issuer = DevIssuer(load_or_create_key(options.state_dir), options.issuer_port, options.issuer_host)
        issuer.start()
        running.callback(issuer.stop)
        environment.use_dev_issuer(environ, issuer.url)

    resolver = template.resolver(environ, region, refs=resources.refs())
    api_spec = template.http_api(resolver, allowed_origins(environ))
    specs = [template.function(logical_id, resolver) for logical_id in template.logical_ids(SERVERLESS_FUNCTION)]
    display_host = _display_host(options.host)
    stream_api = _stream_setup(template, environ, resources, specs, f"{display_host}:{sockets.port}")
    add_to_path([*template.layer_dirs(resolver), *(spec.code_dir for spec in specs)])
    _check_settings()
    functions = {spec.logical_id: LocalFunction(spec, import_handler(spec), region) for spec in specs}

    reasons = capture_denial_reasons()
    gateway = Gateway(api_spec, functions, ApiIdentity(region, ACCOUNT_ID), log=log, denial_reason=reasons.take)
    api_url = f"http://{display_host}:{api.port}"
    web_url = f"http://{display_host}:{web.port}"
    ws_url = f"ws://{display_host}:{sockets.port}"
    # The page calls the API and opens the stream's WebSocket (connect-src of its CSP).
    api_origins = [f"http://{host}:{api.port}" for host in ("127.0.0.1", "localhost")]
    api_origins += [f"ws://{host}:{sockets.port}" for host in ("127.0.0.1", "localhost")]

    if issuer is not None:  # before the API listens: `chatbot-local token` works as soon as it does
        roles_claim = environ.get("OIDC_ROLES_CLAIM") or DEFAULT_ROLES_CLAIM
        state = IssuerState(environ["OIDC_ISSUER"], environ["OIDC_AUDIENCE"], roles_claim, issuer.kid, os.getpid())
        write_state(options.state_dir, state)
        running.callback(clear_state, options.state_dir, state.pid)

    web.start(static_handler(options.web_dir, api_url, api_origins, streaming=stream_api is not None))
    api.start(api_handler(gateway))
    sockets.start(stream_api, functions, {spec.function_name: spec.logical_id for spec in specs})
    # Stopping runs in reverse: stop listening first, then the rest (stop() is idempotent).
    running.callback(web.stop)
    running.callback(api.stop)
    running.callback(sockets.stop)

    for logical_id in template.schedule_targets():
        if options.cleanup_interval > 0:
            _schedule(functions[logical_id], options.cleanup_interval, region, stop, log)
    return api_url, web_url, issuer is not None, endpoint, _stream_line(ws_url, stream_api)


def _provision_aws(
    options: ServeOptions,
    template: Template,
    environ: MutableMapping[str, str],
    running: contextlib.ExitStack,
    ws_port: int,
) -> tuple[str, str, LocalResources]:
    """Start the local AWS endpoint, create the template's resources in it and record where it listens."""
    moto = MotoService(options.aws_host, options.aws_port)
    endpoint = moto.start()
    running.callback(moto.stop)
    region = environment.region_of(environ)
    environment.isolate_aws(environ, endpoint, region)
    resources = provision(template, environ, endpoint, region)
    environment.apply_resources(environ, template, resources)
    aws_state = AwsState(
        endpoint,
        region,
        resources.table_name,
        resources.key_id,
        resources.key_arn,
        resources.secret_arns,
        os.getpid(),
        ws_address=f"{_display_host(options.host)}:{ws_port}",
    )
    write_aws_state(options.state_dir, aws_state)
    running.callback(clear_aws_state, options.state_dir, aws_state.pid)
    return endpoint, region, resources


def _stream_line(ws_url: str, stream_api: WebSocketApiSpec | None) -> str:
    described = f"WebSocket API {stream_api.logical_id}" if stream_api else "no WebSocket API in the template"
    return f"{ws_url} ({described}; callbacks and Lambda invoke)"


def _bind(
    options: ServeOptions, region: str, running: contextlib.ExitStack, log: Log
) -> tuple[BackgroundServer, WebSocketServer, BackgroundServer]:
    """The API, WebSocket API and demo page ports, bound (not listening yet): one in use fails first."""
    api = BackgroundServer(options.host, options.port, "API")
    running.callback(api.stop)
    sockets = WebSocketServer(options.host, options.ws_port, identity=ApiIdentity(region, ACCOUNT_ID), log=log)
    running.callback(sockets.stop)
    web = BackgroundServer(options.host, options.web_port, "demo page")
    running.callback(web.stop)
    return api, sockets, web


def _stream_setup(
    template: Template,
    environ: MutableMapping[str, str],
    resources: LocalResources,
    specs: list[FunctionSpec],
    address: str,
) -> WebSocketApiSpec | None:
    """The functions' stream settings (the WebSocket port at `address`) and their own variables, and
    the template's WebSocket API, if any."""
    host, _, port = address.rpartition(":")
    environment.use_stream_endpoints(environ, host, int(port))
    # `Ref` of a function is its name (STREAM_WORKER_FUNCTION), as in CloudFormation.
    names = {spec.logical_id: spec.function_name for spec in specs}
    named = template.resolver(environ, resources.region, refs={**resources.refs(), **names})
    environment.apply_function_variables(environ, template, named)
    return websocket_api(template, named)


def _origin_secret_name(environ: MutableMapping[str, str]) -> str:
    """The secret's name (its ARN ends with the name and a random suffix)."""
    arn = environ.get("EDGE_ORIGIN_SECRET_ARN", "")
    return arn.rsplit(":", 1)[-1].rsplit("-", 1)[0] if arn else "(none)"


def _check_settings() -> None:
    """Validate the environment with the functions' own settings model (one line on failure)."""
    try:
        from chatbot_security.platform.settings import get_settings
    except ImportError:
        return
    try:
        get_settings()
    except Exception as error:
        raise ConfigError(f"invalid configuration: {_first_problem(error)}") from None


def _first_problem(error: Exception) -> str:
    errors: Callable[[], list[dict[str, Any]]] | None = getattr(error, "errors", None)
    if errors is None:
        return str(error).splitlines()[0]
    first = errors()[0]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    location = ".".join(str(part) for part in first.get("loc", ()))
    return f"{location}: {message}" if location else message


def _schedule(function: LocalFunction, interval: float, region: str, stop: threading.Event, log: Log) -> None:
    """Invoke a scheduled function every `interval` seconds, like its EventBridge rule."""

    def run() -> None:
        while not stop.wait(interval):
            event = scheduled_event(region, ACCOUNT_ID, f"{STACK_NAME}-{function.spec.logical_id}", time.time())
            try:
                result = function.invoke(event)
            except InvocationError as error:
                log(f"{function.spec.logical_id}: {error}")
                continue
            counts = {k: v for k, v in result.items() if isinstance(v, int)} if isinstance(result, dict) else {}
            if any(counts.values()):
                log(f"{function.spec.logical_id}: " + " ".join(f"{k}={v}" for k, v in counts.items()))

    threading.Thread(target=run, name=f"schedule-{function.spec.logical_id}", daemon=True).start()


def _stopper(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C while stopping
        stop.set()

    return handle


def _display_host(host: str) -> str:
    """A host a browser can open: the loopback address for "listen everywhere"."""
    with contextlib.suppress(ValueError):
        if not host or ipaddress.ip_address(host).is_unspecified:
            return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _token_command() -> str:
    executable = Path(sys.argv[0])
    if executable.parent != Path():
        with contextlib.suppress(ValueError):
            executable = executable.resolve().relative_to(Path.cwd())
    return shlex.quote(str(executable))
