"""`emolake protocol` end to end on tiny random models (a Llama causal LM and a RoBERTa masked LM saved to a
folder): every step fills its tables, the ablation pairs over the seeds, and a second run skips every step."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from conftest import tree_hashes
from emolake.cli import cli
from emolake.warehouse.database import query
from extract_models import save_tiny_model

EMOTIONS = ["anger", "fear", "joy", "love", "sadness", "surprise"]
WORDS = {"anger": "furious", "fear": "scared", "joy": "happy", "love": "adore", "sadness": "sad",
         "surprise": "amazed"}
ATTRIBUTES = ("arousal", "control", "valence")


def toy_lake(lake) -> None:
    """Stimuli (dataset 'toy', splits train/dev/test), attributes and similarity judgments (study 'toy')."""
    rng = np.random.default_rng(0)
    rows = []
    for split, n in (("train", 3), ("dev", 2), ("test", 2)):
        for emotion in EMOTIONS:
            for i in range(n):
                rows.append({"split": split, "stimulus_id": f"{split}-{emotion}-{i}", "emotion": emotion,
                             "text": f"I feel so {WORDS[emotion]} about day {i} of the {split}", "n_labels": 1})
        for i in range(2):
            rows.append({"split": split, "stimulus_id": f"{split}-neutral-{i}", "emotion": "neutral",
                         "text": f"the train leaves at {i} pm", "n_labels": 1})
    attributes = np.round(rng.random((len(EMOTIONS), len(ATTRIBUTES))) * 9, 1)
    truth = attributes @ np.array([1.0, 0.5, 2.0])
    similarity = [{"rater": f"r{r}", "emotion_a": EMOTIONS[a], "emotion_b": EMOTIONS[b],
                   "distance": float(np.clip(np.round(abs(truth[a] - truth[b]) / 4 + rng.normal(0, 1)), 1, 9)),
                   "source": "synthetic"} for r in range(4) for a, b in combinations(range(len(EMOTIONS)), 2)]
    with lake.transaction("toy protocol inputs") as txn:
        txn.write("stimuli", pa.Table.from_pylist([{**r, "source_row": i} for i, r in enumerate(rows)]),
                  {"dataset": "toy"})
        txn.write("emotion_attributes", pa.Table.from_pylist([
            {"emotion": e, "attribute": a, "value": float(attributes[i, j]), "source": "synthetic"}
            for i, e in enumerate(EMOTIONS) for j, a in enumerate(ATTRIBUTES)]), {"study": "toy"})
        txn.write("similarity_judgments", pa.Table.from_pylist(similarity), {"study": "toy"})


def config_text(model: str, name: str = "toy-protocol") -> str:
    return f"""
[protocol]
name = "{name}"
study = "toy"
[model]
name = "{model}"
device = "cpu"
[stimuli]
dataset = "toy"
emotions = {json.dumps(EMOTIONS)}
report_split = "dev"
[prompt]
seeds = [1, 2]
length = 2
epochs = 1
lr = 0.1
batch_size = 8
[rsa]
permutations = 20
bootstrap = 0
layers = false
[searchlight]
permutations = 20
[neurons]
k = [3, 10]
[ablation]
controls = 2
batch_size = 16
"""


@pytest.mark.parametrize("kind", ["llama", pytest.param("roberta-mlm", marks=pytest.mark.slow)])
def test_protocol_fills_every_table_and_a_second_run_skips_every_step(lake, tmp_path, kind):
    toy_lake(lake)
    folder = save_tiny_model(tmp_path / f"tiny-{kind}", kind, seed=3)
    config = tmp_path / "protocol.toml"
    config.write_text(config_text(str(folder)))
    run = CliRunner().invoke(cli, ["--lake", str(lake.root), "protocol", "--config", str(config), "--json"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout[run.stdout.index("{"):])
    assert set(summary["steps"]) == {"prompts", "activations", "rsa", "searchlight", "neurons", "ablate",
                                     "statistics"}
    ran = [s for s, v in summary["steps"].items() if v.startswith("ran")]
    assert ran == ["prompts", "activations", "rsa", "searchlight", "neurons", "ablate"], summary["steps"]
    assert summary["steps"]["statistics"].startswith("skipped")  # the ablate step computed them (drop vs-control)
    inference_id = summary["inference_id"]
    count = lambda sql: query(lake, sql).column(0)[0].as_py()  # noqa: E731
    assert count(f"SELECT count(*) FROM prompts WHERE inference_id = '{inference_id}'") == len(EMOTIONS) * 2
    assert count("SELECT count(*) FROM runs WHERE run_set = 'toy-protocol' AND status = 'complete'") == 2
    assert count("SELECT count(DISTINCT attribute) FROM searchlight WHERE run_set = 'toy-protocol'") == 3
    assert count("SELECT count(DISTINCT k) FROM attribute_neurons WHERE run_set = 'toy-protocol'") == 2
    assert count("SELECT min(n_replicates) FROM ablation_summary WHERE run_set = 'toy-protocol'") == 2
    assert count("SELECT count(*) FROM ablation_summary WHERE run_set = 'toy-protocol'") == len(EMOTIONS) * 3 * 2
    assert count("SELECT count(DISTINCT k) FROM importance_link WHERE run_set = 'toy-protocol'") == 2
    replicates = query(lake, "SELECT DISTINCT replicate FROM ablation_accuracy WHERE run_set = 'toy-protocol' "
                             "ORDER BY 1").column(0).to_pylist()
    assert replicates == [1, 2]

    before = tree_hashes(lake.root)
    again = CliRunner().invoke(cli, ["--lake", str(lake.root), "protocol", "--config", str(config)])
    assert again.exit_code == 0, again.output
    assert again.output.count(": skipped (") == 7, again.output
    assert tree_hashes(lake.root) == before  # nothing was recomputed or rewritten

    changed = tmp_path / "more-controls.toml"  # a changed ablation setting redoes only the ablation and its tests
    changed.write_text(config_text(str(folder)).replace("controls = 2", "controls = 3"))
    third = CliRunner().invoke(cli, ["--lake", str(lake.root), "protocol", "--config", str(changed), "--json"])
    assert third.exit_code == 0, third.output
    steps = json.loads(third.stdout[third.stdout.index("{"):])["steps"]
    assert [s for s, v in steps.items() if v.startswith("ran")] == ["ablate"], steps
    assert count("SELECT max(n_controls) FROM ablation_summary WHERE run_set = 'toy-protocol'") == 3 * 2
