"""`chatbot-local serve` with its WebSocket port: printed at start, in the demo page's CSP, and serving
Lambda's async invoke for the template's functions (the functions reach it through
`AWS_ENDPOINT_URL_LAMBDA`); `chatbot-local invoke` points the functions at a running server's port."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from support.websocket_api import REGION, WEBSOCKET_TEMPLATE

from chatbot_local.invoke import InvokeOptions, _stream_environment
from chatbot_local.state import AwsState, write_aws_state
from chatbot_local.template import SERVERLESS_FUNCTION, Template
from tools.local_api import RunningApi, running_chatbot_local


@pytest.fixture(scope="module")
def running_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(
        tmp_path_factory.mktemp("websocket-serve"), arguments=["--cleanup-interval", "0"]
    ) as api:
        yield api


@pytest.mark.local_api
def test_it_prints_the_websocket_port_beside_the_others(running_api: RunningApi) -> None:
    lines = running_api.output().splitlines()

    assert any(line.startswith(f"Stream: {running_api.stream} (") for line in lines)


@pytest.mark.local_api
def test_the_demo_page_may_open_the_websocket(running_api: RunningApi) -> None:
    with urllib.request.urlopen(running_api.web + "/", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]

    connect_src = next(part for part in policy.split("; ") if part.startswith("connect-src "))
    assert running_api.stream in connect_src.split()
    assert running_api.base in connect_src.split()


@pytest.mark.local_api
def test_an_async_invoke_runs_a_function_of_the_template(running_api: RunningApi) -> None:
    endpoint = running_api.stream.replace("ws://", "http://")
    client = boto3.client(
        "lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )

    answer = client.invoke(FunctionName="chatbot-local-cleanup", InvocationType="Event", Payload=b'{"shard": "00"}')

    assert answer["StatusCode"] == 202


def test_invoke_points_the_stream_functions_at_the_running_servers_websocket_port(tmp_path: Path) -> None:
    state = AwsState("http://127.0.0.1:1", REGION, "t", "k", "arn:k", {}, os.getpid(), ws_address="127.0.0.1:3456")
    write_aws_state(tmp_path, state)
    template = Template.load(WEBSOCKET_TEMPLATE)
    options = InvokeOptions("StreamFunction", tmp_path / "event.json", WEBSOCKET_TEMPLATE, tmp_path)
    resolver = template.resolver({}, REGION)
    specs = {
        logical_id: template.function(logical_id, resolver) for logical_id in template.logical_ids(SERVERLESS_FUNCTION)
    }
    environ: dict[str, str] = {}

    _stream_environment(template, environ, options, specs)

    assert environ["STREAM_CALLBACK_URL"] == "http://127.0.0.1:3456"
    assert environ["AWS_ENDPOINT_URL_LAMBDA"] == "http://127.0.0.1:3456"
    assert environ["STREAM_URL"] == "ws://127.0.0.1:3456"
    assert environ["STREAM_WORKER_FUNCTION"] == "chatbot-local-stream-worker"


def _cleanup_environment(tmp_path: Path) -> dict[str, str]:
    template_path = Path(__file__).resolve().parents[2] / "template.yaml"
    template = Template.load(template_path)
    options = InvokeOptions("SessionCleanupFunction", tmp_path / "event.json", template_path, tmp_path)
    resolver = template.resolver({}, REGION)
    specs = {
        logical_id: template.function(logical_id, resolver) for logical_id in template.logical_ids(SERVERLESS_FUNCTION)
    }
    environ: dict[str, str] = {}
    _stream_environment(template, environ, options, specs)
    return environ


def test_invoke_beside_a_running_server_fans_the_cleanup_out_to_its_lambda_endpoint(tmp_path: Path) -> None:
    state = AwsState("http://127.0.0.1:1", REGION, "t", "k", "arn:k", {}, os.getpid(), ws_address="127.0.0.1:3456")
    write_aws_state(tmp_path, state)
    environ = _cleanup_environment(tmp_path)
    assert environ["CLEANUP_FUNCTION"] == "chatbot-local-cleanup"
    assert environ["AWS_ENDPOINT_URL_LAMBDA"] == "http://127.0.0.1:3456"


def test_invoke_without_a_running_server_purges_every_shard_in_its_own_process(tmp_path: Path) -> None:
    # no server takes Lambda invocations: an empty CLEANUP_FUNCTION means no fan-out target
    environ = _cleanup_environment(tmp_path)
    assert environ["CLEANUP_FUNCTION"] == ""
    assert "AWS_ENDPOINT_URL_LAMBDA" not in environ
