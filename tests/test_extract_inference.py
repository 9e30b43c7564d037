"""Emotion-inference tasks and read-outs: task composition, probes, verbalizer, batching, lake round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ablation_fixtures import minilm, stimuli, tiny_bert, tiny_roberta
from emolake.extract.inference.readouts import (
    Probe, ProbeReadout, fit_probe, fit_threshold, label_word_ids, mean_pool, readout_features, verbalizer_readout,
)
from emolake.extract.inference.run import InferenceConfig, fit_inference, load_probes, write_inference
from emolake.extract.inference.tasks import binary_tasks, build_tasks, check_splits, multiclass_task
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError


@pytest.fixture(scope="module")
def bundled():
    return minilm()


def test_binary_task_has_all_positives_and_as_many_drawn_negatives():
    frame = stimuli()
    (joy,) = binary_tasks(frame, ["joy"], "test", seed=3)
    positives = set(frame[(frame.split == "test") & (frame.emotion == "joy")].stimulus_id)
    assert set(joy.stimulus_ids[joy.labels == 1]) == positives  # the multi-label stimulus included
    negatives = set(joy.stimulus_ids[joy.labels == 0])
    assert len(negatives) == len(positives) and not negatives & positives
    assert negatives <= set(frame[frame.split == "test"].stimulus_id)


def test_binary_negatives_are_seeded_and_the_seed_is_kept():
    frame = stimuli(per_emotion=8, neutral=10)
    a, b, c = (binary_tasks(frame, ["fear"], "train", seed=s)[0] for s in (1, 1, 2))
    assert a.draw_seed == b.draw_seed != c.draw_seed
    assert list(a.stimulus_ids) == list(b.stimulus_ids)
    assert list(a.stimulus_ids) != list(c.stimulus_ids)
    alone = binary_tasks(frame, ["joy", "fear"], "train", seed=1)[1]  # per-emotion seeds: order-independent
    assert list(alone.stimulus_ids) == list(a.stimulus_ids)


def test_max_per_emotion_caps_positives():
    (task,) = binary_tasks(stimuli(per_emotion=8), ["anger"], "dev", seed=0, max_per_emotion=3)
    assert task.labels.sum() == 3 and len(task.labels) == 6


def test_multiclass_task_keeps_single_label_stimuli_without_neutral():
    task = multiclass_task(stimuli(), ["joy", "anger", "fear"], "test", seed=0)
    assert "test-mixed" not in set(task.stimulus_ids)
    assert not any("neutral" in s for s in task.stimulus_ids)
    assert sorted(np.bincount(task.labels)) == [6, 6, 6]


def test_missing_split_is_bad_input():
    with pytest.raises(BadInputError, match="no split 'validation'"):
        check_splits(stimuli(), "demo", ["train", "validation"])
    with pytest.raises(BadInputError, match="unknown task"):
        build_tasks(stimuli(), "ternary", ["joy"], "test", 0)


def test_probe_folds_standardisation_and_matches_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, -2, 0, 1]
    y = (x[:, 0] + x[:, 1] / 10 + rng.normal(scale=0.5, size=80) > 0.5).astype(int)
    probe = fit_probe(x[:60], y[:60], x[60:], y[60:], seed=0, cs=(1.0,))
    scaler = StandardScaler().fit(x[:60])
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x[:60]), y[:60])
    assert np.allclose(probe.scores(x)[:, 0], reference.decision_function(scaler.transform(x)), atol=1e-6)
    assert (probe.predict(x) == reference.predict(scaler.transform(x))).all()


def test_probe_c_is_chosen_on_the_select_split():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 20))
    y = (x[:, 0] > 0).astype(int)
    probe = fit_probe(x[:60], y[:60], x[60:], y[60:], seed=0)
    accuracies = [fit_probe(x[:60], y[:60], x[60:], y[60:], seed=0, cs=(c,)).select_accuracy
                  for c in (0.01, 0.1, 1.0, 10.0)]
    assert probe.select_accuracy == max(accuracies)


def test_threshold_maximises_accuracy():
    rng = np.random.default_rng(4)
    for _ in range(5):
        scores = np.round(rng.normal(size=40), 1)  # ties included
        labels = (scores + rng.normal(size=40) > 0).astype(int)
        threshold = fit_threshold(scores, labels)
        best = max(((scores > t).astype(int) == labels).mean() for t in np.concatenate([scores, [scores.min() - 1]]))
        assert ((scores > threshold).astype(int) == labels).mean() == best


def test_mean_pooling_ignores_padding():
    hidden = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    pooled = mean_pool(hidden, mask)
    assert torch.allclose(pooled[0], hidden[0, :2].mean(0)) and torch.allclose(pooled[1], hidden[1].mean(0))


def test_features_do_not_depend_on_batch_size_or_copies(bundled):
    texts = ["I am thrilled", "this is so unfair and I am really angry about it", "ok", "what a lovely day it was"]
    readout = ProbeReadout()
    one = readout_features(bundled.model, bundled.tokenizer, texts, readout, batch_size=1)
    many = readout_features(bundled.model, bundled.tokenizer, texts, readout, batch_size=4, copies=3)
    assert one.shape == (1, 4, 384) and many.shape == (3, 4, 384)
    assert np.allclose(many, one, atol=1e-5)
    direct = bundled.model(**bundled.tokenizer(texts[:1], return_tensors="pt")).last_hidden_state.mean(1)
    assert np.allclose(one[0, 0], direct[0].detach().numpy(), atol=1e-5)


def test_verbalizer_scores_first_subtoken_log_probs_at_the_mask():
    tiny = tiny_roberta()
    words = ["joy", "anger", "fear"]
    readout = verbalizer_readout(tiny.model, tiny.tokenizer, words)
    features = readout_features(tiny.model, tiny.tokenizer, ["hello there"], readout)[0]  # [1, 3]
    batch = tiny.tokenizer(["hello there I feel [MASK]."], return_tensors="pt")
    logits = tiny.model(**batch).logits[0, batch["input_ids"][0].tolist().index(tiny.tokenizer.mask_token_id)]
    ids = [tiny.tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]
    assert np.allclose(features[0], torch.log_softmax(logits, -1)[ids].detach().numpy(), atol=1e-5)


def test_verbalizer_refuses_words_sharing_a_first_subtoken_and_models_without_mlm_head():
    tiny = tiny_roberta()
    first = tiny.tokenizer.convert_ids_to_tokens(label_word_ids(tiny.tokenizer, ["embarrassment"]))[0]
    clash = ["embarrassment", first] if first != "embarrassment" else ["joy", "joy"]
    with pytest.raises(BadInputError, match="share their first sub-token"):
        label_word_ids(tiny.tokenizer, clash)
    with pytest.raises(BadInputError, match="masked-LM or causal-LM head"):
        verbalizer_readout(tiny_bert().model, tiny.tokenizer, ["joy"])


def test_probe_inference_fits_on_train_selects_on_dev_reports_on_test(bundled, lake):
    frame = stimuli()
    config = InferenceConfig(model="minilm", dataset="demo", emotions=["joy", "anger", "fear"], seed=0)
    fitted = fit_inference(bundled, frame, config)
    acc = fitted.accuracy.set_index(["emotion", "split"])
    assert set(acc["selected"]) == {"fit", "select", "report"}
    assert (acc.xs("test", level="split")["accuracy"] > 0.5).all()  # the emotion words are in the texts
    with lake.transaction() as txn:
        write_inference(txn, fitted)
    stored = query(lake, f"SELECT emotion, split, accuracy FROM inference_accuracy "
                         f"WHERE inference_id = '{fitted.inference_id}' ORDER BY 1, 2").to_pylist()
    assert len(stored) == 9
    probes = load_probes(lake, fitted.inference_id)
    for emotion, probe in fitted.probes.items():
        assert np.array_equal(probes[emotion].weights, probe.weights)
    n_predictions = query(lake, "SELECT count(*) AS n FROM predictions").column("n")[0].as_py()
    assert n_predictions == len(fitted.predictions)


def test_study_mode_selects_and_reports_on_dev(bundled):
    config = InferenceConfig(model="minilm", dataset="demo", emotions=["joy"], select_split="dev", report_split="dev")
    fitted = fit_inference(bundled, stimuli(), config)
    assert set(fitted.accuracy["split"]) == {"train", "dev"}
    assert fitted.accuracy.set_index("split").loc["dev", "selected"] == "select,report"


def test_verbalizer_inference_on_a_tiny_masked_lm():
    tiny = tiny_roberta()
    config = InferenceConfig(model="tiny", dataset="demo", readout="verbalizer", emotions=["joy", "anger"])
    fitted = fit_inference(tiny, stimuli(per_emotion=3), config)
    assert set(fitted.probes) == {"joy", "anger"}
    assert fitted.accuracy["accuracy"].between(0, 1).all()
    multi = fit_inference(tiny, stimuli(per_emotion=3), InferenceConfig(
        model="tiny", dataset="demo", readout="verbalizer", task="multiclass", emotions=["joy", "anger", "fear"]))
    assert list(multi.probes) == ["all"] and multi.probes["all"].weights.shape == (3, 3)


def test_probe_predict_multiclass_maps_to_classes():
    probe = Probe(np.eye(3), np.zeros(3), 1.0, classes=[4, 7, 9])
    assert probe.predict(np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])).tolist() == [7, 4]
