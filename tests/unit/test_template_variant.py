"""scripts/template_variant.py: the copies `make checkov` scans change parameter defaults and nothing else."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("template_variant", ROOT / "scripts" / "template_variant.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEMPLATE = """Parameters:
  EdgeProtection:
    Type: String
    # a comment that stays
    Default: none
    AllowedValues: [none, waf]
  DomainName:
    Type: String
    Default: ""
Resources: {}
"""


def test_only_the_default_lines_of_the_named_parameters_change() -> None:
    changed = load_script().with_defaults(TEMPLATE, {"EdgeProtection": "waf"})
    assert changed == TEMPLATE.replace("    Default: none", '    Default: "waf"')


def test_an_unknown_parameter_is_an_error() -> None:
    with pytest.raises(SystemExit, match="NoSuchParameter"):
        load_script().with_defaults(TEMPLATE, {"NoSuchParameter": "x"})


def test_the_lint_variants_switch_the_edge_and_the_domain_on(tmp_path: Path) -> None:
    load_script().write_lint_variants(tmp_path, ROOT)
    edge = (tmp_path / "main-edge-waf.yaml").read_text()
    assert 'Default: "waf"' in edge
    assert {path.name for path in tmp_path.iterdir()} == {
        "main-edge-waf.yaml",
        "main-api-domain.yaml",
        "edge-lists.yaml",
    }
