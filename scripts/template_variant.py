"""Write copies of a template whose parameter defaults are replaced, for linters that evaluate the
template's conditions with the defaults only (checkov skips every resource whose condition is false).

    python scripts/template_variant.py template.yaml out.yaml EdgeProtection=waf DomainName=api.example.com
    python scripts/template_variant.py --lint-variants FOLDER   # every variant `make checkov` scans

Only the `Default:` line of each named parameter changes; comments, tags and skips stay as written.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def with_defaults(text: str, overrides: dict[str, str]) -> str:
    for name, value in overrides.items():
        block = re.compile(rf"(?m)^(  {re.escape(name)}:\n(?:    .*\n)*?    Default: ).*$")
        replacement = f'"{value}"'

        def with_value(match: re.Match[str], quoted: str = replacement) -> str:
            return match.group(1) + quoted

        text, count = block.subn(with_value, text, count=1)
        if count != 1:
            raise SystemExit(f"parameter {name} has no Default line")
    return text


EDGE = {
    "EdgeProtection": "waf",
    "EdgeWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/lint/11111111-2222-3333-4444-555555555555",
    "DomainName": "api.example.com",
    "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
    "OriginSecretVersion": "11111111-2222-3333-4444-555555555555",
}
API_DOMAIN = {
    "DomainName": "api.example.com",
    "RegionalCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
}
EDGE_LISTS = {
    "EnableAnonymousIpList": "true",
    "BlockedCountryCodes": "KP,IR",
    "AllowedIpv4Cidrs": "203.0.113.0/24",
    "BlockedIpv4Cidrs": "198.51.100.0/24",
}
# (source template, variant file name, parameter values): the optional parts switched on.
LINT_VARIANTS = (
    ("template.yaml", "main-edge-waf.yaml", EDGE),
    ("template.yaml", "main-api-domain.yaml", API_DOMAIN),
    ("edge/template.yaml", "edge-lists.yaml", EDGE_LISTS),
)


def write_lint_variants(folder: Path, root: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for source, name, overrides in LINT_VARIANTS:
        text = (root / source).read_text(encoding="utf-8")
        (folder / name).write_text(with_defaults(text, overrides), encoding="utf-8")


def main(arguments: list[str]) -> int:
    if len(arguments) == 2 and arguments[0] == "--lint-variants":
        write_lint_variants(Path(arguments[1]), Path(__file__).resolve().parents[1])
        return 0
    if len(arguments) < 2:
        raise SystemExit(__doc__)
    source, target, *pairs = arguments
    overrides = dict(pair.split("=", 1) for pair in pairs)
    Path(target).write_text(with_defaults(Path(source).read_text(encoding="utf-8"), overrides), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
