"""Parameter values of the optional private network and audit trail (docs/network.md), shared by
the infrastructure fixtures and tests (a test module cannot import them from a conftest: several
conftest modules share that name in one pytest run)."""

from __future__ import annotations

# Parameter values of the optional private network and audit trail (docs/network.md).
DYNAMODB_PREFIX_LIST = "pl-6da54004"
BREAK_GLASS_ROLE = "arn:aws:iam::123456789012:role/audit-break-glass"
NETWORK_VARIANTS: dict[str, dict[str, str]] = {
    "vpc": {"NetworkMode": "vpc", "DynamoDbPrefixListId": DYNAMODB_PREFIX_LIST},
    "vpc-nat": {"NetworkMode": "vpc", "DynamoDbPrefixListId": DYNAMODB_PREFIX_LIST, "EnableNatGateway": "true"},
    "vpc-existing": {
        "NetworkMode": "vpc",
        "DynamoDbPrefixListId": DYNAMODB_PREFIX_LIST,
        "VpcId": "vpc-0123456789abcdef0",
        "VpcCidrBlock": "10.20.0.0/16",
        "PrivateSubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "PrivateRouteTableIds": "rtb-0123456789abcdef0",
        "ExistingKmsEndpointId": "vpce-0123456789abcdef1",
    },
}
AUDIT_VARIANTS: dict[str, dict[str, str]] = {
    "audit": {"EnableAuditTrail": "true", "AuditBreakGlassRoleArn": BREAK_GLASS_ROLE},
    "audit-config": {
        "EnableAuditTrail": "true",
        "AuditBreakGlassRoleArn": BREAK_GLASS_ROLE,
        "ConfigRecorderEnabled": "true",
        "AuditObjectLockDays": "30",
    },
}
