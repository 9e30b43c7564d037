"""The study's protocol on the bundled SmolLM2-135M-Instruct with a tiny budget (slow: loads the GGUF):
prompts per (emotion, seed) train, store and read back with their accuracy, then their activations
make a run set that `searchlight` runs on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emolake.cli import cli
from emolake.extract.inference.prompt_store import read_prompts
from emolake.warehouse.database import query

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
REPO = Path(__file__).resolve().parent.parent
EMOTIONS = ["anger", "fear", "joy", "sadness"]


def _cli(lake, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_smollm2_prompts_then_prompt_activations_and_searchlight(lake, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("EMOLAKE_CACHE", str(tmp_path / "cache"))
    embedded = REPO / "ingest" / "embedded"
    _cli(lake, "ingest", "stimuli", str(embedded / "situations.csv"), "--layout", "table", "--text-col", "text",
         "--label-col", "emotion", "--split-col", "split", "--id-col", "stimulus_id", "--dataset", "situations")
    _cli(lake, "ingest", "attributes", str(embedded / "study_attributes.csv"), "--study", "li2024")
    _cli(lake, "ingest", "similarity", str(embedded / "study_similarity.csv"), "--study", "li2024")
    # 2 positives + 2 negatives = 4 training stimuli per emotion, 1 epoch, 2 seeds
    out = _cli(lake, "infer", "--model", "smollm2-135m-instruct", "--dataset", "situations", "--readout", "soft-prompt",
               "--emotions", ",".join(EMOTIONS), "--seeds", "1,2", "--max-per-emotion", "2", "--epochs", "1",
               "--device", "cpu", "--json")
    summary = json.loads(out[out.index("{"):])
    prompts = read_prompts(lake, summary["inference_id"])
    assert len(prompts) == 8 and all(p.vectors.shape == (20, 576) and p.vectors.dtype == np.float32 for p in prompts)
    assert all(np.isfinite(p.losses).all() and len(p.losses) == 1 for p in prompts)
    _cli(lake, "extract", "--prompts", summary["inference_id"], "--run-set", "smol-prompts", "--device", "cpu")
    runs = query(lake, "SELECT position, n_layers, d_ff, count(*) AS n FROM runs WHERE run_set = 'smol-prompts' "
                       "GROUP BY ALL").to_pylist()
    assert runs == [{"position": "last", "n_layers": 30, "d_ff": 1536, "n": 2}]
    _cli(lake, "searchlight", "--run-set", "smol-prompts", "--study", "li2024", "--permutations", "20")
    n = query(lake, "SELECT count(*) FROM searchlight WHERE run_set = 'smol-prompts'").column(0)[0].as_py()
    assert n == 46_080 * 14
