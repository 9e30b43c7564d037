"""`extract --prompts INFERENCE_ID`: the FFN neurons of each stored prompt alone, one run per seed and one
stimulus per emotion, so that `rsa`, `searchlight` and `neurons` run on the run set as on the release's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from click.testing import CliRunner

from analysis_lake import write_synthetic
from conftest import tree_hashes
from emolake.cli import cli
from emolake.extract.hooks import ffn_hook_points
from emolake.extract.inference.prompt_store import read_prompts
from emolake.extract.models.loading import load_model
from emolake.warehouse.database import query
from extract_models import save_tiny_model

EMOTIONS = ["anger", "fear", "joy", "sadness", "surprise"]
WORDS = {"anger": "furious", "fear": "scared", "joy": "happy", "sadness": "sad", "surprise": "amazed"}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny_roberta / tiny_llama: tests/conftest.py


@pytest.fixture(scope="module")
def roberta(tiny_roberta):
    return tiny_roberta


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return tiny_llama


def run(lake, *args):
    return CliRunner().invoke(cli, ["--lake", str(lake.root), *args])


def ok(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def prompted_lake(lake, model, seeds="1,2"):
    """A lake with 5 emotions' stimuli, a synthetic study on them, and trained prompts (returns the inference id)."""
    rows = [(split, f"{split}-{e}-{i}", f"I feel {WORDS[e]} {i} {split}", e, 1, 0)
            for split in ("train", "dev", "test") for e in EMOTIONS for i in range(2)]
    frame = pd.DataFrame(rows, columns=["split", "stimulus_id", "text", "emotion", "n_labels", "source_row"])
    with lake.transaction() as txn:
        txn.write("stimuli", pa.Table.from_pandas(frame, preserve_index=False), {"dataset": "demo"})
    write_synthetic(lake, emotions=EMOTIONS, run_set="toy", study="toy-study")
    summary = ok(run(lake, "infer", "--model", str(model), "--dataset", "demo", "--readout", "soft-prompt",
                     "--emotions", ",".join(EMOTIONS), "--seeds", seeds, "--epochs", "1", "--prompt-length", "2",
                     "--device", "cpu", "--json"))
    return summary["inference_id"]


def ffn_at(model, embeds: torch.Tensor, position: int, **kwargs) -> np.ndarray:
    """[n_layers * d_ff]: every layer's neurons at `position`, by forward hooks of this test's own."""
    seen = {}
    handles = []
    for point in ffn_hook_points(model):
        if point.side == "output":
            handles.append(point.module.register_forward_hook(
                lambda m, i, o, layer=point.layer: seen.__setitem__(layer, o[0, position].detach().clone())))
        else:
            handles.append(point.module.register_forward_pre_hook(
                lambda m, i, layer=point.layer: seen.__setitem__(layer, i[0][0, position].detach().clone())))
    try:
        with torch.no_grad():
            model(inputs_embeds=embeds, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return torch.cat([seen[k] for k in sorted(seen)]).numpy()


def test_masked_lm_prompts_become_one_run_per_seed_read_at_the_mask(lake, roberta):
    inference_id = prompted_lake(lake, roberta)
    summary = ok(run(lake, "extract", "--prompts", inference_id, "--run-set", "tiny-prompts", "--device", "cpu",
                     "--json"))
    assert summary["runs"] == 2 and summary["emotions"] == 5 and summary["position"] == "mask"
    runs = query(lake, "SELECT run_id, run_set, seed, dataset, split, position, status, n_stimuli FROM runs "
                       "WHERE run_set = 'tiny-prompts' ORDER BY seed").to_pylist()
    assert [r["run_id"] for r in runs] == ["tiny-prompts-seed1", "tiny-prompts-seed2"]
    assert {(r["dataset"], r["split"], r["position"], r["status"], r["n_stimuli"]) for r in runs} == {
        (f"{inference_id}-prompts", "prompt", "mask", "complete", 5)}
    stimuli = query(lake, "SELECT stimulus_id, emotion FROM stimuli WHERE dataset = $d ORDER BY 1",
                    {"d": f"{inference_id}-prompts"}).to_pylist()
    assert stimuli == [{"stimulus_id": f"prompt:{e}", "emotion": e} for e in EMOTIONS]
    # emotion_profile of a run = that seed's prompt alone through the model: <s> P <mask> </s>, read at the mask
    loaded = load_model(str(roberta))
    tok, model = loaded.tokenizer, loaded.model
    words = model.get_input_embeddings()(torch.tensor([[tok.cls_token_id, tok.mask_token_id, tok.sep_token_id]]))
    for prompt in read_prompts(lake, inference_id, emotions=["joy", "fear"]):
        vectors = torch.as_tensor(prompt.vectors)[None]
        embeds = torch.cat([words[:, :1], vectors, words[:, 1:]], 1).detach()
        expected = ffn_at(model, embeds, 1 + vectors.shape[1], attention_mask=torch.ones(embeds.shape[:2]))
        profile = query(lake, "SELECT value FROM emotion_profile WHERE run_id = $r AND emotion = $e ORDER BY neuron",
                        {"r": f"tiny-prompts-seed{prompt.seed}", "e": prompt.emotion}).column(0).to_numpy()
        np.testing.assert_allclose(profile, expected, rtol=1e-5, atol=1e-6)
    # the analyses run on it unchanged
    ok(run(lake, "rsa", "--study", "toy-study", "--run-set", "tiny-prompts", "--permutations", "10",
           "--bootstrap", "0", "--json"))
    ok(run(lake, "searchlight", "--run-set", "tiny-prompts", "--study", "toy-study", "--permutations", "10",
           "--json"))
    n = query(lake, "SELECT count(*) FROM searchlight WHERE run_set = 'tiny-prompts'").column(0)[0].as_py()
    assert n == 2 * 37 * 3  # 2 layers x 37 units x 3 attributes
    ok(run(lake, "neurons", "--run-set", "tiny-prompts", "--study", "toy-study", "--k", "5", "--json"))
    assert query(lake, "SELECT count(*) FROM attribute_neurons WHERE run_set = 'tiny-prompts'").column(0)[0].as_py() > 0


def test_causal_lm_prompts_are_read_at_their_last_position_as_in_training(lake, llama):
    inference_id = prompted_lake(lake, llama, seeds="4,2")
    ok(run(lake, "extract", "--prompts", inference_id, "--device", "cpu", "--json"))
    run_set = f"{inference_id}-prompts"  # the default run set
    loaded = load_model(str(llama))
    text = loaded.tokenizer(["I feel happy"], return_tensors="pt")["input_ids"]
    for prompt in read_prompts(lake, inference_id, emotions=["joy"]):
        vectors = torch.as_tensor(prompt.vectors)[None]  # [1, N, H]
        n = vectors.shape[1]
        # the last prompt position with a text after it (a training input): causal attention, the same neurons
        embeds = torch.cat([vectors, loaded.model.get_input_embeddings()(text)], 1).detach()
        expected = ffn_at(loaded.model, embeds, n - 1, attention_mask=torch.ones(embeds.shape[:2]),
                          position_ids=torch.arange(embeds.shape[1])[None], use_cache=False)
        profile = query(lake, "SELECT value FROM emotion_profile WHERE run_id = $r AND emotion = 'joy' ORDER BY neuron",
                        {"r": f"{run_set}-seed{prompt.seed}"}).column(0).to_numpy()
        np.testing.assert_allclose(profile, expected, rtol=1e-4, atol=1e-5)
    positions = query(lake, "SELECT DISTINCT position FROM runs WHERE run_set = $s", {"s": run_set}).to_pylist()
    assert positions == [{"position": "last"}]


def test_extracting_again_rewrites_the_same_runs(lake, roberta):
    inference_id = prompted_lake(lake, roberta, seeds="1,2")
    ok(run(lake, "extract", "--prompts", inference_id, "--run-set", "p", "--device", "cpu", "--json"))
    first = query(lake, "SELECT run_id, emotion, neuron, value FROM emotion_profile ORDER BY ALL")
    ok(run(lake, "extract", "--prompts", inference_id, "--run-set", "p", "--device", "cpu", "--json"))
    assert query(lake, "SELECT run_id, emotion, neuron, value FROM emotion_profile ORDER BY ALL").equals(first)
    assert query(lake, "SELECT count(*) FROM runs WHERE run_set = 'p'").column(0)[0].as_py() == 2


def test_bad_prompt_extractions_exit_2_and_leave_the_lake(lake, roberta):
    inference_id = prompted_lake(lake, roberta, seeds="1,2")
    ok(run(lake, "infer", "--model", str(roberta), "--dataset", "demo", "--emotions", "joy,anger", "--device", "cpu",
           "--json"))
    probe_id = query(lake, "SELECT inference_id FROM inferences WHERE readout = 'probe'").column(0)[0].as_py()
    query(lake, "SELECT 1")
    before = tree_hashes(lake.root)
    for args, message in [
        (["--prompts", "no-such-inference"], "no inference run 'no-such-inference'"),
        (["--prompts", probe_id], "--readout probe"),
        (["--prompts", "../escape"], "--prompts"),
        (["--prompts", inference_id, "--run-set", "toy"], "holds other runs"),  # the synthetic run set
        (["--prompts", inference_id, "--split", "test"], "--split"),
        (["--prompts", inference_id, "--model", str(lake.root.parent / "nothing")], ""),
    ]:
        result = run(lake, "extract", *args, "--device", "cpu")
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert tree_hashes(lake.root) == before, args


def test_prompts_of_other_weights_are_refused(lake, roberta, tmp_path):
    inference_id = prompted_lake(lake, roberta, seeds="1,2")
    other = save_tiny_model(tmp_path / "other", "roberta-mlm", seed=5)
    query(lake, "SELECT 1")
    before = tree_hashes(lake.root)
    result = run(lake, "extract", "--prompts", inference_id, "--model", str(other), "--device", "cpu")
    assert result.exit_code == 2 and "other weights" in result.output
    assert tree_hashes(lake.root) == before
