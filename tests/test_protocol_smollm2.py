"""The protocol on the real bundled SmolLM2-135M-Instruct with a reduced budget (slow: trains 12 prompts,
reads 46,080 neurons per prompt, a permutation searchlight and the ablation): the Done-when tables fill."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from emolake.cli import cli
from emolake.extract.protocol import ProtocolRun, load_protocol
from emolake.warehouse.database import query

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
REPO = Path(__file__).resolve().parent.parent


def _cli(lake, *argv):
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *argv])
    assert result.exit_code == 0, result.output


def test_smollm2_protocol_fills_prompts_activations_searchlight_neurons_ablation_and_link(lake, tmp_path):
    import torch

    torch.set_num_threads(1)  # on a shared machine 2 threads ran the prompt training ~6x slower (docs/BENCHMARKS.md)
    embedded = REPO / "ingest" / "embedded"
    _cli(lake, "ingest", "stimuli", str(embedded / "situations.csv"), "--layout", "table", "--text-col", "text",
         "--label-col", "emotion", "--split-col", "split", "--id-col", "stimulus_id", "--dataset", "emolake-situations")
    _cli(lake, "ingest", "attributes", str(embedded / "study_attributes.csv"), "--study", "li2024")
    _cli(lake, "ingest", "similarity", str(embedded / "study_similarity.csv"), "--study", "li2024")
    text = (REPO / "docs" / "protocols" / "smollm2-cpu.toml").read_text()
    reduced = (text.replace('"admiration", "amusement", ', "").replace('"disgust", ', "").replace('"gratitude", "grief", ', "")
               .replace('"nervousness", ', "").replace("k = [1000]", "k = [50]")
               .replace("permutations = 1000", "permutations = 50").replace("permutations = 100", "permutations = 20")
               .replace("controls = 3", "controls = 2").replace("max_per_emotion = 8", "max_per_emotion = 3"))
    config_path = tmp_path / "reduced.toml"
    config_path.write_text(reduced)
    config = load_protocol(config_path)
    assert config["stimuli"]["emotions"] == ["anger", "fear", "joy", "love", "sadness", "surprise"]
    assert config["stimuli"]["max_per_emotion"] == 3 and config["neurons"]["k"] == [50]
    runner = ProtocolRun(lake, config, echo=print, progress=False)
    runner.run()
    assert [r.status for r in runner.results] == ["ran"] * 6 + ["skipped"]  # ablate computed the statistics
    count = lambda sql: query(lake, sql).column(0)[0].as_py()  # noqa: E731
    assert count(f"SELECT count(*) FROM prompts WHERE inference_id = '{runner.inference_id}'") == 6 * 2
    assert count("SELECT count(*) FROM runs WHERE run_set = 'smollm2-cpu' AND status = 'complete' "
                 "AND n_layers = 30 AND d_ff = 1536") == 2
    assert count("SELECT count(DISTINCT neuron) FROM searchlight WHERE run_set = 'smollm2-cpu'") == 46_080
    assert count("SELECT count(DISTINCT attribute) FROM attribute_neurons WHERE run_set = 'smollm2-cpu'") == 14
    assert count("SELECT min(n_replicates) FROM ablation_summary WHERE run_set = 'smollm2-cpu'") >= 2
    assert count("SELECT count(*) FROM ablation_summary WHERE run_set = 'smollm2-cpu'") == 6 * 14
    assert count("SELECT count(*) FROM importance_link WHERE run_set = 'smollm2-cpu' AND k = 50") == 1
