"""Events API Gateway sends the WebSocket API's $connect authorizer (REQUEST type, REST-style policy answer)."""

from __future__ import annotations

from typing import Any

CONNECT_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/v1/$connect"


def connect_event(ticket: str | None, method_arn: str = CONNECT_ARN, **query: str) -> dict[str, Any]:
    parameters = {**({"ticket": ticket} if ticket is not None else {}), **query}
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": {"Host": "abcdef1234.execute-api.eu-west-1.amazonaws.com", "Sec-WebSocket-Version": "13"},
        "queryStringParameters": parameters or None,
        "stageVariables": None,
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "Yx1a2Fb3IAMFs4w=",
            "requestTime": "29/Nov/2026:18:40:00 +0000",
            "messageDirection": "IN",
            "stage": "v1",
            "connectedAt": 1795977600000,
            "requestTimeEpoch": 1795977600000,
            "identity": {"sourceIp": "198.51.100.7"},
            "requestId": "Yx1a2Fb3IAMFs4w=",
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "connectionId": "Yx1a2cV2IAMCJ5g=",
            "apiId": "abcdef1234",
        },
    }
