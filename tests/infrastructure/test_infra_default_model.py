"""The default Bedrock model: current, named in one place, and refused where no profile is mapped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chatbot_security.conversation.model_providers import DEFAULT_BEDROCK_MODEL_ID

ROOT = Path(__file__).resolve().parents[2]
# Models that have reached end of life on Bedrock: a stack that defaults to one fails every message.
RETIRED_MODELS = ("claude-3-haiku-20240307", "claude-3-5-haiku-20241022", "claude-3-sonnet-20240229")
GEOGRAPHY_PREFIXES = {"us", "eu", "jp", "au", "global"}


def _base_model(profile_id: str) -> str:
    prefix, _, model = profile_id.partition(".")
    assert prefix in GEOGRAPHY_PREFIXES, profile_id
    return model


def test_every_mapped_region_uses_the_code_default_model_through_a_profile(raw: dict[str, Any]) -> None:
    mapping = raw["Mappings"]["DefaultBedrockModel"]
    models = {_base_model(entry["InferenceProfileId"]) for entry in mapping.values()}
    assert models == {_base_model(DEFAULT_BEDROCK_MODEL_ID)}


def test_regions_keep_prompts_in_their_geography_where_a_profile_exists(raw: dict[str, Any]) -> None:
    mapping = raw["Mappings"]["DefaultBedrockModel"]
    for region, entry in mapping.items():
        prefix = entry["InferenceProfileId"].split(".")[0]
        if region.startswith("us-"):
            assert prefix == "us", region
        if region.startswith("eu-"):
            assert prefix == "eu", region


def test_the_region_rule_lists_exactly_the_mapped_regions(raw: dict[str, Any]) -> None:
    rule = raw["Rules"]["DefaultModelRegion"]
    ((assertion,),) = [rule["Assertions"]]
    regions, region_ref = assertion["Assert"]["Fn::Contains"]
    assert region_ref == {"Ref": "AWS::Region"}
    assert sorted(regions) == sorted(raw["Mappings"]["DefaultBedrockModel"])
    assert rule["RuleCondition"] == {
        "Fn::And": [
            {"Fn::Equals": [{"Ref": "ModelProvider"}, "bedrock"]},
            {"Fn::Equals": [{"Ref": "ModelId"}, ""]},
        ]
    }


def test_the_model_parameter_defaults_to_the_mapped_model(raw: dict[str, Any]) -> None:
    parameter = raw["Parameters"]["ModelId"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "")


def test_the_openai_provider_cannot_deploy_without_endpoint_and_model(raw: dict[str, Any]) -> None:
    rule = raw["Rules"]["OpenAiProviderSettings"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "ModelProvider"}, "openai"]}
    asserted = [a["Assert"]["Fn::Not"][0]["Fn::Equals"][0] for a in rule["Assertions"]]
    assert asserted == [{"Ref": "OpenAiBaseUrl"}, {"Ref": "ModelId"}]


def test_no_retired_model_is_named_anywhere_a_deployment_reads() -> None:
    shipped = [ROOT / "template.yaml", ROOT / "samconfig.toml"]
    shipped += list((ROOT / "functions").rglob("*.py"))
    shipped += list((ROOT / "layers").rglob("*.py"))
    for path in shipped:
        text = path.read_text(encoding="utf-8")
        for model in RETIRED_MODELS:
            assert model not in text, (path, model)
