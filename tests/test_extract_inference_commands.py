"""`emolake infer` / `ablate` / `ablation-stats` through the CLI on the bundled MiniLM and a tiny lake."""

from __future__ import annotations

import json

import pyarrow as pa
from click.testing import CliRunner

from ablation_fixtures import stimuli
from emolake.cli import cli
from conftest import tree_hashes
from emolake.warehouse.database import query


def _lake_with_stimuli(lake):
    frame = stimuli(per_emotion=4).assign(source_row=0)
    with lake.transaction() as txn:
        txn.write("stimuli", pa.Table.from_pandas(frame, preserve_index=False), {"dataset": "demo"})
    return lake


def test_infer_stores_accuracy_and_prints_json(lake):
    _lake_with_stimuli(lake)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "infer", "--dataset", "demo",
                                      "--emotions", "joy,anger", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["tasks"] == 2 and summary["readout"] == "probe"
    rows = query(lake, "SELECT split, count(*) AS n FROM inference_accuracy GROUP BY 1 ORDER BY 1").to_pylist()
    assert rows == [{"split": "dev", "n": 2}, {"split": "test", "n": 2}, {"split": "train", "n": 2}]


def test_infer_with_a_missing_split_exits_2_and_leaves_the_lake(lake):
    _lake_with_stimuli(lake)
    query(lake, "SELECT 1")  # build the views first: they are not data
    before = tree_hashes(lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "infer", "--dataset", "demo", "--fit-on", "validation",
                                      "--device", "cpu"])
    assert result.exit_code == 2 and "no split 'validation'" in result.output
    assert tree_hashes(lake.root) == before


def test_ablate_without_attribute_neurons_exits_2(lake):
    _lake_with_stimuli(lake)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ablate", "--run-set", "none", "--study", "li2024",
                                      "--dataset", "demo",
                                      "--k", "5", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "attribute neurons" in result.output or "attribute_neurons" in result.output


def test_ablation_stats_on_an_empty_sweep_exits_2(lake):
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ablation-stats", "--run-set", "x",
                                      "--study", "li2024"])
    assert result.exit_code == 2 and "no ablation results" in result.output


def _lake_with_neurons_and_importance(lake, attributes=("arousal", "valence", "control"), ks=(5, 20)):
    """searchlight results, k values and human importance as the analysis commands would store them."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 6 * 1536  # MiniLM: 6 layers x 1536 units
    with lake.transaction() as txn:
        txn.write("searchlight_results", pa.table({
            "neuron": np.tile(np.arange(n), len(attributes)).astype("int32"),
            "layer": np.tile(np.arange(n) // 1536, len(attributes)).astype("int32"),
            "unit": np.tile(np.arange(n) % 1536, len(attributes)).astype("int32"),
            "attribute": np.repeat(attributes, n), "tau": rng.normal(size=n * len(attributes)),
            "p": np.full(n * len(attributes), 0.5), "q": np.full(n * len(attributes), 0.5),
            "q_monotone": np.full(n * len(attributes), 0.5), "q_study": np.full(n * len(attributes), 0.5),
            "inference": ["permutation"] * (n * len(attributes)), "p_asymptotic": np.full(n * len(attributes), 0.5),
        }), {"run_set": "rs", "study": "st"})
        txn.write("neuron_set_sizes", pa.table({"k": list(ks), "scope": ["global"] * len(ks)}),
                  {"run_set": "rs", "study": "st"})
        m = len(attributes)
        txn.write("attribute_importance_results", pa.table({
            "attribute": list(attributes), "method": ["tau_b"] * m, "tau": [0.3, 0.1, 0.2][:m],
            "p": [0.01] * m, "p_perm": [None] * m, "n_perm": [0] * m, "ci_raters_low": [None] * m,
            "ci_raters_high": [None] * m, "n_boot": [0] * m, "n_pairs": [351] * m, "n_raters": [10] * m,
        }), {"study": "st"})


def test_ablate_runs_the_sweep_and_importance_link_answers(lake):
    _lake_with_stimuli(lake)
    _lake_with_neurons_and_importance(lake)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "ablate", "--run-set", "rs", "--study", "st",
                                      "--dataset", "demo", "--k", "5,20", "--controls", "2", "--device", "cpu",
                                      "--max-per-emotion", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["conditions"] == 1 + 3 * 2 + 2 * 2
    top = query(lake, "SELECT neuron FROM attribute_neurons WHERE attribute = 'valence' AND k = 5 ORDER BY neuron")
    stored = query(lake, "SELECT neurons FROM ablations WHERE attribute = 'valence' AND k = 5").column(0)[0].as_py()
    assert stored == top.column(0).to_pylist()
    link = query(lake, "SELECT k, n_emotions FROM importance_link ORDER BY k").to_pylist()
    assert [r["k"] for r in link] == [5, 20]
    rows = query(lake, "SELECT count(*) AS n FROM ablation_summary").column(0)[0].as_py()
    assert rows == 3 * 2 * 3  # emotions x k x attributes
    again = CliRunner().invoke(cli, ["--lake", str(lake.root), "ablate", "--run-set", "rs", "--study", "st",
                                     "--dataset", "demo", "--k", "5", "--controls", "2", "--device", "cpu",
                                     "--max-per-emotion", "3", "--attributes", "valence", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout[again.stdout.index("{"):])["read-out reused"] is True
