"""Trim the built layer to what the functions use (run by this folder's Makefile, never shipped).

    python3.13 trim_layer.py <the layer's python/ folder>

botocore ships the model of every AWS service (about 15 MiB of the zipped layer); the functions call
the few in ``KEPT_SERVICES``. Everything else under ``botocore/data`` is removed, except the files
every client needs (``KEPT_DATA_FILES``: endpoints, partitions, default configuration, retry rules).
Inside a kept service, its examples (documentation only) go too. A test fails when the code builds a
client for a service that is not kept (tests/unit/test_layer_trim.py).
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

#: The services whose models and endpoint rule sets the layer keeps: one per AWS service the code calls.
KEPT_SERVICES = frozenset(
    {
        "dynamodb",  # sessions, messages, rate counters, tickets, connections
        "kms",  # session data keys
        "secretsmanager",  # the session-token and pseudonym secrets
        "bedrock-runtime",  # Converse, ConverseStream, ApplyGuardrail
        "apigatewaymanagementapi",  # PostToConnection, DeleteConnection (streaming)
        "lambda",  # the asynchronous invokes of the stream worker and of the cleanup's shard runs
    }
)
#: Files at the top of botocore/data that every client reads.
KEPT_DATA_FILES = frozenset({"endpoints.json", "partitions.json", "sdk-default-configuration.json", "_retry.json"})
#: Static files of features the functions never use: Powertools' Swagger UI page (``enable_swagger``).
UNUSED_ASSETS = (
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui-bundle.min.js",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui.min.css",
)
#: Code no function imports: pydantic's mypy plugin (a type checker's), and dateutil's bundled time-zone
#: database (read only by ``gettz`` for a named zone the system lacks; the functions use UTC only).
#: (s3transfer stays although only S3 uses it: boto3 imports it on import.)
UNUSED_CODE = ("pydantic/mypy.py", "dateutil/zoneinfo/dateutil-zoneinfo.tar.gz")
#: Files inside a kept service's version folder that no client reads (documentation examples).
DROPPED_SERVICE_FILES = ("examples-1.json",)


def is_kept(entry: Path) -> bool:
    """Whether a top-level entry of botocore/data stays in the layer."""
    if entry.is_dir():
        return entry.name in KEPT_SERVICES
    return entry.name in KEPT_DATA_FILES


def trim_sdk_data(data: Path) -> list[str]:
    """Remove every entry of botocore/data that is not kept; returns the names removed."""
    removed = []
    for entry in sorted(data.iterdir()):
        if is_kept(entry):
            for name in DROPPED_SERVICE_FILES:
                for path in entry.glob(f"*/{name}"):
                    path.unlink()
            continue
        removed.append(entry.name)
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    missing = (KEPT_SERVICES | KEPT_DATA_FILES) - {entry.name for entry in data.iterdir()}
    if missing:
        raise SystemExit(f"botocore/data has no {', '.join(sorted(missing))}: is this botocore's data folder?")
    return removed


def drop_caches(python: Path) -> None:
    """Bytecode caches from the build machine (make build adds its own, for the paths Lambda sees)."""
    for cache in sorted(python.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)


#: ELF sections no loader reads: the static symbol table and its names (the dynamic ones stay), and
#: the DWARF debugging information (every ``.debug_*`` section) some wheels ship, wrapt's for one.
STATIC_SYMBOL_SECTIONS = frozenset({b".symtab", b".strtab"})
DEBUG_SECTION_PREFIX = b".debug_"
_SHF_ALLOC = 0x2
_SECTION = struct.Struct("<IIQQQQIIQQ")  # ELF64 little-endian section header


def is_unloaded_section(name: bytes) -> bool:
    return name in STATIC_SYMBOL_SECTIONS or name.startswith(DEBUG_SECTION_PREFIX)


def drop_unloaded_sections(library: Path) -> int:
    """Blank an ELF64 shared library's static symbol table and debugging information, as ``strip`` would
    drop them; returns the bytes blanked. The dynamic linker reads only ``.dynsym`` and the loadable
    sections, so loading and calling are unchanged; a native backtrace loses the names of internal
    functions and their source lines. Anything but a little-endian ELF64 is left alone."""
    image = bytearray(library.read_bytes())
    if image[:6] != b"\x7fELF\x02\x01":
        return 0
    (shoff,) = struct.unpack_from("<Q", image, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x3A)
    if shentsize != _SECTION.size or not 0 < shstrndx < shnum:
        return 0
    headers = [list(_SECTION.unpack_from(image, shoff + index * shentsize)) for index in range(shnum)]
    names_offset = headers[shstrndx][4]
    blanked = 0
    for index, header in enumerate(headers):
        name_start = names_offset + header[0]
        name = bytes(image[name_start : image.index(0, name_start)])
        if not is_unloaded_section(name) or header[2] & _SHF_ALLOC:
            continue
        offset, size = header[4], header[5]
        image[offset : offset + size] = bytes(size)
        header[1], header[5] = 0, 0  # SHT_NULL, empty: no tool parses the blanked bytes
        _SECTION.pack_into(image, shoff + index * shentsize, *header)
        blanked += size
    if blanked:
        library.write_bytes(bytes(image))
    return blanked


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    python = Path(argv[0])
    removed = trim_sdk_data(python / "botocore" / "data")
    drop_caches(python)
    for asset in UNUSED_ASSETS:
        (python / asset).unlink(missing_ok=True)
    for code in UNUSED_CODE:
        path = python / code
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    blanked = sum(drop_unloaded_sections(library) for library in sorted(python.rglob("*.so")))
    print(f"trim_layer: blanked {blanked / 2**20:.1f} MiB of symbol tables and debug data in native libraries")
    print(f"trim_layer: kept {len(KEPT_SERVICES)} AWS service models, removed {len(removed)} entries of botocore/data")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
