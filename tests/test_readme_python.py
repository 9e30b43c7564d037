"""The README's Python blocks run as written, through `import emolake`, on a lake holding what
`emolake demo` leaves (run set `demo-minilm`, study `li2024`; here a small synthetic stand-in with
those names, so the block runs in seconds).

Before the repository is installed under the `emolake` namespace, `emolake` is the root of the
checkout reached through a symlink; once installed, the same folder is what `import emolake` finds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analysis_lake import write_synthetic
from conftest import REPO
from emolake.warehouse.lake import Lake

README = (REPO / "README.md").read_text()
API_SECTION = README.split("## Python API", 1)[-1].split("\n## ", 1)[0]  # the notebook examples
BLOCKS = re.findall(r"```python\n(.*?)```", API_SECTION, re.S)
INTERNAL_IMPORT = re.compile(r"^\s*(from|import)\s+(analysis|cli|extract|ingest|sql|warehouse)\b", re.M)


def test_the_readme_has_a_python_api_section_with_examples():
    assert "## Python API" in README
    assert BLOCKS and all("import emolake" in block for block in BLOCKS)


def test_readme_python_blocks_import_only_emolake():
    assert not [m.group(0) for block in BLOCKS for m in INTERNAL_IMPORT.finditer(block)]


def _namespace(tmp_path: Path) -> Path:
    """A folder where `emolake` is this checkout's root (as the installed package maps it)."""
    folder = tmp_path / "namespace"
    folder.mkdir()
    (folder / "emolake").symlink_to(REPO, target_is_directory=True)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_python_block_runs(number, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    lake = Lake(work / "lake")
    lake.init()
    write_synthetic(lake, n_emotions=27, run_set="demo-minilm", study="li2024", dataset="emolake-situations")
    paths = [str(_namespace(tmp_path)), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-c", BLOCKS[number]], cwd=work, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    if "mds_human.png" in BLOCKS[number]:
        assert (work / "mds_human.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_import_emolake_gives_the_documented_surface_from_any_folder(tmp_path):
    paths = [str(_namespace(tmp_path)), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    code = "import emolake; print(' '.join(n for n in emolake.__all__ if not hasattr(emolake, n)) or 'ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
    for name in ("open_lake", "query", "rdm", "searchlight", "attribute_neurons", "run_rsa", "run_searchlight",
                 "run_neurons", "plot_rdms", "plot_mds", "plot_searchlight_counts"):
        assert f"emolake.{name}(" in README, f"emolake.{name} is not shown in the README"
