"""The study's released RoBERTa activations: 12 runs x 27 prompts x 36,864 neurons, equal to the CSVs."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import tree_hashes
from emolake.extract.store import read_activation_matrix
from emolake.ingest.model_emotion_activations import ACTIVATION_DIR, RELEASE_MODEL_DIR, load_released_activations
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError

N = 36864


def _scalar(lake, sql):
    return query(lake, sql).column(0)[0].as_py()


def fake_release(root: Path, emotions=("anger", "joy"), seeds=(1, 7), gz=("anger",)) -> dict:
    """A small release in the study's layout; `.csv` files, `.csv.gz` for the emotions in `gz`."""
    folder = root / ACTIVATION_DIR
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    values = {}
    for emotion in emotions:
        for seed in seeds:
            row = rng.normal(size=N).astype(np.float32)
            row[::7] = -np.abs(row[::7]) * 1e-9  # tiny GELU-like values survive the round trip
            text = ",".join(map(str, range(N))) + "\n" + ",".join(repr(float(v)) for v in row) + "\n"
            if emotion in gz:
                (folder / f"{emotion}-{seed}.csv.gz").write_bytes(gzip.compress(text.encode()))
            else:
                (folder / f"{emotion}-{seed}.csv").write_text(text)
            values[(emotion, seed)] = row
    lines = ["sentiment,random_seed,accuracy"] + [f"{e},{s},0.{80 + i}" for i, (e, s) in enumerate(values)]
    (root / RELEASE_MODEL_DIR / "accuracy.csv").write_text("\n".join(lines) + "\n")
    return values


def test_a_small_release_in_csv_and_csv_gz_reads_back_exactly(lake, tmp_path):
    values = fake_release(tmp_path / "release")
    summary = {}
    load_released_activations(tmp_path / "release", lake, summary)
    assert summary["released_runs"] == 2 and summary["released_prompts"] == 2
    for seed in (1, 7):
        ids, matrix = read_activation_matrix(lake, f"li2024-roberta-seed{seed}")
        assert ids == ["anger", "joy"]
        for i, emotion in enumerate(ids):
            np.testing.assert_array_equal(matrix[i], values[(emotion, seed)])
    got = query(lake, "SELECT value FROM activations WHERE run_id = 'li2024-roberta-seed7' "
                      "AND stimulus_id = 'joy' AND neuron = 5000").column(0)[0].as_py()
    assert np.float32(got) == values[("joy", 7)][5000]
    runs = query(lake, "SELECT run_id, run_set, model, position, dataset, split, n_layers, d_ff, seed FROM runs "
                       "ORDER BY seed").to_pylist()
    assert runs[1] == {"run_id": "li2024-roberta-seed7", "run_set": "li2024-roberta", "model": "roberta-base",
                       "position": "mask", "dataset": "li2024-prompts", "split": "prompt", "n_layers": 12,
                       "d_ff": 3072, "seed": 7}
    assert _scalar(lake, "SELECT count(*) FROM stimuli WHERE dataset = 'li2024-prompts'") == 2
    assert _scalar(lake, "SELECT accuracy FROM release_accuracy WHERE emotion = 'joy' AND seed = 7") == 0.83


@pytest.mark.parametrize("damage, match", [
    (lambda t: t.replace(",36863\n", "\n", 1), "wrong column count in the header.*expected 36864 columns.*found 36863"),
    (lambda t: t.split("\n")[0] + "\n" + "x1.5," + t.split("\n")[1].split(",", 1)[1] + "\n",
     "not a finite number.*row 1, column '0'.*found 'x1.5'"),
    (lambda t: t.split("\n")[0] + "\n" + t.split("\n")[1] + "\n" + t.split("\n")[1] + "\n", "one data row"),
    (lambda t: t.replace("0,1,2,", "0,1,x2,", 1), "header is not 0..36863.*column '2'.*found 'x2'"),
])
def test_bad_release_files_are_named_and_leave_the_lake_unchanged(lake, tmp_path, damage, match):
    fake_release(tmp_path / "release", gz=())
    path = tmp_path / "release" / ACTIVATION_DIR / "joy-7.csv"
    path.write_text(damage(path.read_text()))
    before = tree_hashes(lake.root)
    with pytest.raises(BadInputError, match=match) as error:
        load_released_activations(tmp_path / "release", lake, {})
    assert error.value.file == str(path)
    assert tree_hashes(lake.root) == before


def test_a_missing_emotion_seed_file_is_named(lake, tmp_path):
    fake_release(tmp_path / "release", gz=())
    (tmp_path / "release" / ACTIVATION_DIR / "anger-7.csv").unlink()
    with pytest.raises(BadInputError, match="missing released activation file.*anger-7"):
        load_released_activations(tmp_path / "release", lake, {})


def test_the_real_release_loads_as_12_runs_of_27_prompts_equal_to_the_csvs(lake, shared_data):
    release = shared_data / "model_emotion"
    summary = {}
    load_released_activations(release, lake, summary)
    counts = query(lake, "SELECT count(DISTINCT run_id) AS runs, count(DISTINCT stimulus_id) AS prompts, "
                         "count(DISTINCT neuron) AS neurons, count(*) AS n FROM activations").to_pylist()[0]
    assert counts == {"runs": 12, "prompts": 27, "neurons": 36864, "n": 12 * 27 * 36864}
    assert _scalar(lake, "SELECT count(*) FROM runs WHERE run_set = 'li2024-roberta'") == 12
    assert _scalar(lake, "SELECT count(*) FROM release_accuracy") == 324
    folder = release / ACTIVATION_DIR
    for seed in (1, 42):
        ids, matrix = read_activation_matrix(lake, f"li2024-roberta-seed{seed}")
        assert len(ids) == 27 and matrix.shape == (27, 36864)
        for emotion in ("admiration", "grief", "surprise"):  # whole files, parsed by pandas independently
            expected = pd.read_csv(folder / f"{emotion}-{seed}.csv.gz", dtype=np.float64).to_numpy()[0]
            np.testing.assert_array_equal(matrix[ids.index(emotion)], expected.astype(np.float32))
    accuracy = pd.read_csv(release / RELEASE_MODEL_DIR / "accuracy.csv")
    row = accuracy.iloc[17]
    got = _scalar(lake, f"SELECT accuracy FROM release_accuracy WHERE emotion = '{row.sentiment}' "
                        f"AND seed = {row.random_seed}")
    assert got == row.accuracy
