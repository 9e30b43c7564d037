"""Shared fixtures: a fresh lake, the real shared data (skipped with the reason where absent)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from emolake.warehouse.lake import Lake

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    return Path(os.environ.get("EMOLAKE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    lake.init()
    return lake


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set EMOLAKE_SHARED_DATA to a copy of shared/data)")
    return path


def in_ci() -> bool:
    """True under CI (`CI=true`, set by `.ci/run` and by most CI services)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_executable(path: Path, install: str) -> Path:
    """`path` if it is an executable; else skip the test, except in CI, where a skip would hide
    that the test never ran: there the test fails, naming the command that installs it."""
    if path.is_file() and os.access(path, os.X_OK):
        return path
    message = f"{path} not found ({install})"
    if in_ci():
        pytest.fail(f"{message}: CI=true, so this test must run, not be skipped")
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Headless Chromium for the report's browser tests (Debian package `chromium`)."""
    return require_executable(Path("/usr/bin/chromium"), "Debian: apt-get install -y chromium")


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`: compare before and after to prove a lake unchanged."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on shared cores: threads only contend (10x slower here with the default)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    """A tiny random RoBERTa masked LM saved to a folder (tests/extract_models.py)."""
    from extract_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "roberta", "roberta-mlm")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A tiny random Llama causal LM saved to a folder (tests/extract_models.py)."""
    from extract_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama")
