"""The identity provider, both shapes: the deployer's own OIDC issuer, or a Cognito user pool made by the stack."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

COGNITO_TYPES = {
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolDomain",
    "AWS::Cognito::ManagedLoginBranding",
    "AWS::Cognito::UserPoolGroup",
}
FUNCTIONS = ("AuthorizerFunction", "ChatFunction", "SessionCleanupFunction")
CALLBACK = "https://app.example.com/callback"


@pytest.fixture(scope="module")
def cognito(make_stack: Callable[..., Any]) -> Any:
    return make_stack(CreateCognitoUserPool="true", CognitoCallbackUrls=CALLBACK)


def pool(stack: Any) -> dict[str, Any]:
    return dict(stack.props("CognitoUserPool"))


def client(stack: Any) -> dict[str, Any]:
    return dict(stack.props("CognitoUserPoolClient"))


# ------------------------------------------------------------------ your own issuer (the default)


def test_by_default_no_identity_provider_is_created(stack: Any) -> None:
    assert not COGNITO_TYPES & {resource["Type"] for resource in stack.resources.values()}
    assert not {name for name in stack.outputs if name.startswith("Cognito")}


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_by_default_the_functions_use_the_deployers_issuer(stack: Any, function_id: str) -> None:
    environment = stack.function_env(function_id)
    assert environment["OIDC_ISSUER"] == {"Ref": "OidcIssuer"}
    assert environment["OIDC_AUDIENCE"] == {"Ref": "OidcAudience"}
    assert environment["ADMIN_REQUIRE_MFA"] == {"Ref": "AdminRequireMfa"}


# ------------------------------------------------------------------ the Cognito user pool


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_the_created_pool_is_the_issuer_and_its_client_the_audience(cognito: Any, function_id: str) -> None:
    environment = cognito.function_env(function_id)
    assert environment["OIDC_ISSUER"] == {"Fn::Sub": "https://${CognitoUserPool.ProviderURL}"}
    assert environment["OIDC_AUDIENCE"] == {"Ref": "CognitoUserPoolClient"}
    assert environment["OIDC_ROLES_CLAIM"] == {"Ref": "OidcRolesClaim"}


def test_with_the_created_pool_mfa_is_enforced_by_the_pool_not_by_an_amr_claim(cognito: Any) -> None:
    # Cognito access tokens carry no `amr`: the pool requires TOTP at every sign-in instead.
    assert cognito.function_env("AuthorizerFunction")["ADMIN_REQUIRE_MFA"] == "false"
    assert pool(cognito)["MfaConfiguration"] == "ON"


def test_pool_requires_totp_and_offers_no_sms_and_no_remembered_devices(cognito: Any) -> None:
    properties = pool(cognito)
    assert properties["MfaConfiguration"] == "ON"
    assert properties["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert "DeviceConfiguration" not in properties
    assert "SmsConfiguration" not in properties
    assert properties["AccountRecoverySetting"]["RecoveryMechanisms"] == [{"Name": "verified_email", "Priority": 1}]


def test_pool_has_a_strong_password_policy(cognito: Any) -> None:
    policy = pool(cognito)["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 14
    for requirement in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"):
        assert policy[requirement] is True, requirement
    assert policy["TemporaryPasswordValidityDays"] <= 7
    assert policy["PasswordHistorySize"] >= 5


def test_self_sign_up_is_off_by_default_and_can_be_switched_on(cognito: Any, make_stack: Callable[..., Any]) -> None:
    assert cognito.params["CognitoAllowSelfSignUp"] == "false"
    assert pool(cognito)["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    open_pool = make_stack(CreateCognitoUserPool="true", CognitoCallbackUrls=CALLBACK, CognitoAllowSelfSignUp="true")
    assert pool(open_pool)["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is False


def test_threat_protection_is_enforced_on_the_plus_plan_only(cognito: Any, make_stack: Callable[..., Any]) -> None:
    assert pool(cognito)["UserPoolTier"] == {"Ref": "CognitoUserPoolTier"}
    assert cognito.params["CognitoUserPoolTier"] == "ESSENTIALS"
    assert "UserPoolAddOns" not in pool(cognito)  # Essentials does not offer it: setting it would fail
    plus = make_stack(CreateCognitoUserPool="true", CognitoCallbackUrls=CALLBACK, CognitoUserPoolTier="PLUS")
    assert pool(plus)["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}


def test_pool_is_kept_when_the_stack_goes(cognito: Any) -> None:
    resource = cognito.resources["CognitoUserPool"]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    assert pool(cognito)["DeletionProtection"] == "ACTIVE"


def test_app_client_is_a_public_pkce_client_for_single_page_apps(cognito: Any) -> None:
    properties = client(cognito)
    assert properties["GenerateSecret"] is False
    assert properties["AllowedOAuthFlowsUserPoolClient"] is True
    assert properties["AllowedOAuthFlows"] == ["code"]  # authorization code (with PKCE); never implicit
    assert "openid" in properties["AllowedOAuthScopes"]
    assert properties["SupportedIdentityProviders"] == ["COGNITO"]
    assert properties["CallbackURLs"] == [CALLBACK]


def test_app_client_allows_only_srp_and_refresh(cognito: Any) -> None:
    assert sorted(client(cognito)["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]


def test_app_client_hides_user_existence_and_revokes_tokens(cognito: Any) -> None:
    properties = client(cognito)
    assert properties["PreventUserExistenceErrors"] == "ENABLED"
    assert properties["EnableTokenRevocation"] is True
    assert properties["TokenValidityUnits"]["AccessToken"] == "minutes"
    assert properties["AccessTokenValidity"] <= 60


def test_managed_login_domain_and_style_are_created(cognito: Any) -> None:
    domain = cognito.props("CognitoUserPoolDomain")
    assert domain["ManagedLoginVersion"] == 2
    assert domain["UserPoolId"] == {"Ref": "CognitoUserPool"}
    branding = cognito.props("CognitoManagedLoginBranding")
    assert branding["ClientId"] == {"Ref": "CognitoUserPoolClient"}
    assert branding["UseCognitoProvidedValues"] is True


def test_domain_prefix_is_the_parameter_or_derived_from_the_stack_id(
    cognito: Any, make_stack: Callable[..., Any]
) -> None:
    derived = cognito.props("CognitoUserPoolDomain")["Domain"]
    assert "Fn::Sub" in derived
    assert derived["Fn::Sub"][0].startswith("chatbot-")
    named = make_stack(CreateCognitoUserPool="true", CognitoCallbackUrls=CALLBACK, CognitoDomainPrefix="my-chatbot")
    assert named.props("CognitoUserPoolDomain")["Domain"] == {"Ref": "CognitoDomainPrefix"}


def test_the_admin_group_carries_the_admin_role(cognito: Any) -> None:
    group = cognito.props("CognitoAdminGroup")
    assert group["GroupName"] == {"Ref": "AdminRole"}
    assert cognito.params["OidcRolesClaim"] == "cognito:groups"


def test_the_pool_outputs_are_published(cognito: Any) -> None:
    assert {"CognitoUserPoolId", "CognitoUserPoolClientId", "CognitoIssuer", "CognitoManagedLoginUrl"} <= set(
        cognito.outputs
    )


def test_a_pool_and_an_own_issuer_cannot_be_configured_together(raw: dict[str, Any]) -> None:
    rule = raw["Rules"]["CognitoUserPoolSettings"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CreateCognitoUserPool"}, "true"]}
    asserted = [assertion["Assert"] for assertion in rule["Assertions"]]
    for parameter in ("OidcIssuer", "OidcAudience", "OidcJwksUrl"):
        assert {"Fn::Equals": [{"Ref": parameter}, ""]} in asserted, parameter
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "CognitoCallbackUrls"}, ""]}]} in asserted


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("https://app.example.com/callback", True),
        ("https://app.example.com/a,https://admin.example.com/b", True),
        ("http://localhost:8080/", True),
        ("http://app.example.com/callback", False),
        ("https://*.example.com/callback", False),
        ("https://app.example.com/#fragment", False),
        ("javascript:alert(1)", False),
    ],
)
def test_redirect_urls_are_https_or_localhost(raw: dict[str, Any], value: str, accepted: bool) -> None:
    pattern = raw["Parameters"]["CognitoCallbackUrls"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


def test_the_authorizer_needs_no_permission_for_the_pool(cognito: Any) -> None:
    # The JWKS of a user pool is public: the authorizer's role gains nothing with the pool.
    actions = {
        action for statement in cognito.function_statements("AuthorizerFunction") for action in statement.actions
    }
    assert not {action for action in actions if action.startswith("cognito")}
