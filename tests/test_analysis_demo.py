"""`emolake demo`: the whole study on both bundled models and the embedded GoEmotions sample, its
summary read back from the lake, its report complete in headless Chromium, and a second run that
reuses every step."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from emolake.analysis.report import demo
from emolake.cli import cli
from emolake.warehouse.database import query
from emolake.warehouse.lake import Lake

from conftest import require_executable

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.heavy
def test_demo_runs_both_models_end_to_end_then_reuses_every_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EMOLAKE_CACHE", str(tmp_path / "cache"))  # SmolLM2's dequantized copy
    lake, report = tmp_path / "lake", tmp_path / "report"
    runner = CliRunner()
    first = runner.invoke(cli, ["--lake", str(lake), "demo", "--out", str(report), "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    numbers = json.loads(first.stdout[first.stdout.index("{"):])
    assert numbers["stimuli"] == 430
    assert numbers["demo-minilm"]["neurons"] == 6 * 1536 and numbers["demo-smollm2"]["neurons"] == 30 * 1536
    smollm2 = numbers["demo-smollm2"]  # the smaller SmolLM2 searchlight is said, not silent
    assert smollm2["searchlight permutations (demo: 100, default 500)"] == 100
    assert "searchlight (demo-smollm2, 100 permutations)" in first.stderr

    rows = query(Lake(lake), "SELECT run_set, layer, tau, ci_emotions_low, ci_emotions_high FROM model_rsa WHERE "
                             "target = 'human' AND metric = 'correlation' AND method = 'tau_b' AND layer IS NOT NULL "
                             "ORDER BY tau DESC").to_pylist()
    assert {(r["run_set"], r["layer"]) for r in rows} == \
        {("demo-minilm", layer) for layer in range(6)} | {("demo-smollm2", layer) for layer in range(30)}
    best = rows[0]
    assert numbers["most human-like run set and layer"] == f"{best['run_set']} layer {best['layer']}"
    assert numbers["most human-like layer: Kendall tau-b"] == round(best["tau"], 4)
    assert numbers["most human-like layer: 95% CI over emotions"] == [round(best["ci_emotions_low"], 4),
                                                                       round(best["ci_emotions_high"], 4)]
    assert numbers["noise ceiling (lower, upper)"].startswith("not available")  # one averaged rater
    for m in demo.MODELS:
        assert -1 <= numbers[m.run_set]["all layers: Kendall tau-b"] <= 1
        assert 0 < numbers[m.run_set]["all layers: permutation p"] <= 1

    page = Path(numbers["report"])
    summary = json.loads((page.parent / "report.json").read_text())
    assert all(section["images"] or section["tables"] for section in summary["sections"].values()), summary
    html = page.read_text()
    assert "demo-minilm" in html and "demo-smollm2" in html  # both curves and the cross-model table
    browser = require_executable(CHROMIUM, "Debian: apt-get install -y chromium")
    dom = subprocess.run([str(browser), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,3000", "--hide-scrollbars",
                          "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    loaded, total = map(int, re.search(r'data-images-loaded="(\d+)/(\d+)"', dom).groups())
    assert total >= 8 and loaded == total
    assert re.search(r'data-overflow="([^"]*)"', dom).group(1) == "none"

    second = runner.invoke(cli, ["--lake", str(lake), "demo", "--out", str(report), "--json"], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert second.stderr.count("already in the lake, skipped") == len(demo.steps(report)) - 1  # all but the report
    assert json.loads(second.stdout[second.stdout.index("{"):])["stimuli"] == 430
