"""`chatbot-local`: run the API on a laptop (`serve`, the default), mint a development token (`token`)
or run one function with one event (`invoke`, like `sam local invoke` without Docker)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from chatbot_local.app import STATE_DIR_VARIABLE, ServeOptions, serve
from chatbot_local.cloudformation import TemplateError
from chatbot_local.environment import ConfigError
from chatbot_local.http_front import PortInUseError
from chatbot_local.invoke import InvokeOptions, invoke, parse_overrides
from chatbot_local.issuer import IssuerError, mint_token, read_key, read_state
from chatbot_local.lambdas import HandlerImportError

COMMANDS = ("serve", "token", "invoke", "-h", "--help")
MAX_TOKEN_TTL = 24 * 3600
# Mistakes the user can fix: one line on stderr, exit status 2, no traceback.
USER_ERRORS = (ConfigError, TemplateError, PortInUseError, IssuerError, HandlerImportError)


def project_root() -> Path:
    """The checkout chatbot-local is installed from (editable install), else the current folder."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_VARIABLE) or project_root() / ".chatbot-local")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number")
    return value


def _ttl(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_TOKEN_TTL:
        raise argparse.ArgumentTypeError(f"--ttl must be between 1 and {MAX_TOKEN_TTL} seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatbot-local",
        description="Run the chatbot API locally: real handlers, API Gateway emulation, moto for AWS.",
    )
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="run the API and the demo page (the default)")
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=_port, default=3000, help="API port (default 3000)")
    serve_parser.add_argument("--web-port", type=_port, default=8080, help="demo page port (default 8080)")
    serve_parser.add_argument(
        "--ws-port",
        type=_port,
        default=3001,
        help="WebSocket API port (streaming; also its callbacks and Lambda async invoke; default 3001)",
    )
    serve_parser.add_argument("--template", type=Path, help="SAM template (default: template.yaml of the project)")
    serve_parser.add_argument(
        "--cleanup-interval", type=float, default=300.0, help="seconds between session-cleanup runs (0: never)"
    )
    serve_parser.add_argument(
        "--aws-host",
        default="127.0.0.1",
        help="address of the local AWS endpoint (moto); 0.0.0.0 lets a container reach it (default 127.0.0.1)",
    )
    serve_parser.add_argument(
        "--aws-port", type=_port, default=0, help="port of the local AWS endpoint (default: a free port)"
    )
    serve_parser.add_argument(
        "--issuer-host",
        default="127.0.0.1",
        help="address the development issuer listens on; 0.0.0.0 lets a container fetch its JWKS (default 127.0.0.1)",
    )
    serve_parser.add_argument(
        "--issuer-port",
        type=_port,
        default=0,
        help="port of the development issuer on 127.0.0.1 (default: a free port)",
    )
    serve_parser.add_argument(
        "--moderation",
        choices=["fake"],
        help="fake: moderate every turn with the local fake guardrail (same as MODERATION=guardrail)",
    )
    token_parser = commands.add_parser("token", help="print an access token of the development issuer")
    token_parser.add_argument("--sub", required=True, help="subject (user id) of the token")
    token_parser.add_argument("--roles", default="", help="comma-separated roles, e.g. admin")
    token_parser.add_argument("--mfa", action="store_true", help='add amr: ["mfa"]')
    token_parser.add_argument(
        "--scope", default="", help="space-separated scopes (the scope claim), e.g. for OIDC_REQUIRED_SCOPES"
    )
    token_parser.add_argument("--ttl", type=_ttl, default=3600, help="lifetime in seconds (default 3600)")
    invoke_parser = commands.add_parser(
        "invoke", help="run one function once with an event, like `sam local invoke` (no Docker)"
    )
    invoke_parser.add_argument("function", help="logical id of the function in the template, e.g. ChatFunction")
    invoke_parser.add_argument("-e", "--event", type=Path, required=True, help="JSON event file, e.g. events/*.json")
    invoke_parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as for sam (e.g. AllowAnonymous=false)",
    )
    invoke_parser.add_argument(
        "--with-session", action="store_true", help="the session the event names already holds one turn"
    )
    invoke_parser.add_argument(
        "--print-event",
        action="store_true",
        help="print the event with its placeholders filled, do not invoke (for sam local invoke -e -)",
    )
    invoke_parser.add_argument("--template", type=Path, help="SAM template (default: template.yaml of the project)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in COMMANDS:
        arguments.insert(0, "serve")
    options = build_parser().parse_args(arguments)
    try:
        if options.command == "token":
            return _token(options)
        root = project_root()
        if options.command == "invoke":
            return invoke(
                InvokeOptions(
                    function_id=options.function,
                    event_path=options.event,
                    template_path=options.template or root / "template.yaml",
                    state_dir=state_dir(),
                    parameter_overrides=parse_overrides(options.parameter_overrides),
                    with_session=options.with_session,
                    print_event=options.print_event,
                )
            )
        return serve(
            ServeOptions(
                host=options.host,
                port=options.port,
                web_port=options.web_port,
                ws_port=options.ws_port,
                template_path=options.template or root / "template.yaml",
                state_dir=state_dir(),
                web_dir=root / "web",
                cleanup_interval=options.cleanup_interval,
                aws_host=options.aws_host,
                aws_port=options.aws_port,
                issuer_host=options.issuer_host,
                issuer_port=options.issuer_port,
                fake_guardrail=options.moderation == "fake",
            )
        )
    except USER_ERRORS as error:
        print(f"chatbot-local: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130


def _token(options: argparse.Namespace) -> int:
    subject = options.sub.strip()
    if not subject:
        raise ConfigError("--sub must not be empty")
    folder = state_dir()
    state = read_state(folder)
    roles = [role.strip() for role in options.roles.split(",") if role.strip()]
    scope = " ".join(options.scope.split())
    key = read_key(folder)
    print(
        mint_token(key, state, subject, roles=roles, mfa=options.mfa, scope=scope, ttl_seconds=options.ttl), flush=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
