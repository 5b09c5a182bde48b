"""The cold-start reference of docs/performance.md, item 1: a typical Powertools REST handler.

Logger, Tracer, ``APIGatewayHttpResolver`` and one DynamoDB client, each created at import time as
the Powertools examples and most production handlers do. Never deployed: the cold-start benchmark
builds it with ``sam build`` exactly like the product's functions, imports it in fresh processes
and serves its first request (one ``GetItem``) against the same loopback moto as the product's.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver()
dynamodb = boto3.client("dynamodb")


@app.get("/items/<item_id>")
@tracer.capture_method
def get_item(item_id: str) -> dict[str, Any]:
    item = dynamodb.get_item(TableName="items", Key={"pk": {"S": item_id}}).get("Item", {})
    return {"item_id": item_id, "found": bool(item)}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
