"""Packaging: one import namespace, `emolake`, and nothing generic lands top-level in site-packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("warehouse", "ingest", "extract", "analysis", "sql")


def declared_packages() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_subpackage_folder_is_declared_under_emolake():
    found = {"emolake"} | {
        "emolake." + ".".join(init.parent.relative_to(REPO).parts)
        for folder in PACKAGE_FOLDERS for init in (REPO / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert set(declared_packages()) == found


@pytest.mark.slow
def test_wheel_installs_only_the_emolake_namespace(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("emolake-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"emolake"}
    assert "emolake/cli.py" in names and "emolake/sql/00_tables.sql" in names
    assert any(n.startswith("emolake/ingest/embedded/") and n.endswith(".csv") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "emolake = emolake.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_emolake_imports_from_any_folder(tmp_path: Path):
    (tmp_path / "analysis").mkdir()  # a user's own `analysis/` folder must not shadow ours
    (tmp_path / "analysis" / "__init__.py").write_text("raise ImportError('the user folder was imported')\n")
    done = subprocess.run(
        [sys.executable, "-c", "import emolake, emolake.analysis.rdm as r; print(r.__name__)"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "emolake.analysis.rdm"


def test_cli_runs_from_a_clone_as_a_script(tmp_path: Path):
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "emolake" in done.stdout
