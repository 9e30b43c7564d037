"""`infer --readout soft-prompt --seeds`: one stored prompt per (emotion, seed) on tiny random RoBERTa and Llama,
read back with the accuracy it was stored with, resumed after an interruption, bad seeds refused."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import torch
from click.testing import CliRunner

from ablation_fixtures import stimuli
from conftest import tree_hashes
from emolake.cli import cli
from emolake.extract.inference import soft_prompt
from emolake.extract.inference.prompt_store import read_prompts
from emolake.extract.inference.readouts import label_word_ids
from emolake.extract.inference.run import InferenceConfig, run_inference
from emolake.extract.inference.tasks import build_tasks, task_texts
from emolake.extract.models.loading import load_model
from emolake.warehouse.database import query

EMOTIONS = ["joy", "anger"]
BUDGET = ["--epochs", "2", "--prompt-length", "2", "--lr", "0.1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny_roberta / tiny_llama: tests/conftest.py


@pytest.fixture(scope="module")
def roberta(tiny_roberta):
    return tiny_roberta


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return tiny_llama


def demo_lake(lake):
    frame = stimuli(per_emotion=3).assign(source_row=0)
    with lake.transaction() as txn:
        txn.write("stimuli", pa.Table.from_pandas(frame, preserve_index=False), {"dataset": "demo"})
    return lake


def infer(lake, model, *args):
    return CliRunner().invoke(cli, ["--lake", str(lake.root), "infer", "--model", str(model), "--dataset", "demo",
                                    "--readout", "soft-prompt", "--emotions", ",".join(EMOTIONS), "--device", "cpu",
                                    *BUDGET, *args, "--json"])


def summary_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def accuracy_of(loaded, frame, prompt, split: str) -> float:
    """Accuracy of a stored prompt on its (emotion, seed) task of `split`, recomputed from scratch."""
    task = next(t for t in build_tasks(frame, "binary", EMOTIONS, split, prompt.seed) if t.emotion == prompt.emotion)
    word_ids = label_word_ids(loaded.tokenizer, prompt.words)
    predicted, _ = soft_prompt.predict(loaded.model, loaded.tokenizer, task_texts(frame, task.stimulus_ids),
                                       torch.as_tensor(prompt.vectors), word_ids, "cpu")
    return float((predicted == task.labels).mean())


@pytest.mark.parametrize("kind", ["roberta", "llama"])
def test_one_prompt_per_emotion_and_seed_reads_back_with_its_accuracy(lake, kind, request):
    model = request.getfixturevalue(kind)
    demo_lake(lake)
    summary = summary_of(infer(lake, model, "--seeds", "3,1"))
    assert summary["seeds"] == [1, 3] and summary["prompts"] == 4 and summary["tasks"] == 2
    inference_id = summary["inference_id"]
    prompts = read_prompts(lake, inference_id)
    assert [p.key for p in prompts] == [("anger", 1), ("anger", 3), ("joy", 1), ("joy", 3)]
    assert all(p.vectors.shape == (2, 32 if kind == "roberta" else 16) for p in prompts)
    assert all(len(p.losses) == 2 and 0 <= p.best_epoch < 2 and p.words == ["no", "yes"] for p in prompts)
    assert not np.array_equal(prompts[0].vectors, prompts[1].vectors)  # seeds differ
    loaded, frame = load_model(str(model)), stimuli(per_emotion=3)
    for prompt in prompts:  # float32 round trip: the stored accuracies, exactly
        assert accuracy_of(loaded, frame, prompt, "dev") == prompt.select_accuracy
        assert accuracy_of(loaded, frame, prompt, "test") == prompt.report_accuracy
    rows = query(lake, "SELECT emotion, seed, split, accuracy FROM inference_accuracy ORDER BY ALL").to_pylist()
    assert len(rows) == 2 * 2 * 3 and {r["seed"] for r in rows} == {1, 3}
    stored = {(p.emotion, p.seed): p.report_accuracy for p in prompts}
    assert {(r["emotion"], r["seed"]): r["accuracy"] for r in rows if r["split"] == "test"} == stored
    tasks = query(lake, "SELECT seed, count(DISTINCT draw_seed) AS n FROM task_stimuli GROUP BY 1 ORDER BY 1")
    assert tasks.to_pylist() == [{"seed": 1, "n": 6}, {"seed": 3, "n": 6}]  # 2 emotions x 3 splits per seed
    params = json.loads(query(lake, "SELECT params_json FROM inferences").to_pylist()[0]["params_json"])
    assert params["seeds"] == [1, 3]
    listed = query(lake, "SELECT count(*) AS n FROM prompt_summary WHERE inference_id = $i", {"i": inference_id})
    assert listed.to_pylist() == [{"n": 4}]


def test_an_interrupted_run_trains_only_the_missing_prompts(lake, roberta, monkeypatch):
    demo_lake(lake)
    loaded, frame = load_model(str(roberta)), stimuli(per_emotion=3)
    trained = []
    real = soft_prompt.train_soft_prompt

    def counting(*args, **kwargs):
        trained.append(kwargs["seed"])
        return real(*args, **kwargs)

    def config():
        return InferenceConfig(model="tiny", dataset="demo", readout="soft-prompt", emotions=list(EMOTIONS),
                               seeds=[1, 2], soft_prompt={"n_prompt": 2, "epochs": 1})

    def interrupted(*args, **kwargs):
        if len(trained) == 2:
            raise KeyboardInterrupt  # killed while training the third prompt
        return counting(*args, **kwargs)

    monkeypatch.setattr(soft_prompt, "train_soft_prompt", interrupted)
    first = config()
    with pytest.raises(KeyboardInterrupt):
        run_inference(lake, loaded, frame, first)
    inference_id = first.inference_id()  # resolved by run_inference (template, soft-prompt defaults)
    assert len(read_prompts(lake, inference_id)) == 2  # the finished ones were committed
    assert query(lake, "SELECT count(*) AS n FROM inferences").to_pylist() == [{"n": 0}]

    trained.clear()
    monkeypatch.setattr(soft_prompt, "train_soft_prompt", counting)
    fitted = run_inference(lake, loaded, frame, config())
    assert len(trained) == 2 and sorted(trained) == [2, 2]  # seed 1 was done: only seed 2's two prompts
    prompts = read_prompts(lake, inference_id)
    assert [p.key for p in prompts] == [("anger", 1), ("anger", 2), ("joy", 1), ("joy", 2)]
    assert {p.key for p in fitted.prompts} == {p.key for p in prompts}

    trained.clear()
    again = run_inference(lake, loaded, frame, config())
    assert trained == []  # all done: nothing trained again, the same prompts and accuracies
    assert again.accuracy.sort_values(["emotion", "seed", "split"]).reset_index(drop=True).equals(
        fitted.accuracy.sort_values(["emotion", "seed", "split"]).reset_index(drop=True))
    assert all(np.array_equal(a.vectors, b.vectors) for a, b in zip(read_prompts(lake, inference_id), prompts))


def test_a_prompt_of_another_task_is_trained_again(lake, roberta, monkeypatch):
    demo_lake(lake)
    loaded, frame = load_model(str(roberta)), stimuli(per_emotion=3)
    config = dict(model="tiny", dataset="demo", readout="soft-prompt", emotions=["joy"], seeds=[1, 2],
                  soft_prompt={"n_prompt": 2, "epochs": 1})
    first = run_inference(lake, loaded, frame, InferenceConfig(**config))
    trained = []
    real = soft_prompt.train_soft_prompt
    monkeypatch.setattr(soft_prompt, "train_soft_prompt", lambda *a, **k: trained.append(k["seed"]) or real(*a, **k))
    changed = frame[frame["stimulus_id"] != "train-joy-0"]  # the stimuli changed since: the fit task differs
    run_inference(lake, loaded, changed, InferenceConfig(**config))
    assert sorted(trained) == [1, 2]
    assert len(read_prompts(lake, first.inference_id)) == 2  # replaced, not added


@pytest.mark.parametrize("args, message", [
    (["--seeds", "1,x"], "comma-separated integers"),
    (["--seeds", "1,2,1"], "twice"),
    (["--seeds", ""], "comma-separated integers"),
    (["--seed", "5", "--seeds", "1,2"], "not one of --seeds"),
])
def test_bad_seeds_exit_2_and_leave_the_lake(lake, roberta, args, message):
    demo_lake(lake)
    query(lake, "SELECT 1")
    before = tree_hashes(lake.root)
    result = infer(lake, roberta, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert tree_hashes(lake.root) == before


def test_several_seeds_are_for_the_soft_prompt_read_out(lake, roberta):
    demo_lake(lake)
    query(lake, "SELECT 1")
    before = tree_hashes(lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "infer", "--model", str(roberta), "--dataset", "demo",
                                      "--readout", "probe", "--seeds", "1,2", "--device", "cpu"])
    assert result.exit_code == 2 and "soft-prompt" in result.output
    assert tree_hashes(lake.root) == before


def test_one_seed_in_seeds_is_the_single_seed_run():
    one = InferenceConfig(model="m", dataset="d", readout="soft-prompt", seeds=[4])
    assert one.inference_id() == InferenceConfig(model="m", dataset="d", readout="soft-prompt", seed=4).inference_id()
    both = InferenceConfig(model="m", dataset="d", readout="soft-prompt", seeds=[3, 1])
    assert both.inference_id() == InferenceConfig(model="m", dataset="d", readout="soft-prompt",
                                                  seeds=[1, 3]).inference_id() != one.inference_id()
    assert both.replicate_seeds == [1, 3] and both.seed == 1
