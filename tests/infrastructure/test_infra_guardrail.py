"""Moderation on by default: the Bedrock guardrail the stack creates, its version, and who may use it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

GUARDRAIL_ARN = {"Fn::GetAtt": ["ChatGuardrail", "GuardrailArn"]}
EXISTING_GUARDRAIL_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:guardrail/${BedrockGuardrailId}"
}
EXISTING = {"BedrockGuardrailId": "abc123def456", "BedrockGuardrailVersion": "3"}
OPENAI = {"ModelProvider": "openai", "OpenAiBaseUrl": "https://llm.example.com/v1", "ModelId": "gpt-4o-mini"}

HARMFUL_CONTENT = {"HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT"}
# docs/privacy.md "What the guardrail anonymises"
ANONYMISED = {
    "NAME",
    "ADDRESS",
    "EMAIL",
    "PHONE",
    "DRIVER_ID",
    "LICENSE_PLATE",
    "VEHICLE_IDENTIFICATION_NUMBER",
    "US_PASSPORT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    "CA_HEALTH_NUMBER",
    "CA_SOCIAL_INSURANCE_NUMBER",
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
    "CREDIT_DEBIT_CARD_NUMBER",
    "CREDIT_DEBIT_CARD_EXPIRY",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "US_BANK_ACCOUNT_NUMBER",
    "US_BANK_ROUTING_NUMBER",
    "IP_ADDRESS",
    "MAC_ADDRESS",
}
CREDENTIALS = {"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "PASSWORD", "PIN", "CREDIT_DEBIT_CARD_CVV"}
# Types ordinary answers need (a link, an account name, "a 30-year-old…", a bank's public code).
NEVER_TOUCHED = {"URL", "USERNAME", "AGE", "SWIFT_CODE"}


def _guardrail(stack: Any) -> dict[str, Any]:
    return dict(stack.props("ChatGuardrail"))


def _pii(stack: Any) -> dict[str, str]:
    entities = _guardrail(stack)["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]
    return {entity["Type"]: entity["Action"] for entity in entities}


# ------------------------------------------------------------------ when the guardrail exists


def test_moderation_is_on_by_default_with_a_guardrail_the_stack_creates(raw, stack) -> None:
    assert raw["Parameters"]["Moderation"]["Default"] == "guardrail"
    assert stack.resources["ChatGuardrail"]["Type"] == "AWS::Bedrock::Guardrail"
    assert stack.resources["ChatGuardrailVersion"]["Type"] == "AWS::Bedrock::GuardrailVersion"


@pytest.mark.parametrize("overrides", [{"Moderation": "off"}, EXISTING], ids=["off", "existing-guardrail"])
def test_no_guardrail_is_created_when_moderation_is_off_or_another_guardrail_is_given(make_stack, overrides) -> None:
    stack = make_stack(**overrides)
    assert not stack.of_type("AWS::Bedrock::Guardrail")
    assert not stack.of_type("AWS::Bedrock::GuardrailVersion")


# ------------------------------------------------------------------ what it filters


def test_harmful_content_is_filtered_in_questions_and_answers(stack) -> None:
    filters = {f["Type"]: f for f in _guardrail(stack)["ContentPolicyConfig"]["FiltersConfig"]}
    assert set(filters) == HARMFUL_CONTENT | {"PROMPT_ATTACK"}
    for kind in HARMFUL_CONTENT:
        assert filters[kind]["InputStrength"] == "HIGH", kind
        assert filters[kind]["OutputStrength"] == "HIGH", kind


def test_prompt_attacks_are_filtered_on_input_only(stack) -> None:
    (attack,) = [f for f in _guardrail(stack)["ContentPolicyConfig"]["FiltersConfig"] if f["Type"] == "PROMPT_ATTACK"]
    assert attack["InputStrength"] == "HIGH"
    assert attack["OutputStrength"] == "NONE"


def test_names_addresses_and_the_chosen_personal_data_are_anonymised(stack) -> None:
    anonymised = {kind for kind, action in _pii(stack).items() if action == "ANONYMIZE"}
    assert anonymised == ANONYMISED


def test_credentials_are_blocked_not_anonymised(stack) -> None:
    blocked = {kind for kind, action in _pii(stack).items() if action == "BLOCK"}
    assert blocked == CREDENTIALS


def test_urls_user_names_and_ages_are_left_alone(stack) -> None:
    assert not NEVER_TOUCHED & set(_pii(stack))


def test_every_entity_type_bedrock_offers_is_a_deliberate_choice(stack) -> None:
    # Given the entity types of the guardrail API (botocore's model of bedrock)
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock")
    offered = set(model.shape_for("GuardrailPiiEntityType").enum)
    # Then each one is anonymised, blocked or left alone on purpose (a new type fails here until chosen)
    assert offered == ANONYMISED | CREDENTIALS | NEVER_TOUCHED


def test_the_guardrail_is_encrypted_with_the_stack_key(stack) -> None:
    assert _guardrail(stack)["KmsKeyArn"] == {"Fn::GetAtt": ["ChatbotKey", "Arn"]}


def test_the_refusals_are_the_configured_messages(raw, stack) -> None:
    messages = raw["Mappings"]["ModerationMessages"]["Refusal"]
    guardrail = _guardrail(stack)
    assert guardrail["BlockedInputMessaging"] == {"Fn::FindInMap": ["ModerationMessages", "Refusal", "BlockedInput"]}
    assert guardrail["BlockedOutputsMessaging"] == {"Fn::FindInMap": ["ModerationMessages", "Refusal", "BlockedOutput"]}
    assert stack.function_env("ChatFunction")["MODERATION_REFUSAL_TEXT"] == {
        "Fn::FindInMap": ["ModerationMessages", "Refusal", "BlockedOutput"]
    }
    assert all(0 < len(text) <= 500 for text in messages.values())


def test_the_guardrail_name_fits_bedrock_whatever_the_stack_name(stack) -> None:
    # "chat-" and the stack id's UUID: 41 characters, within Bedrock's 50.
    assert _guardrail(stack)["Name"] == {
        "Fn::Join": ["-", ["chat", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]]
    }


def test_no_denied_topics_or_blocked_words_by_default(stack) -> None:
    guardrail = _guardrail(stack)
    assert "TopicPolicyConfig" not in guardrail
    assert "WordPolicyConfig" not in guardrail


def test_denied_topics_come_from_the_comma_list(make_stack) -> None:
    stack = make_stack(GuardrailDeniedTopics="investment advice,medical diagnosis")
    topics = stack.value(_guardrail(stack)["TopicPolicyConfig"]["TopicsConfig"])
    assert topics == [
        {
            "Name": "investment advice",
            "Definition": "Questions, requests or answers about investment advice.",
            "Type": "DENY",
        },
        {
            "Name": "medical diagnosis",
            "Definition": "Questions, requests or answers about medical diagnosis.",
            "Type": "DENY",
        },
    ]


def test_every_slot_of_the_topic_list_is_used(make_stack) -> None:
    names = ["one", "two", "three", "four", "five"]
    stack = make_stack(GuardrailDeniedTopics=",".join(names))
    topics = stack.value(_guardrail(stack)["TopicPolicyConfig"]["TopicsConfig"])
    assert [topic["Name"] for topic in topics] == names


def test_blocked_words_come_from_the_comma_list(make_stack) -> None:
    words = ["alpha", "bravo charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo"]
    stack = make_stack(GuardrailBlockedWords=",".join(words))
    config = stack.value(_guardrail(stack)["WordPolicyConfig"]["WordsConfig"])
    assert config == [{"Text": word} for word in words]


def test_the_slots_match_the_list_limits_of_the_parameters(raw) -> None:
    # As many slots (conditions) as the parameter's pattern lets the list hold.
    topic_slots = [name for name in raw["Conditions"] if re.fullmatch(r"HasDeniedTopic\d", name)]
    word_slots = [name for name in raw["Conditions"] if re.fullmatch(r"HasBlockedWord\d", name)]
    assert len(topic_slots) + 1 == 5  # the first topic needs no condition of its own
    assert len(word_slots) + 1 == 10
    assert "{0,4}" in raw["Parameters"]["GuardrailDeniedTopics"]["AllowedPattern"]
    assert "{0,9}" in raw["Parameters"]["GuardrailBlockedWords"]["AllowedPattern"]


# ------------------------------------------------------------------ the version follows the configuration


def configuration_hash(raw: dict[str, Any]) -> str:
    properties = raw["Resources"]["ChatGuardrail"]["Properties"]
    canonical = json.dumps(properties, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_the_version_description_carries_the_hash_of_the_guardrail_configuration(raw) -> None:
    description = raw["Resources"]["ChatGuardrailVersion"]["Properties"]["Description"]["Fn::Sub"]
    expected = configuration_hash(raw)
    assert f"sha256:{expected};" in description, (
        f"ChatGuardrail changed: set the hash in ChatGuardrailVersion's Description to sha256:{expected}"
    )


def test_the_version_description_changes_with_every_update_of_the_guardrail(raw) -> None:
    # Parameter values (topics, words) are not in the hash: the guardrail's UpdatedAt stands for them.
    description = raw["Resources"]["ChatGuardrailVersion"]["Properties"]["Description"]["Fn::Sub"]
    assert "${ChatGuardrail.UpdatedAt}" in description
    assert len(description) - len("${ChatGuardrail.UpdatedAt}") + len("2026-11-29T18:00:00.123456789Z") <= 200


def test_the_hash_changes_when_the_configuration_changes(raw) -> None:
    changed = json.loads(json.dumps(raw))
    changed["Resources"]["ChatGuardrail"]["Properties"]["ContentPolicyConfig"]["FiltersConfig"][0]["InputStrength"] = (
        "LOW"
    )
    assert configuration_hash(changed) != configuration_hash(raw)


def test_the_version_is_the_one_of_the_created_guardrail(stack) -> None:
    assert stack.props("ChatGuardrailVersion")["GuardrailIdentifier"] == {
        "Fn::GetAtt": ["ChatGuardrail", "GuardrailId"]
    }


# ------------------------------------------------------------------ configuration of the functions


def test_the_functions_use_the_created_guardrail_at_its_published_version(stack) -> None:
    environment = stack.function_env("ChatFunction")
    assert environment["MODERATION"] == {"Ref": "Moderation"}
    assert environment["BEDROCK_GUARDRAIL_ID"] == {"Fn::GetAtt": ["ChatGuardrail", "GuardrailId"]}
    assert environment["BEDROCK_GUARDRAIL_VERSION"] == {"Fn::GetAtt": ["ChatGuardrailVersion", "Version"]}


def test_the_functions_use_an_existing_guardrail_when_one_is_given(make_stack) -> None:
    environment = make_stack(**EXISTING).function_env("ChatFunction")
    assert environment["BEDROCK_GUARDRAIL_ID"] == {"Ref": "BedrockGuardrailId"}
    assert environment["BEDROCK_GUARDRAIL_VERSION"] == {"Ref": "BedrockGuardrailVersion"}


# ------------------------------------------------------------------ who may use it


@pytest.mark.parametrize("overrides", [{}, OPENAI], ids=["bedrock", "openai"])
def test_the_chat_role_may_apply_only_the_created_guardrail(make_stack, overrides) -> None:
    stack = make_stack(**overrides)
    assert stack.allowed("ChatFunction", "bedrock:ApplyGuardrail") == [GUARDRAIL_ARN]


def test_the_chat_role_may_apply_only_the_given_guardrail(make_stack) -> None:
    stack = make_stack(**EXISTING, **OPENAI)
    assert stack.allowed("ChatFunction", "bedrock:ApplyGuardrail") == [EXISTING_GUARDRAIL_ARN]


def test_no_other_role_may_apply_a_guardrail(stack) -> None:
    for function_id in ("AuthorizerFunction", "SessionCleanupFunction"):
        assert stack.allowed(function_id, "bedrock:ApplyGuardrail") == [], function_id


def test_the_chat_role_decrypts_the_created_guardrail_only_through_bedrock(make_stack: Callable) -> None:
    def bedrock_decrypt(stack: Any) -> list[Any]:
        return [s.body for s in stack.function_statements("ChatFunction") if s.sid == "DecryptTheGuardrailViaBedrock"]

    (statement,) = bedrock_decrypt(make_stack())
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Fn::GetAtt": ["ChatbotKey", "Arn"]}
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "bedrock.${AWS::Region}.amazonaws.com"}}
    }
    assert bedrock_decrypt(make_stack(**EXISTING)) == []


def _guardrail_condition(stack: Any) -> list[Any]:
    """The bedrock:GuardrailIdentifier condition of each statement that names the configured model."""
    return [
        (s.body.get("Condition") or {}).get("StringEquals", {}).get("bedrock:GuardrailIdentifier")
        for s in stack.function_statements("ChatFunction")
        if s.sid in ("InvokeConfiguredModel", "InvokeConfiguredInferenceProfile")
    ]


@pytest.mark.parametrize("model", ["", "anthropic.claude-sonnet-4-5-20250929-v1:0"], ids=["profile", "foundation"])
def test_the_model_may_be_called_only_with_the_created_guardrail_at_its_version(make_stack, model) -> None:
    (condition,) = _guardrail_condition(make_stack(ModelId=model))
    template, values = condition["Fn::Sub"]
    assert template.endswith(":guardrail/${Id}:${Version}")
    assert values == {
        "Id": {"Fn::GetAtt": ["ChatGuardrail", "GuardrailId"]},
        "Version": {"Fn::GetAtt": ["ChatGuardrailVersion", "Version"]},
    }


def test_the_model_may_be_called_only_with_the_given_guardrail_at_its_version(make_stack) -> None:
    (condition,) = _guardrail_condition(make_stack(**EXISTING))
    assert condition["Fn::Sub"][1] == {
        "Id": {"Ref": "BedrockGuardrailId"},
        "Version": {"Ref": "BedrockGuardrailVersion"},
    }


def test_without_moderation_the_model_call_needs_no_guardrail(make_stack) -> None:
    assert _guardrail_condition(make_stack(Moderation="off")) == [None]
