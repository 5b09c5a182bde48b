"""Print, as JSON, the environment `sam local invoke` gives each function's container.

Run with SAM CLI's own interpreter (`.tools/uv-tools/aws-sam-cli/bin/python`): SAM's code builds it,
as `sam local invoke --env-vars FILE --parameter-overrides ...` does (parameter defaults and
overrides, `Ref` to a resource as its logical id, only the variables the template declares).

    python sam_environment.py TEMPLATE [ENV_VARS_FILE] [Key=Value ...]
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main(argv: list[str]) -> int:
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
    from samcli.local.lambdafn.env_vars import EnvironmentVariables

    template = argv[0]
    env_vars: dict[str, Any] = {}
    if len(argv) > 1 and argv[1].endswith(".json"):
        with open(argv[1], encoding="utf-8") as handle:
            env_vars = json.load(handle)
        argv = argv[:1] + argv[2:]
    overrides = dict(item.split("=", 1) for item in argv[1:])
    stacks, _ = SamLocalStackProvider.get_stacks(template, parameter_overrides=overrides)
    result = {}
    for function in SamFunctionProvider(stacks).get_all():
        values = {**env_vars.get("Parameters", {}), **env_vars.get(function.name, {})}
        environment = EnvironmentVariables(
            function.name,
            function.memory,
            function.timeout,
            function.handler,
            variables=(function.environment or {}).get("Variables"),
            shell_env_values={},
            override_values=values,
            aws_creds={"region": "us-east-1", "key": "testing", "secret": "testing"},
        )
        result[function.name] = environment.resolve()
    json.dump(result, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
