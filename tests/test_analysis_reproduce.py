"""The reproduction report is generated from the release alone, with every section and the masking hook."""

from __future__ import annotations

import pytest

from emolake.analysis.reproduce import SECTION_HOOK, reproduce
from emolake.warehouse.database import query
from emolake.warehouse.lake import Lake


@pytest.mark.slow
def test_reproduction_report_from_the_release(shared_data, tmp_path) -> None:
    out = tmp_path / "REPRODUCTION.md"
    lake_dir = tmp_path / "lake"
    reproduce(shared_data / "model_emotion", out, lake_dir, seed=0, n_perm=0, n_boot=0, searchlight_perm=0)
    text = out.read_text()
    # the study's figures exactly (its own attribute RDM file, asymptotic p, p*N/rank), tie-exact beside them
    assert "| searchlight: significant tests (q < .01) | 61,956 | 61,957 | not run |" in text
    assert "| searchlight: significant neurons | 26,025 | 26,033 | not run |" in text
    assert "| searchlight: selective neurons | 9,184 | 9,187 | not run |" in text
    assert "| importance link k = 4,000: mean r | 0.474 |  | 0.467 |" in text  # the study's drop, then vs-unablated
    assert "| importance link k = 4,000: t | 16.9 |  | 13.5 |" in text
    assert "two extra raters' logs" in text
    for heading in ("## 0.", "## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## Run time"):
        assert heading in text
    assert text.index(SECTION_HOOK) < text.index("## Masking")  # the ablation branch's section follows the hook
    masking = text.split("## Masking", 1)[1]
    assert "Emotions significantly worse than random" in masking
    assert "| k | mean_r |" in masking and "Not computed" not in masking  # the importance link, every k
    lake = Lake(lake_dir)
    counts = query(lake, "SELECT attribute, count(*) AS n FROM searchlight WHERE q < 0.01 GROUP BY attribute")
    assert counts.num_rows == 14
    sizes = query(lake, "SELECT DISTINCT k FROM attribute_neurons WHERE scope = 'global' ORDER BY k").column(0).to_pylist()
    assert 4000 in sizes
    assert query(lake, "SELECT count(*) FROM searchlight").column(0)[0].as_py() == 36864 * 14
