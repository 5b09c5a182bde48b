"""`chatbot-local serve` with its WebSocket port: printed at start, in the demo page's CSP, and serving
Lambda's async invoke for the template's functions (the functions reach it through
`AWS_ENDPOINT_URL_LAMBDA`)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import boto3
import pytest

from tools.local_api import RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api


@pytest.fixture(scope="module")
def running_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(
        tmp_path_factory.mktemp("websocket-serve"), arguments=["--cleanup-interval", "0"]
    ) as api:
        yield api


def test_it_prints_the_websocket_port_beside_the_others(running_api: RunningApi) -> None:
    lines = running_api.output().splitlines()

    assert any(line.startswith(f"Stream: {running_api.stream} (") for line in lines)


def test_the_demo_page_may_open_the_websocket(running_api: RunningApi) -> None:
    with urllib.request.urlopen(running_api.web + "/", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]

    connect_src = next(part for part in policy.split("; ") if part.startswith("connect-src "))
    assert running_api.stream in connect_src.split()
    assert running_api.base in connect_src.split()


def test_an_async_invoke_runs_a_function_of_the_template(running_api: RunningApi) -> None:
    endpoint = running_api.stream.replace("ws://", "http://")
    client = boto3.client(
        "lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )

    answer = client.invoke(FunctionName="chatbot-local-cleanup", InvocationType="Event", Payload=b"{}")

    assert answer["StatusCode"] == 202
