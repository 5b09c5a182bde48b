"""Deployment variants of template.yaml for the linters (cfn-lint, sam validate, checkov).

The linters evaluate the template's Conditions from the parameter defaults, so each variant is the
template with other defaults. ``python tests/infrastructure/template_variants.py DIR`` writes one file
per variant into DIR (``make infra-lint-variants`` lints each of them).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The existing-network ids are placeholders in the documented formats.
_PREFIX_LIST = {"DynamoDbPrefixListId": "pl-6da54004"}
_AUDIT = {
    "EnableAuditTrail": "true",
    "AuditBreakGlassRoleArn": "arn:aws:iam::123456789012:role/audit-break-glass",
}

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "vpc": {"NetworkMode": "vpc", **_PREFIX_LIST},
    "vpc-nat-openai": {
        "NetworkMode": "vpc",
        **_PREFIX_LIST,
        "EnableNatGateway": "true",
        "CreateXRayEndpoint": "true",
        "ModelProvider": "openai",
        "OpenAiBaseUrl": "https://llm.example.com/v1",
        "ModelId": "gpt-4o-mini",
    },
    "vpc-existing": {
        "NetworkMode": "vpc",
        **_PREFIX_LIST,
        "VpcId": "vpc-0123456789abcdef0",
        "VpcCidrBlock": "10.20.0.0/16",
        "PrivateSubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "ExistingDynamoDbEndpointId": "vpce-0123456789abcdef0",
        "ExistingKmsEndpointId": "vpce-0123456789abcdef1",
    },
    "audit": {**_AUDIT, "AuditObjectLockDays": "30", "ConfigRecorderEnabled": "true"},
    "all": {
        "NetworkMode": "vpc",
        **_PREFIX_LIST,
        **_AUDIT,
        "ConfigRecorderEnabled": "true",
        "LogDestinationArn": "arn:aws:logs:eu-west-1:123456789012:destination:siem",
        "BedrockGuardrailId": "abc123def456",
        "BedrockGuardrailVersion": "1",
    },
}


def default_line(value: str) -> Callable[[re.Match[str]], str]:
    """A replacement for the Default line a variant pattern matched: the same line with ``value``."""
    return lambda match: f'{match.group(1)}"{value}"\n'


def variant_text(template: str, overrides: dict[str, str]) -> str:
    """The template text with these parameter defaults (each parameter's Default line replaced)."""
    for name, value in overrides.items():
        pattern = re.compile(rf"(\n  {name}:\n(?:    .*\n)*?    Default: ).*\n")
        template, count = pattern.subn(default_line(value), template, count=1)
        if count != 1:
            raise ValueError(f"no Default line for parameter {name}")
    return template


def main(argv: list[str]) -> int:
    target = Path(argv[1])
    target.mkdir(parents=True, exist_ok=True)
    template = (REPO_ROOT / "template.yaml").read_text(encoding="utf-8")
    for name, overrides in VARIANTS.items():
        (target / f"template-{name}.yaml").write_text(variant_text(template, overrides), encoding="utf-8")
        print(target / f"template-{name}.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
