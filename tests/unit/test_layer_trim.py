"""The layer build keeps the AWS service models the code calls, and nothing it needs is trimmed.

layers/security/trim_layer.py removes every botocore service model but ``KEPT_SERVICES``. These tests
fail when the code builds a client for a service whose model the layer no longer ships, and prove that a
botocore loader restricted to the kept data still builds every client with the operations the functions
call."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import botocore
import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "layers", ROOT / "functions")
CLIENT_FACTORIES = frozenset({"client", "build_client", "single_attempt_client"})
#: The operations each service's callers use; a trimmed model must still answer them.
OPERATIONS = {
    "dynamodb": ("Query", "GetItem", "UpdateItem", "DeleteItem", "PutItem", "TransactWriteItems", "BatchWriteItem"),
    "kms": ("Decrypt", "GenerateDataKey"),
    "secretsmanager": ("GetSecretValue",),
    "bedrock-runtime": ("Converse", "ConverseStream", "ApplyGuardrail"),
    "apigatewaymanagementapi": ("PostToConnection", "DeleteConnection", "GetConnection"),
    "lambda": ("Invoke",),
}


def run_python(script: str, path: list[Path]) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter that sees only ``path`` (and the standard library); it must succeed."""
    finished = subprocess.run(
        [sys.executable, "-B", "-c", script], cwd=path[0], env={"PYTHONPATH": ":".join(map(str, path))},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def load_trim_layer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trim_layer", ROOT / "layers" / "security" / "trim_layer.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


trim_layer = load_trim_layer()


def services_called_by_the_code() -> set[str]:
    """Every literal service name passed to ``client(...)``/``build_client(...)`` (ours or boto3's)."""
    found = set()
    for folder in SHIPPED:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                first = node.args[0]
                if name in CLIENT_FACTORIES and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    return found


@pytest.fixture(scope="module")
def kept_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """botocore's data folder as the layer ships it: the kept entries only, chosen by the build's own rule."""
    source = Path(botocore.__file__).parent / "data"
    kept = tmp_path_factory.mktemp("kept-data")
    for entry in source.iterdir():
        if trim_layer.is_kept(entry):
            (kept / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return kept


def session_on(data: Path) -> botocore.session.Session:
    session = botocore.session.Session()
    loader = Loader(extra_search_paths=[str(data)], include_default_search_paths=False)
    session.register_component("data_loader", loader)
    return session


def test_every_service_the_code_builds_a_client_for_keeps_its_model() -> None:
    called = services_called_by_the_code()

    assert {"dynamodb", "kms", "secretsmanager", "bedrock-runtime"} <= called  # the scan sees the calls
    assert called <= trim_layer.KEPT_SERVICES, f"trimmed from the layer: {called - trim_layer.KEPT_SERVICES}"


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_a_client_built_from_the_trimmed_data_has_every_operation_the_functions_call(
    kept_data: Path, service: str
) -> None:
    client = session_on(kept_data).create_client(
        service, region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )

    assert set(OPERATIONS[service]) <= set(client.meta.service_model.operation_names)
    assert client.meta.endpoint_url.startswith("https://")  # the endpoint rule set and partitions are there


def test_the_trimmed_data_really_lacks_the_other_services(kept_data: Path) -> None:
    with pytest.raises(UnknownServiceError):
        session_on(kept_data).create_client("s3", region_name="eu-west-1")


def test_the_trim_keeps_the_shared_files_and_the_kept_services_and_removes_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name in trim_layer.KEPT_DATA_FILES:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("{}")
    for service in [*trim_layer.KEPT_SERVICES, "s3", "ec2"]:
        (data / service / "2020-01-01").mkdir(parents=True)
        (data / service / "2020-01-01" / "service-2.json.gz").write_bytes(b"model")
        (data / service / "2020-01-01" / "examples-1.json").write_text("{}")
    (data / "stray.json").write_text("{}")

    removed = trim_layer.trim_sdk_data(data)

    assert sorted(removed) == ["ec2", "s3", "stray.json"]
    assert {entry.name for entry in data.iterdir()} == trim_layer.KEPT_SERVICES | trim_layer.KEPT_DATA_FILES
    assert not list(data.rglob("examples-1.json"))
    assert len(list(data.rglob("service-2.json.gz"))) == len(trim_layer.KEPT_SERVICES)


def test_the_trim_refuses_a_folder_that_is_not_botocores_data(tmp_path: Path) -> None:
    (tmp_path / "dynamodb").mkdir()

    with pytest.raises(SystemExit, match=r"endpoints\.json"):
        trim_layer.trim_sdk_data(tmp_path)


def test_a_native_library_without_its_static_symbols_still_loads_and_verifies(tmp_path: Path) -> None:
    import cryptography

    copy = tmp_path / "cryptography"
    shutil.copytree(Path(cryptography.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (library,) = copy.glob("hazmat/bindings/_rust*.so")

    assert trim_layer.drop_unloaded_sections(library) > 0
    script = (
        f"import cryptography; assert cryptography.__file__.startswith({str(copy)!r})\n"
        "from cryptography.hazmat.primitives.asymmetric import ec\n"
        "from cryptography.hazmat.primitives import hashes\n"
        "from cryptography.exceptions import InvalidSignature\n"
        "key = ec.generate_private_key(ec.SECP256R1())\n"
        "signature = key.sign(b'payload', ec.ECDSA(hashes.SHA256()))\n"
        "key.public_key().verify(signature, b'payload', ec.ECDSA(hashes.SHA256()))\n"
        "try:\n"
        "    key.public_key().verify(signature, b'tampered', ec.ECDSA(hashes.SHA256()))\n"
        "except InvalidSignature:\n"
        "    print('rejected')\n"
    )
    finished = run_python(script, [tmp_path])
    assert finished.stdout.strip() == "rejected"
    assert trim_layer.drop_unloaded_sections(library) == 0  # nothing left to blank


def test_a_native_library_without_its_debug_information_still_loads_and_wraps(tmp_path: Path) -> None:
    import wrapt

    copy = tmp_path / "wrapt"
    shutil.copytree(Path(wrapt.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (library,) = copy.glob("_wrappers*.so")
    if b".debug_info" not in library.read_bytes():
        pytest.skip("this machine's wrapt wheel carries no debug information")

    assert trim_layer.drop_unloaded_sections(library) > 0
    assert b".debug_info" in library.read_bytes()  # the section names stay; their contents are gone
    script = (
        f"import wrapt, wrapt._wrappers; assert wrapt.__file__.startswith({str(copy)!r})\n"
        "@wrapt.decorator\n"
        "def doubled(wrapped, instance, args, kwargs):\n"
        "    return 2 * wrapped(*args, **kwargs)\n"
        "@doubled\n"
        "def three():\n"
        "    return 3\n"
        "assert isinstance(three, wrapt._wrappers.FunctionWrapper)  # the native wrapper, not the pure-Python one\n"
        "print(three())\n"
    )
    finished = run_python(script, [tmp_path])
    assert finished.stdout.strip() == "6"
    assert trim_layer.drop_unloaded_sections(library) == 0  # nothing left to blank


def test_a_file_that_is_not_a_native_library_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "not-elf.so"
    other.write_bytes(b"#!/bin/sh\n")

    assert trim_layer.drop_unloaded_sections(other) == 0
    assert other.read_bytes() == b"#!/bin/sh\n"


def test_no_shipped_code_serves_the_swagger_page_whose_assets_the_layer_drops() -> None:
    for folder in SHIPPED:
        for path in folder.rglob("*.py"):
            assert ".enable_swagger(" not in path.read_text(encoding="utf-8"), path


#: Each function's handler modules, as Lambda imports them (CodeUri folder, module).
HANDLERS = (
    ("authorizer", "authorizer.handler"),
    ("chat", "chat.handler"),
    ("session_cleanup", "session_cleanup.handler"),
    ("stream", "stream.handler"),
    ("stream", "stream.worker"),
    ("stream_authorizer", "stream_authorizer.handler"),
)


def test_every_handler_imports_and_builds_its_clients_without_the_code_the_layer_drops() -> None:
    trim_layer = load_trim_layer()
    dropped = sorted(
        code.removesuffix(".py").replace("/", ".") for code in trim_layer.UNUSED_CODE if not code.endswith(".tar.gz")
    )
    folders = sorted({ROOT / "functions" / folder for folder, _ in HANDLERS})
    script = (
        "import importlib, importlib.abc, sys\n"
        f"DROPPED = {dropped!r}\n"
        "class Dropped(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if any(name == d or name.startswith(d + '.') for d in DROPPED):\n"
        "            raise ImportError(f'{name} is not in the layer')\n"
        "sys.meta_path.insert(0, Dropped())\n"
        f"for module in {[module for _, module in HANDLERS]!r}:\n"
        "    importlib.import_module(module)\n"
        "import boto3\n"
        f"for service in {sorted(OPERATIONS)!r}:\n"
        "    boto3.client(service, region_name='eu-west-1', aws_access_key_id='x', aws_secret_access_key='x')\n"
        "print('ok')\n"
    )
    finished = run_python(script, [ROOT / "layers" / "security", *folders])
    assert finished.stdout.strip().endswith("ok")
