"""Deploy one samconfig.toml environment without losing a setting, then smoke-test the endpoint.

    python scripts/deploy.py --env prod          (make deploy ENV=prod)

Before anything reaches AWS it refuses an environment whose parameter list

* misses a template parameter or names one the template does not have (on an update SAM CLI would send
  UsePreviousValue for the missing one: the stack silently keeps an old value);
* still holds a ``REPLACE_ME_`` placeholder;
* gives ``sam build`` and ``sam deploy`` different Architectures (x86_64 functions would load aarch64 wheels);
* names no region or profile for the deploy.

With ``ModelProvider=bedrock`` it then asks Bedrock, with the deployer's credentials, whether the model the
stack will call (``ModelId``, or the Region's default inference profile) exists and is active there.
Then it runs the gates and the build (``make check ENV=<env>``), checks that the built layer's native wheels
are for that Architecture, deploys (``sam deploy --config-env <env> --no-confirm-changeset``), reads the
stack's ``ApiUrl`` and runs ``scripts/smoke.py`` against it with ``--create``: one session, one message
(a model that is retired or not yet enabled fails the deploy here, not for the first user), deleted again.
The smoke test's credentials come from ``SMOKE_TOKEN`` (and ``SMOKE_TOKEN2`` for the ownership check); an
environment with ``AllowAnonymous=true`` may use an anonymous session instead. ``SMOKE=unauthenticated``
settles for the checks that need no token (the model is then not checked).

``--check-only`` stops after the checks of the configuration (no gate, no AWS call).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess  # nosec B404 - runs make and the SAM CLI, never a shell
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "REPLACE_ME"
ARCHITECTURE_TAGS = {"arm64": "aarch64", "x86_64": "x86_64"}
#: The first part of a system inference-profile id (the template's ModelIdIsInferenceProfile condition).
PROFILE_PREFIXES = frozenset({"us", "eu", "apac", "global", "us-gov", "jp", "au", "ca"})
_OVERRIDE = re.compile(r"""([A-Za-z0-9]+)=("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|\S*)""")


class ConfigError(Exception):
    """The environment cannot be deployed as configured; the message says what to change."""


# --------------------------------------------------------------------------- samconfig.toml


def template_parameters(template: Path) -> list[str]:
    """The names under the template's ``Parameters:`` (read as text: no YAML tags to resolve)."""
    names: list[str] = []
    inside = False
    for line in template.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\S", line):
            inside = line.startswith("Parameters:")
            continue
        if inside and (match := re.match(r"^  ([A-Za-z0-9]+):\s*$", line)):
            names.append(match.group(1))
    return names


def parse_overrides(value: Any) -> dict[str, str]:
    """``parameter_overrides`` as SAM CLI reads it: a table, a list of ``Key=Value`` or one string."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(key): str(item) for key, item in value.items()}
    items = value if isinstance(value, list) else [value]
    parsed: dict[str, str] = {}
    for item in items:
        for key, raw in _OVERRIDE.findall(str(item)):
            quoted = raw[:1] in ("'", '"') and raw[-1:] == raw[:1] and len(raw) > 1
            parsed[key] = raw[1:-1].replace("\\" + raw[0], raw[0]) if quoted else raw
    return parsed


def command_parameters(config: dict[str, Any], env: str, command: str) -> dict[str, Any]:
    """What SAM CLI gives ``command`` in ``env``: the global section, then the command's own keys over it."""
    if env not in config:
        raise ConfigError(f"samconfig.toml has no environment [{env}] (environments: {', '.join(sorted(config))})")
    sections = config[env]
    merged = dict(sections.get("global", {}).get("parameters", {}))
    merged.update(sections.get(command, {}).get("parameters", {}))
    return merged


def check_environment(config: dict[str, Any], env: str, parameters: Sequence[str]) -> dict[str, str]:
    """The deploy's parameter values, or ConfigError listing every problem."""
    build = command_parameters(config, env, "build")
    deploy = command_parameters(config, env, "deploy")
    values = parse_overrides(deploy.get("parameter_overrides"))
    build_values = parse_overrides(build.get("parameter_overrides"))
    problems: list[str] = []
    missing = [name for name in parameters if name not in values]
    if missing:
        problems.append(
            f"parameters missing from [{env}] (on an update they would keep the stack's previous values): "
            + ", ".join(missing)
        )
    unknown = sorted(set(values) - set(parameters))
    if unknown:
        problems.append(f"parameters the template does not have: {', '.join(unknown)}")
    placeholders = sorted(name for name, value in values.items() if PLACEHOLDER in value)
    if placeholders:
        problems.append(f"fill the {PLACEHOLDER}_ placeholders first: {', '.join(placeholders)}")
    build_architecture, deploy_architecture = build_values.get("Architecture"), values.get("Architecture")
    if build_architecture != deploy_architecture:
        problems.append(
            f"sam build would use Architecture={build_architecture} and sam deploy Architecture="
            f"{deploy_architecture}: set it once, in [{env}.global.parameters.parameter_overrides]"
        )
    elif deploy_architecture not in ARCHITECTURE_TAGS:
        problems.append(f"Architecture must be one of {', '.join(ARCHITECTURE_TAGS)}")
    problems.extend(
        f"[{env}.deploy.parameters] names no {key}"
        for key in ("stack_name", "region", "profile")
        if not deploy.get(key)
    )
    if problems:
        raise ConfigError("\n".join(f"  - {problem}" for problem in problems))
    return values


# --------------------------------------------------------------------------- the model


def default_model_profiles(template: Path) -> dict[str, str]:
    """Region -> inference profile of the template's DefaultBedrockModel mapping."""
    text = template.read_text(encoding="utf-8").split("  DefaultBedrockModel:", 1)[-1]
    found: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        match = re.match(r"^    ([a-z0-9-]+): \{InferenceProfileId: ([A-Za-z0-9._:-]+)\}", line)
        if not match:
            break
        found[match.group(1)] = match.group(2)
    return found


def deployed_model(values: dict[str, str], region: str, profiles: dict[str, str]) -> str:
    """The Bedrock model id or inference profile the chat function will call ("" for another provider)."""
    if values.get("ModelProvider") != "bedrock":
        return ""
    model = values.get("ModelId") or profiles.get(region, "")
    if not model:
        raise ConfigError(f"  - the default model has no inference profile mapped for {region}: set ModelId")
    return model


def check_model(bedrock: Any, model: str, region: str) -> str:
    """Ask Bedrock whether ``model`` can be called in ``region``; a line to print, or ConfigError."""
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"model {model} in {region}"
    try:
        if model.split(".", 1)[0] in PROFILE_PREFIXES:
            status = str(bedrock.get_inference_profile(inferenceProfileIdentifier=model).get("status"))
        else:
            details = bedrock.get_foundation_model(modelIdentifier=model)["modelDetails"]
            status = str(details.get("modelLifecycle", {}).get("status"))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise ConfigError(
            f"  - {where}: {code} ({error.response.get('Error', {}).get('Message', '')}): Bedrock does not offer it "
            "to these credentials; choose an active model or profile (docs/infrastructure.md, Default model)"
        ) from error
    except BotoCoreError as error:
        raise ConfigError(f"  - {where}: could not ask Bedrock ({error})") from error
    if status == "LEGACY":
        return f"warning: {where} is LEGACY on the Bedrock model lifecycle: plan its replacement"
    if status != "ACTIVE":
        raise ConfigError(f"  - {where} is {status}, not ACTIVE")
    return f"{where}: ACTIVE"


def bedrock_client(settings: dict[str, Any]) -> Any:
    import boto3

    session = boto3.session.Session(profile_name=str(settings["profile"]), region_name=str(settings["region"]))
    return session.client("bedrock")


# --------------------------------------------------------------------------- build output


def built_wheel_architectures(layer_dir: Path) -> set[str]:
    """The CPU architectures named by the platform tags of the wheels installed in a built layer."""
    found: set[str] = set()
    for wheel in layer_dir.rglob("*.dist-info/WHEEL"):
        for line in wheel.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Tag:"):
                found.update(tag for tag in ARCHITECTURE_TAGS.values() if line.rstrip().endswith("_" + tag))
    return found


def check_built_architecture(build_dir: Path, architecture: str) -> None:
    layer = build_dir / "SecurityLayer"
    if not layer.is_dir():
        raise ConfigError(f"no built layer under {layer}: run the build first")
    found = built_wheel_architectures(layer)
    expected = ARCHITECTURE_TAGS[architecture]
    if found != {expected}:
        raise ConfigError(
            f"the built layer holds wheels for {', '.join(sorted(found)) or 'no architecture'}, the functions "
            f"run on {architecture} ({expected}): rebuild with the same Architecture"
        )


# --------------------------------------------------------------------------- smoke plan


def smoke_arguments(values: dict[str, str], environ: dict[str, str]) -> list[str]:
    """The smoke command's options for this environment (tokens travel in the environment, never argv)."""
    arguments = ["--create"]
    origins = [origin for origin in values.get("AllowedOrigins", "").split(",") if origin]
    if origins:
        arguments += ["--origin", origins[0]]
    if environ.get("SMOKE_TOKEN"):
        return arguments
    if values.get("AllowAnonymous") == "true":
        return [*arguments, "--anonymous"]
    if environ.get("SMOKE") == "unauthenticated":
        return [argument for argument in arguments if argument != "--create"]
    raise ConfigError(
        "  - the smoke test after the deploy needs a token to post one message: set SMOKE_TOKEN (a test user's "
        "access token; SMOKE_TOKEN2 of a second user adds the ownership check), or SMOKE=unauthenticated to "
        "check only what needs no token (the model is then not checked)"
    )


# --------------------------------------------------------------------------- the deploy


Runner = Callable[[Sequence[str]], str]


def run(command: Sequence[str]) -> str:
    """Run a command, showing its output as it comes (a deploy takes minutes), and return that output."""
    print("+ " + shlex.join(command), flush=True)
    lines: list[str] = []
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:  # noqa: S603  # nosec B603
        for line in process.stdout or ():
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
    if process.returncode != 0:
        raise SystemExit(f"deploy stopped: {command[0]} exited with status {process.returncode}")
    return "".join(lines)


def load_environment(root: Path, env: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The environment's deploy settings and its checked parameter values."""
    config = tomllib.loads((root / "samconfig.toml").read_text(encoding="utf-8"))
    values = check_environment(config, env, template_parameters(root / "template.yaml"))
    return command_parameters(config, env, "deploy"), values


def deploy(  # noqa: PLR0917 - each seam is replaced in the tests
    env: str,
    sam: str,
    runner: Runner = run,
    root: Path = ROOT,
    environ: dict[str, str] | None = None,
    bedrock: Callable[[dict[str, Any]], Any] = bedrock_client,
) -> None:
    settings, values = load_environment(root, env)
    smoke = smoke_arguments(values, dict(os.environ if environ is None else environ))
    model = deployed_model(values, str(settings["region"]), default_model_profiles(root / "template.yaml"))
    if model:
        print(check_model(bedrock(settings), model, str(settings["region"])), flush=True)
    runner(["make", "check", f"ENV={env}"])
    check_built_architecture(root / ".aws-sam" / "build", values["Architecture"])
    runner([sam, "deploy", "--config-env", env, "--no-confirm-changeset"])
    outputs = runner(
        [sam, "list", "stack-outputs", "--stack-name", str(settings["stack_name"]), "--output", "json",
         "--region", str(settings["region"]), "--profile", str(settings["profile"])]
    )  # fmt: skip
    runner([sys.executable, str(root / "scripts" / "smoke.py"), "--url", api_url(outputs), *smoke])


def api_url(outputs: str) -> str:
    start = outputs.find("[")
    for output in json.loads(outputs[start:] if start >= 0 else outputs):
        if output.get("OutputKey") == "ApiUrl":
            return str(output["OutputValue"])
    raise SystemExit("deploy stopped: the stack has no ApiUrl output")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="default", help="samconfig.toml environment (default: default)")
    parser.add_argument("--sam", default=str(ROOT / ".tools" / "bin" / "sam"), help="SAM CLI executable")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--check-only", action="store_true", help="check the configuration, deploy nothing")
    arguments = parser.parse_args(argv)
    try:
        if arguments.check_only:
            _, values = load_environment(arguments.root, arguments.env)
            print(f"[{arguments.env}]: {len(values)} parameters, Architecture={values['Architecture']}: ready")
            return 0
        deploy(arguments.env, arguments.sam, root=arguments.root)
    except ConfigError as error:
        print(f"refusing to deploy [{arguments.env}]:\n{error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
