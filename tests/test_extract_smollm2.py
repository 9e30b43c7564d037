"""The bundled decoder LLM end to end (slow: loads SmolLM2-135M-Instruct from its GGUF once per module):
batched == one at a time on the real model, extraction of 46,080 neurons per stimulus with the
neuron definition in `runs`, and `rsa` / `searchlight` on the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emolake.extract.capture import build_prompts, capture, encode
from emolake.extract.run import ExtractSettings, extract_run
from emolake.warehouse.database import query
from emolake.warehouse.lake import Lake

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
TEXTS = ["I can't believe you did that for me, thank you so much!", "ugh", "This is the worst day ever.",
         "Wow, I did not see that coming at all.", "I'm scared of what happens next.", "lol nice"]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    from emolake.extract.models.loading import load_model

    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("EMOLAKE_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield load_model("smollm2-135m-instruct")
    finally:
        mp.undo()


def _cli(lake: Lake, *args: str) -> str:
    from emolake.cli import cli

    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_smollm2_batched_equals_one_at_a_time_on_every_layer(smollm2):
    for position in ("last", "mean"):
        prompts, spans = build_prompts(smollm2, TEXTS, "{text}\nThe emotion expressed here is", position)
        encoded = encode(smollm2, prompts, position, [str(i) for i in range(len(TEXTS))], spans)
        single = capture(smollm2, encoded, position, batch_size=1)
        for side in ("right", "left"):
            batched = capture(smollm2, encoded, position, batch_size=len(TEXTS), padding_side=side)
            for layer in range(smollm2.n_layers):
                np.testing.assert_allclose(batched.layer(layer), single.layer(layer), atol=1e-4, rtol=1e-4,
                                           err_msg=f"{position} {side} layer {layer}")


def test_smollm2_extraction_then_rsa_and_searchlight(lake, smollm2):
    embedded = REPO / "ingest" / "embedded"
    _cli(lake, "ingest", "stimuli", str(embedded / "situations.csv"), "--layout", "table", "--text-col", "text",
         "--label-col", "emotion", "--split-col", "split", "--id-col", "stimulus_id", "--dataset", "situations")
    _cli(lake, "ingest", "attributes", str(embedded / "study_attributes.csv"), "--study", "li2024")
    _cli(lake, "ingest", "similarity", str(embedded / "study_similarity.csv"), "--study", "li2024")
    summary = extract_run(lake, ExtractSettings(model="smollm2-135m-instruct", dataset="situations", split="test",
                                                run_id="smol", batch_size=16), loaded=smollm2)
    assert summary["n_neurons"] == 46_080 and summary["n_stimuli"] == 108
    run = query(lake, "SELECT * FROM runs WHERE run_id = 'smol'").to_pylist()[0]
    assert (run["neuron"], run["position"], run["n_layers"], run["d_ff"]) == ("mlp_post", "last", 30, 1536)
    assert run["hook_point"] == "model.layers.{layer}.mlp.down_proj:input"
    assert run["template"] == "{text}\nThe emotion expressed here is" and run["status"] == "complete"
    per_stimulus = query(lake, "SELECT count(*) AS n FROM activations WHERE run_id = 'smol' GROUP BY stimulus_id")
    assert set(per_stimulus.column("n").to_pylist()) == {46_080}
    _cli(lake, "rsa", "--study", "li2024", "--run-set", "smol", "--permutations", "50", "--bootstrap", "20")
    tau = query(lake, "SELECT tau FROM model_rsa WHERE run_set = 'smol' AND target = 'human' AND method = 'tau_b'")
    assert tau.num_rows >= 1 and np.isfinite(tau.column(0)[0].as_py())
    # 2 permutations: the pipeline on the real LLM (the permutation statistics are tested in test_analysis_searchlight)
    _cli(lake, "searchlight", "--run-set", "smol", "--study", "li2024", "--permutations", "2")
    assert query(lake, "SELECT count(*) FROM searchlight WHERE run_set = 'smol'").column(0)[0].as_py() == 46_080 * 14
