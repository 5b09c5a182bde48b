"""docs/contract.md section 6, rule 13: dependencies pinned (lock file and layer requirements), bandit clean,
pip-audit available as a make target. Offline: nothing here asks a package index."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;,]+)$")


def declared() -> list[str]:
    requirements = list(PYPROJECT["project"]["dependencies"])
    for group in PYPROJECT["dependency-groups"].values():
        requirements.extend(item for item in group if isinstance(item, str))
    return requirements


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_declared_dependency_is_pinned_to_one_version() -> None:
    unpinned = [requirement for requirement in declared() if not PIN.match(requirement)]
    assert unpinned == []


def test_the_lock_file_holds_exactly_the_pinned_versions() -> None:
    locked = {normalise(package["name"]): package["version"] for package in LOCK["package"]}
    for requirement in declared():
        match = PIN.match(requirement)
        assert match is not None
        assert locked.get(normalise(match.group(1))) == match.group(3), requirement


def test_every_locked_package_has_hashes() -> None:
    unhashed = [
        package["name"]
        for package in LOCK["package"]
        if package.get("source", {}).get("registry")
        and not all("hash" in item for item in [*package.get("wheels", []), package.get("sdist", {"hash": "-"})])
    ]
    assert unhashed == []


def test_the_layer_requirements_are_pinned_with_hashes() -> None:
    text = (ROOT / "layers" / "security" / "requirements.txt").read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    assert len(blocks) >= 5
    for block in blocks:
        requirement = block.split(" ", 1)[0].split(";", 1)[0]
        assert "==" in requirement, block
        assert "--hash=sha256:" in block, block


def test_functions_ship_no_dependency_of_their_own() -> None:
    for requirements in (ROOT / "functions").glob("*/requirements.txt"):
        lines = [line for line in requirements.read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert lines == [], requirements


def test_bandit_finds_nothing_in_shipped_and_local_code() -> None:
    finished = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "bandit"), "-q", "-c", "pyproject.toml", "-r", "layers", "functions", "local"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:]


def test_pip_audit_is_a_pinned_strict_make_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^audit:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    assert re.search(r"pip-audit==\d+\.\d+\.\d+", recipe.group(1))
    assert "--strict" in recipe.group(1)
