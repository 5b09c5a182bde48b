"""Logical ids and references of template.yaml that several infrastructure tests name."""

from __future__ import annotations

FUNCTIONS = (
    "AuthorizerFunction",
    "ChatFunction",
    "SessionCleanupFunction",
    "StreamAuthorizerFunction",
    "StreamFunction",
    "StreamWorkerFunction",
)
KEY_ARN = {"Fn::GetAtt": ["ChatbotKey", "Arn"]}
TABLE_ARN = {"Fn::GetAtt": ["ChatTable", "Arn"]}
