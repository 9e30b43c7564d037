"""`extract --store profiles`: per-emotion count, sum and sum of squares instead of per-stimulus vectors.

The same stimuli extracted both ways (the bundled MiniLM, a tiny random Llama) give the same
`emotion_profile` (float32 activations summed in float64: equal to 1e-9 relative, see
`REL_TOL`), the same standard deviations as numpy over the vectors, and identical RSA and
searchlight results; a resumed profiles run equals an uninterrupted one; per-stimulus readers
refuse a profiles run, naming it.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from emolake.analysis.rsa import run_rsa
from emolake.analysis.searchlight import run_searchlight
from emolake.extract.models.loading import LoadedModel, load_model
from emolake.extract.run import ExtractSettings, extract_run
from emolake.extract.store import merge_profile_parts, read_activation_matrix, read_profile_sums
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError
from emolake.warehouse.lake import Lake
from extract_models import save_tiny_model

REL_TOL, ABS_TOL = 1e-9, 1e-12  # float64 sums of float32 values in another order; ABS only for values ~0
EMOTIONS = ["admiration", "anger", "fear", "joy", "sadness", "surprise"]
WORDS = "so happy sad angry today never again this is the best worst thing ever I feel great awful".split()
STUDY = "toy-study"


def write_inputs(lake: Lake, dataset: str = "toy") -> dict[str, list[str]]:
    """3 single-label stimuli per emotion, 3 neutral, 2 multi-label (left out of every profile), and a
    study (attributes, similarity) over the emotions. Returns stimulus id -> labels."""
    rng = np.random.default_rng(0)
    labels = {f"{e}-{k}": [e] for e in EMOTIONS for k in range(3)}
    labels |= {f"neutral-{k}": ["neutral"] for k in range(3)}
    labels |= {"multi-0": ["anger", "fear"], "multi-1": ["joy", "surprise"]}
    order = list(labels)
    rng.shuffle(order)  # emotions interleave across chunks
    rows = [{"split": "test", "stimulus_id": sid, "text": " ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))),
             "emotion": e, "n_labels": len(labels[sid]), "source_row": i}
            for i, sid in enumerate(order) for e in labels[sid]]
    attributes = rng.random((len(EMOTIONS), 3)) * 9
    similarity = [{"rater": f"r{r}", "emotion_a": a, "emotion_b": b, "source": "test",
                   "distance": float(np.clip(np.round(abs(attributes[i] - attributes[j]).sum() / 3 + rng.normal()), 1, 9))}
                  for r in range(3) for (i, a), (j, b) in combinations(enumerate(EMOTIONS), 2)]
    with lake.transaction("test") as txn:
        txn.write("stimuli", pa.Table.from_pylist(rows), {"dataset": dataset})
        txn.write("emotion_attributes", pa.Table.from_pylist([
            {"emotion": e, "attribute": f"attr{a}", "value": float(attributes[i, a]), "source": "test"}
            for i, e in enumerate(EMOTIONS) for a in range(3)]), {"study": STUDY})
        txn.write("similarity_judgments", pa.Table.from_pylist(similarity), {"study": STUDY})
    return labels


@pytest.fixture(scope="module")
def minilm() -> LoadedModel:
    import torch

    torch.set_num_threads(1)
    return load_model(None)


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> LoadedModel:
    return load_model(str(save_tiny_model(tmp_path_factory.mktemp("llama") / "llama", "llama")))


def extract_both(lake: Lake, loaded: LoadedModel, **settings) -> dict[str, str]:
    """The same stimuli as vectors (run set 'vec') and as profiles (run set 'prof'); store -> run id."""
    runs = {}
    for store, run_set in (("vectors", "vec"), ("profiles", "prof")):
        summary = extract_run(lake, ExtractSettings(model=loaded.name, dataset="toy", batch_size=4, chunk_size=7,
                                                    run_set=run_set, store=store, **settings), loaded=loaded)
        assert summary["status"] == "complete" and summary["store"] == store
        runs[store] = summary["run_id"]
    return runs


def profile_rows(lake: Lake, view: str, run_id: str, columns: str) -> pa.Table:
    return query(lake, f"SELECT emotion, neuron, layer, unit, {columns} FROM {view} WHERE run_id = '{run_id}' "
                       "ORDER BY emotion, neuron")


@pytest.mark.parametrize("model", [pytest.param("minilm", marks=pytest.mark.slow), "llama"])  # MiniLM: 9,216 neurons
def test_a_profiles_run_gives_the_vectors_runs_emotion_profile_and_analyses(lake, model, request):
    loaded = request.getfixturevalue(model)
    labels = write_inputs(lake)
    runs = extract_both(lake, loaded)
    assert runs["profiles"] != runs["vectors"]
    assert "-profiles-" in runs["profiles"]
    assert query(lake, "SELECT count(*) FROM activations WHERE run_id = "
                       f"'{runs['profiles']}'").column(0)[0].as_py() == 0  # no vector is kept
    vec = profile_rows(lake, "emotion_profile", runs["vectors"], "value, n_stimuli")
    prof = profile_rows(lake, "emotion_profile", runs["profiles"], "value, n_stimuli")
    assert prof.schema == vec.schema
    for column in ("emotion", "neuron", "layer", "unit", "n_stimuli"):
        assert prof.column(column).to_pylist() == vec.column(column).to_pylist()
    np.testing.assert_allclose(prof.column("value").to_numpy(), vec.column("value").to_numpy(),
                               rtol=REL_TOL, atol=ABS_TOL)
    # 6 emotions + neutral, 3 single-label stimuli each; the multi-label stimuli count toward none
    assert sorted(set(prof.column("emotion").to_pylist())) == sorted(EMOTIONS + ["neutral"])
    assert set(prof.column("n_stimuli").to_pylist()) == {3}

    # mean and sample standard deviation against numpy over the stored vectors
    ids, matrix = read_activation_matrix(lake, runs["vectors"])  # [n_stimuli, n_neurons]
    spread = profile_rows(lake, "emotion_profile_spread", runs["profiles"], "value, std, n_stimuli")
    emotions = spread.column("emotion").to_numpy(zero_copy_only=False)
    neurons = spread.column("neuron").to_numpy()
    for emotion in ("anger", "neutral"):
        rows = [k for k, sid in enumerate(ids) if labels[sid] == [emotion]]
        values = matrix[rows].astype(np.float64)  # [3, n_neurons]
        mask = emotions == emotion
        np.testing.assert_allclose(spread.column("value").to_numpy()[mask], values.mean(axis=0)[neurons[mask]],
                                   rtol=REL_TOL, atol=ABS_TOL)
        np.testing.assert_allclose(spread.column("std").to_numpy()[mask], values.std(axis=0, ddof=1)[neurons[mask]],
                                   rtol=1e-6, atol=1e-9)  # sumsq - sum^2/n cancels: ~1e-16 * mean^2 / var relative

    # everything above the profiles: model RDM, RSA and the searchlight are the same
    rdm = {rs: query(lake, f"SELECT emotion_a, emotion_b, metric, distance FROM model_rdm WHERE run_set = '{rs}' "
                           "ORDER BY metric, emotion_a, emotion_b") for rs in ("vec", "prof")}
    assert rdm["prof"].num_rows == rdm["vec"].num_rows == 3 * 15
    np.testing.assert_allclose(rdm["prof"].column("distance").to_numpy(), rdm["vec"].column("distance").to_numpy(),
                               rtol=REL_TOL, atol=ABS_TOL)
    for run_set in ("vec", "prof"):
        run_rsa(lake, STUDY, run_set, n_perm=200, n_boot=50, seed=3, progress=False)
        run_searchlight(lake, run_set, STUDY, n_perm=50, seed=3, progress=False)
    for view, keys in (("model_rsa", "layer, target, metric, method"), ("searchlight", "neuron, attribute")):
        rows = {rs: query(lake, f"SELECT * EXCLUDE (run_set) FROM {view} WHERE run_set = '{rs}' ORDER BY {keys}")
                for rs in ("vec", "prof")}
        assert rows["prof"].num_rows == rows["vec"].num_rows > 0
        assert rows["prof"].to_pylist() == rows["vec"].to_pylist(), view


def test_multi_label_and_position_all_count_as_over_vectors(lake, llama):
    """Position 'all': one row per token; profiles count tokens exactly as the view counts vector rows."""
    write_inputs(lake)
    runs = extract_both(lake, llama, position="all", template="{text}")
    vec = profile_rows(lake, "emotion_profile", runs["vectors"], "value, n_stimuli")
    prof = profile_rows(lake, "emotion_profile", runs["profiles"], "value, n_stimuli")
    assert prof.column("n_stimuli").to_pylist() == vec.column("n_stimuli").to_pylist()
    assert max(prof.column("n_stimuli").to_pylist()) > 3  # tokens, not stimuli
    np.testing.assert_allclose(prof.column("value").to_numpy(), vec.column("value").to_numpy(),
                               rtol=REL_TOL, atol=ABS_TOL)
    covered = query(lake, "SELECT stimulus_id, emotion, part FROM profile_stimuli WHERE run_id = "
                          f"'{runs['profiles']}' ORDER BY stimulus_id").to_pylist()
    assert len(covered) == len({r["stimulus_id"] for r in covered}) == 23  # each stimulus in one part, once
    assert {r["stimulus_id"]: r["emotion"] for r in covered}["multi-0"] is None
    assert len({r["part"] for r in covered}) == 4  # 23 stimuli in chunks of 7
    # the finished run's 4 parts are merged into one file per layer (and one stimuli record)
    assert [f.partition for f in lake.live_files("profile_parts", f"run_id={runs['profiles']}")] == \
        [f"run_id={runs['profiles']}/layer={layer}" for layer in range(llama.n_layers)]
    assert len(lake.live_files("profile_stimuli", f"run_id={runs['profiles']}")) == 1


def test_a_resumed_profiles_run_equals_an_uninterrupted_one(tmp_path, llama):
    """Interrupted after its second chunk (and its parts merged, as a finished run's are), rerun: only the
    missing chunks are written, each stimulus once, and the lake holds what an uninterrupted run writes."""
    lakes = {name: Lake(tmp_path / name) for name in ("resumed", "clean")}
    for lake in lakes.values():
        lake.init()
        write_inputs(lake)
    settings = ExtractSettings(model=llama.name, dataset="toy", batch_size=7, chunk_size=7, store="profiles")
    batches = []

    def interrupt(n: int) -> None:
        batches.append(n)
        if len(batches) == 3:  # the third chunk's only batch: chunks 0 and 1 are committed, 2 is not
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_run(lakes["resumed"], settings, loaded=llama, on_progress=interrupt)
    assert len(lakes["resumed"].live_files("profile_stimuli")) == 2
    assert query(lakes["resumed"], "SELECT status FROM runs").column(0).to_pylist() == ["running"]
    run_id = query(lakes["resumed"], "SELECT run_id FROM runs").column(0)[0].as_py()
    assert merge_profile_parts(lakes["resumed"], run_id, "test") == 2 * llama.n_layers + 2
    summary = extract_run(lakes["resumed"], settings, loaded=llama)
    assert summary["status"] == "resumed and complete" and summary["chunks_written"] == 2
    extract_run(lakes["clean"], settings, loaded=llama)
    for view, order in (("profile_parts", "layer, emotion"), ("profile_stimuli", "stimulus_id, emotion")):
        sql = f"SELECT * FROM {view} ORDER BY {order}"
        assert query(lakes["resumed"], sql).to_pylist() == query(lakes["clean"], sql).to_pylist(), view
    assert query(lakes["clean"], "SELECT count(*), count(DISTINCT stimulus_id) FROM profile_stimuli").to_pylist() == \
        [{"count_star()": 23, "count(DISTINCT stimulus_id)": 23}]
    sql = "SELECT emotion, neuron, value, n_stimuli FROM emotion_profile ORDER BY emotion, neuron"
    assert query(lakes["resumed"], sql).to_pylist() == query(lakes["clean"], sql).to_pylist()
    assert extract_run(lakes["resumed"], settings, loaded=llama)["status"] == "already complete"


def test_parts_from_disjoint_stimuli_add_up_to_the_whole(lake, llama):
    """A run in 5 parts (disjoint stimuli, as chunks or shards are) adds up to the run in one part."""
    write_inputs(lake)
    # one prompt per batch, so that each stimulus's activations do not depend on the chunking (padding)
    whole = extract_run(lake, ExtractSettings(model=llama.name, dataset="toy", batch_size=1, chunk_size=23,
                                              store="profiles"), loaded=llama)["run_id"]
    chunked = extract_run(lake, ExtractSettings(model=llama.name, dataset="toy", batch_size=1, chunk_size=5,
                                                store="profiles", run_id="chunked"), loaded=llama)["run_id"]
    parts = query(lake, f"SELECT count(DISTINCT part) FROM profile_stimuli WHERE run_id = '{chunked}'")
    assert parts.column(0)[0].as_py() == 5
    a, b = read_profile_sums(lake, whole), read_profile_sums(lake, chunked)
    assert a[0] == b[0] and a[1].tolist() == b[1].tolist()
    np.testing.assert_allclose(a[2], b[2], rtol=REL_TOL, atol=ABS_TOL)
    rows = query(lake, "SELECT run_id, sum(n_rows) AS n FROM profile_sums WHERE neuron = 0 GROUP BY run_id").to_pylist()
    assert {r["n"] for r in rows} == {3 * 7}  # 7 emotions x 3 single-label stimuli, no part counted twice


def test_per_stimulus_readers_refuse_a_profiles_run_naming_it(lake, llama):
    write_inputs(lake)
    run_id = extract_run(lake, ExtractSettings(model=llama.name, dataset="toy", store="profiles"),
                         loaded=llama)["run_id"]
    with pytest.raises(BadInputError, match=f"run '{run_id}' stores emotion profiles.*--store vectors"):
        read_activation_matrix(lake, run_id)


def test_a_run_cannot_switch_store_on_resume(lake, llama):
    write_inputs(lake)
    extract_run(lake, ExtractSettings(model=llama.name, dataset="toy", run_id="r1"), loaded=llama)
    with pytest.raises(BadInputError, match="store"):
        extract_run(lake, ExtractSettings(model=llama.name, dataset="toy", run_id="r1", store="profiles"),
                    loaded=llama)
    assert query(lake, "SELECT store FROM runs WHERE run_id = 'r1'").column(0).to_pylist() == ["vectors"]


def test_cli_store_profiles_writes_profiles_and_refuses_an_unknown_store(tmp_path: Path):
    from emolake.cli import cli

    lake = Lake(tmp_path / "lake")
    lake.init()
    write_inputs(lake)
    folder = save_tiny_model(tmp_path / "llama", "llama")
    runner = CliRunner()
    bad = runner.invoke(cli, ["--lake", str(lake.root), "extract", "--model", str(folder), "--dataset", "toy",
                              "--store", "sums"])
    assert bad.exit_code == 2 and "'sums' is not one of 'vectors', 'profiles'" in bad.output
    ok = runner.invoke(cli, ["--lake", str(lake.root), "extract", "--model", str(folder), "--dataset", "toy",
                             "--store", "profiles", "--device", "cpu", "--json"])
    assert ok.exit_code == 0, ok.output
    assert '"store": "profiles"' in ok.output
    assert query(lake, "SELECT store, status FROM runs").to_pylist() == [{"store": "profiles", "status": "complete"}]
    assert query(lake, "SELECT count(DISTINCT emotion) FROM emotion_profile").column(0)[0].as_py() == 7
