"""CI runs every test it can: a missing tool skips a test on a developer machine, but fails it
under CI=true (a skipped browser test would leave the report's page never rendered in CI), and
`.ci/run` installs Chromium from Debian's packages when it is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import REPO, require_executable

MISSING = Path("/nonexistent/chromium")


def test_a_missing_tool_skips_the_test_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        require_executable(MISSING, "apt-get install -y chromium")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_a_missing_tool_fails_the_test_in_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true, so this test must run"):
        require_executable(MISSING, "apt-get install -y chromium")


def test_a_present_tool_is_returned(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert require_executable(Path("/bin/sh"), "-") == Path("/bin/sh")


def test_ci_script_installs_chromium_before_the_tests_and_sets_ci():
    script = (REPO / ".ci" / "run").read_text()
    install = "command -v chromium >/dev/null || missing+=(chromium)"
    assert install in script and 'apt-get install -y -q "${missing[@]}"' in script
    assert script.index(install) < script.index("python -m pytest")
    assert 'export CI="${CI:-true}"' in script
    assert subprocess.run(["bash", "-n", str(REPO / ".ci" / "run")]).returncode == 0
