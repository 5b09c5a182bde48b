"""Read a CloudFormation/SAM template and resolve the intrinsic functions the local API needs.

The loader turns short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) into the long form
(`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, ...), so the rest of the package sees plain data.
The resolver evaluates those functions against local values: parameter values, the physical
ids of the resources created in moto, and a few pseudo parameters.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml


class TemplateError(Exception):
    """The template cannot be read, or a value the local API needs cannot be resolved."""


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that understands CloudFormation's short-form tags."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        value = [logical_id, attribute]
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a template file; raise TemplateError with a one-line reason when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"template not found: {path}") from None
    except OSError as error:
        raise TemplateError(f"cannot read {path}: {error.strerror}") from None
    try:
        document = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader  # nosec B506
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TemplateError(f"{path.name} is not valid YAML{where}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path.name} has no Resources section")
    return document


class _NoValue:
    """`AWS::NoValue`: the property it stands for is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Resolver:
    """Evaluates intrinsic functions with local values.

    refs: logical id -> what `Ref` returns (physical id); attributes: (logical id, attribute) -> value.
    A `Ref` or `GetAtt` to something not created locally resolves to a recognisable placeholder,
    so properties the local API does not use never block it.

    partial: evaluate only what the parameter values decide, and leave the rest as written: the
    template of one deployment, its references intact. Conditions and `Fn::If` are evaluated,
    `AWS::NoValue` is removed, and `Fn::Split`/`Fn::Select`/`Fn::Join` over parameter values alone
    become their value when `Fn::Split` is the outermost; every other function (`Ref`, `GetAtt`,
    `Sub`, ...) stays as it is, with its arguments resolved the same way.
    """

    template: Mapping[str, Any]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    refs: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    pseudo: Mapping[str, str] = field(default_factory=dict)
    partial: bool = False

    def resolve(self, value: Any) -> Any:
        """Return `value` with every intrinsic function evaluated and `AWS::NoValue` removed."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if self._evaluates(key, argument):
                return self._intrinsic(key, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _evaluates(self, key: str, argument: Any) -> bool:
        """Whether `{key: argument}` is a function this resolver evaluates (rather than walks into)."""
        if key == "Ref":
            return not self.partial or argument == "AWS::NoValue"
        if key == "Condition":
            return not self.partial and isinstance(argument, str)
        if not key.startswith("Fn::"):
            return False
        if not self.partial or key == "Fn::If":
            return True
        return key == "Fn::Split" and self._static(argument)

    def _intrinsic(self, key: str, argument: Any) -> Any:
        if key == "Ref":
            return self._ref(argument)
        if key == "Condition":
            return self.condition(argument)
        return self.complete()._function(key[4:], argument) if key == "Fn::Split" else self._function(key[4:], argument)

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.complete().resolve(conditions[name]))

    def conditions(self) -> dict[str, bool]:
        """Every condition of the template, evaluated."""
        return {name: self.condition(name) for name in self.template.get("Conditions") or {}}

    def complete(self) -> Resolver:
        """This resolver evaluating everything (itself unless partial)."""
        return replace(self, partial=False) if self.partial else self

    def _static(self, value: Any) -> bool:
        """Made of literals, parameters and Fn::Split/Select/Join only (its value is known before deployment)."""
        if isinstance(value, list):
            return all(self._static(item) for item in value)
        if not isinstance(value, dict):
            return True
        if len(value) != 1:
            return False
        ((key, argument),) = value.items()
        if key == "Ref":
            return argument in self.parameters or argument in self.pseudo
        return key in ("Fn::Split", "Fn::Select", "Fn::Join") and self._static(argument)

    def _ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TemplateError("Ref takes a name")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        return f"local-{name}"

    def _get_att(self, argument: Any) -> str:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if not isinstance(argument, list) or len(argument) != 2:
            raise TemplateError("Fn::GetAtt takes [logical id, attribute]")
        logical_id, attribute = (str(self.resolve(part)) for part in argument)
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        return f"local-{logical_id}-{attribute}"

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list) and len(argument) == 2:
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}
        if not isinstance(text, str) or not isinstance(variables, dict):
            raise TemplateError("Fn::Sub takes a string and an optional mapping")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] not in self.pseudo:
                return self._get_att(name)
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def _function(self, name: str, argument: Any) -> Any:
        method = getattr(self, f"_fn_{name.lower()}", None)
        if method is None:
            raise TemplateError(f"Fn::{name} is not supported by the local API")
        return method(argument)

    def _fn_getatt(self, argument: Any) -> str:
        return self._get_att(argument)

    def _fn_sub(self, argument: Any) -> str:
        return self._sub(argument)

    def _fn_if(self, argument: Any) -> Any:
        condition, when_true, when_false = _expect_list("If", argument, 3)
        return self.resolve(when_true if self.condition(str(condition)) else when_false)

    def _fn_equals(self, argument: Any) -> bool:
        left, right = (self.resolve(item) for item in _expect_list("Equals", argument, 2))
        return _text(left) == _text(right)

    def _fn_not(self, argument: Any) -> bool:
        (inner,) = _expect_list("Not", argument, 1)
        return not self.resolve(inner)

    def _fn_and(self, argument: Any) -> bool:
        return all(self.resolve(item) for item in _expect_list("And", argument))

    def _fn_or(self, argument: Any) -> bool:
        return any(self.resolve(item) for item in _expect_list("Or", argument))

    def _fn_join(self, argument: Any) -> str:
        separator, items = _expect_list("Join", argument, 2)
        return str(separator).join(str(item) for item in self.resolve(items))

    def _fn_split(self, argument: Any) -> list[str]:
        separator, text = _expect_list("Split", argument, 2)
        return str(self.resolve(text)).split(str(separator))

    def _fn_select(self, argument: Any) -> Any:
        index, items = _expect_list("Select", argument, 2)
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_findinmap(self, argument: Any) -> Any:
        mapping, first, second = (self.resolve(item) for item in _expect_list("FindInMap", argument, 3))
        try:
            return self.template["Mappings"][mapping][first][second]
        except (KeyError, TypeError):
            raise TemplateError(f"Fn::FindInMap: no {mapping}.{first}.{second}") from None

    # The functions a template's Rules may use besides Equals/Not/And/Or.

    def _fn_contains(self, argument: Any) -> bool:
        items, value = (self.resolve(item) for item in _expect_list("Contains", argument, 2))
        return _text(value) in [_text(item) for item in items]

    def _fn_eachmemberequals(self, argument: Any) -> bool:
        items, value = (self.resolve(item) for item in _expect_list("EachMemberEquals", argument, 2))
        return all(_text(item) == _text(value) for item in items)

    def _fn_eachmemberin(self, argument: Any) -> bool:
        items, allowed = (self.resolve(item) for item in _expect_list("EachMemberIn", argument, 2))
        return {_text(item) for item in items} <= {_text(item) for item in allowed}

    def _fn_base64(self, argument: Any) -> str:
        return base64.b64encode(str(self.resolve(argument)).encode()).decode()

    def _fn_tojsonstring(self, argument: Any) -> str:
        return json.dumps(self.resolve(argument), separators=(",", ":"))


def _text(value: Any) -> str:
    """A value as CloudFormation compares it: booleans are the strings "true" and "false"."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _expect_list(name: str, argument: Any, length: int | None = None) -> list[Any]:
    if not isinstance(argument, list) or (length is not None and len(argument) != length):
        raise TemplateError(f"Fn::{name}: unexpected arguments")
    return argument
