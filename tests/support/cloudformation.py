"""What CloudFormation checks before it creates anything, evaluated in Python for given parameter values.

* :func:`parameter_violations`: each parameter's own constraints (AllowedValues, AllowedPattern matched
  against the whole value, Min/MaxLength, Min/MaxValue);
* :func:`refusing_rules`: the template ``Rules`` whose condition holds and one of whose assertions fails;
* :func:`dangling_references`: in a translated template, every ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` variable,
  ``Fn::FindInMap``, ``DependsOn`` and ``Condition`` of the resources and outputs that a deployment with
  these parameter values keeps must name something that exists in it.

The template is in its plain JSON form (intrinsics in their long form, ``{"Ref": ...}``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from chatbot_local.cloudformation import Resolver

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")


def parameter_values(template: dict[str, Any], overrides: dict[str, str], region: str) -> dict[str, str]:
    """Every parameter's value (default unless overridden) and the Region, as CloudFormation sees them."""
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update(overrides)
    values["AWS::Region"] = region
    return values


# --------------------------------------------------------------------------- parameter constraints


def parameter_violations(template: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """Parameter name -> why CloudFormation refuses its value (empty when every value is accepted)."""
    refused: dict[str, str] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name not in values:
            continue
        value = values[name]
        if "AllowedValues" in spec and value not in [str(item) for item in spec["AllowedValues"]]:
            refused[name] = f"{value!r} is not one of {spec['AllowedValues']}"
        elif "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            refused[name] = f"{value!r} does not match {spec['AllowedPattern']}"
        elif "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            refused[name] = f"longer than {spec['MaxLength']} characters"
        elif "MinLength" in spec and len(value) < int(spec["MinLength"]):
            refused[name] = f"shorter than {spec['MinLength']} characters"
        elif spec.get("Type") == "Number":
            refused.update(_number_violation(name, spec, value))
    unknown = sorted(set(values) - set(template.get("Parameters", {})) - PSEUDO_PARAMETERS)
    for name in unknown:
        refused[name] = "not a parameter of the template"
    return refused


def _number_violation(name: str, spec: dict[str, Any], value: str) -> dict[str, str]:
    try:
        number = float(value)
    except ValueError:
        return {name: f"{value!r} is not a number"}
    if "MinValue" in spec and number < float(spec["MinValue"]):
        return {name: f"below {spec['MinValue']}"}
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        return {name: f"above {spec['MaxValue']}"}
    return {}


# --------------------------------------------------------------------------- rules


def refusing_rules(template: dict[str, Any], values: dict[str, str]) -> dict[str, list[str]]:
    """Rule name -> the AssertDescription of each of its failed assertions, for every rule that refuses."""
    resolver = Resolver(template, parameters=values)
    refused: dict[str, list[str]] = {}
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        failed = [
            str(assertion.get("AssertDescription", name))
            for assertion in rule.get("Assertions", [])
            if not resolver.resolve(assertion["Assert"])
        ]
        if failed:
            refused[name] = failed
    return refused


# --------------------------------------------------------------------------- references


def dangling_references(translated: dict[str, Any], conditions: dict[str, bool], values: dict[str, str]) -> list[str]:
    """What the kept resources and outputs name that does not exist in this deployment."""
    return _References(translated, conditions, values).problems()


class _References:
    def __init__(self, translated: dict[str, Any], conditions: dict[str, bool], values: dict[str, str]) -> None:
        self.translated = translated
        self.conditions = conditions
        self.values = values
        self.defined_conditions = set(translated.get("Conditions", {}))
        self.kept = {
            logical_id
            for logical_id, resource in translated["Resources"].items()
            if conditions.get(resource.get("Condition", ""), True)
        }
        self.parameters = set(translated.get("Parameters", {})) | PSEUDO_PARAMETERS
        self.found: list[str] = []

    def problems(self) -> list[str]:
        for logical_id in sorted(self.kept):
            resource = self.translated["Resources"][logical_id]
            condition = resource.get("Condition")
            if condition and condition not in self.defined_conditions:
                self.found.append(f"{logical_id}: undefined condition {condition}")
            depends_on = resource.get("DependsOn", [])
            for target in [depends_on] if isinstance(depends_on, str) else depends_on:
                if target not in self.kept:
                    self.found.append(f"{logical_id}: DependsOn {target}")
            self.walk(logical_id, resource.get("Properties", {}), frozenset())
        for name, output in self.translated.get("Outputs", {}).items():
            if self.conditions.get(output.get("Condition", ""), True):
                self.walk(f"Outputs.{name}", output.get("Value"), frozenset())
        for name, definition in self.translated.get("Conditions", {}).items():
            self.walk(f"Conditions.{name}", definition, frozenset())
        return self.found

    def walk(self, where: str, node: Any, sub_variables: frozenset[str]) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(where, item, sub_variables)
        elif isinstance(node, dict) and len(node) == 1 and next(iter(node)) in self._CHECKS:
            ((function, args),) = node.items()
            getattr(self, self._CHECKS[function])(where, args, sub_variables)
        elif isinstance(node, dict):
            for value in node.values():
                self.walk(where, value, sub_variables)

    _CHECKS: ClassVar[dict[str, str]] = {
        "Fn::If": "check_if",
        "Ref": "check_ref",
        "Fn::GetAtt": "check_get_att",
        "Fn::Sub": "check_sub",
        "Fn::FindInMap": "check_find_in_map",
        "Condition": "check_condition",
    }

    def check_if(self, where: str, args: Any, sub_variables: frozenset[str]) -> None:
        name, when_true, when_false = args
        if name not in self.defined_conditions:
            self.found.append(f"{where}: Fn::If on undefined condition {name}")
        else:
            self.walk(where, when_true if self.conditions[name] else when_false, sub_variables)

    def check_ref(self, where: str, args: Any, sub_variables: frozenset[str]) -> None:
        if args not in self.parameters and args not in self.kept and args not in sub_variables:
            self.found.append(f"{where}: Ref {args}")

    def check_get_att(self, where: str, args: Any, sub_variables: frozenset[str]) -> None:
        target = args[0] if isinstance(args, list) else str(args).split(".", 1)[0]
        if target not in self.kept:
            self.found.append(f"{where}: GetAtt {target}")

    def check_sub(self, where: str, args: Any, sub_variables: frozenset[str]) -> None:
        text, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
        self.walk(where, variables, sub_variables)
        names = frozenset(variables) | sub_variables | self.parameters
        for variable in _SUB_VARIABLE.findall(text):
            if variable not in names and variable.split(".", 1)[0] not in self.kept:
                self.found.append(f"{where}: Sub ${{{variable}}}")

    def check_find_in_map(self, where: str, args: Any, sub_variables: frozenset[str]) -> None:
        mapping, key, attribute = (_static(item, self.values) for item in args)
        if attribute not in self.translated.get("Mappings", {}).get(mapping, {}).get(key, {}):
            self.found.append(f"{where}: FindInMap {mapping}/{key}/{attribute}")

    def check_condition(self, where: str, args: Any, sub_variables: frozenset[str]) -> None:
        if isinstance(args, str) and args not in self.defined_conditions:
            self.found.append(f"{where}: undefined condition {args}")


def _static(node: Any, values: dict[str, str]) -> str:
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return values[node["Ref"]]
    return str(node)
