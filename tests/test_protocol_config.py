"""The protocol's config file: the shipped configs parse, and every bad key, type or value is refused
(exit 2) naming the file, the key, what was expected and what was found."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from emolake.cli import cli
from emolake.extract.protocol import PROTOCOL_KEYS, load_protocol, parse_protocol
from emolake.warehouse.errors import BadInputError

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "docs" / "protocols").glob("*.toml"))
MINIMAL = """
[protocol]
name = "p"
study = "li2024"
[model]
name = "smollm2-135m-instruct"
[prompt]
seeds = [3, 1]
[neurons]
k = [20, 5]
"""


def test_the_shipped_configs_parse_with_every_key_written_out():
    assert {p.name for p in SHIPPED} >= {"smollm2-cpu.toml", "roberta-base-study.toml"}
    for path in SHIPPED:
        config = load_protocol(path)
        assert set(config) == set(PROTOCOL_KEYS)
        written = path.read_text()
        for section, keys in PROTOCOL_KEYS.items():  # a config a paper can cite names every setting
            assert f"[{section}]" in written, (path.name, section)
            missing = [k for k in keys if f"\n{k} = " not in written and not (section == "stimuli" and
                                                                                 k == "max_per_emotion")]
            assert not missing, (path.name, section, missing)
    study = load_protocol(REPO / "docs" / "protocols" / "roberta-base-study.toml")
    assert len(study["prompt"]["seeds"]) == 12 and study["stimuli"]["report_split"] == "dev"


def test_defaults_fill_in_and_lists_are_sorted():
    config = parse_protocol(MINIMAL, "p.toml")
    assert config["prompt"]["seeds"] == [1, 3] and config["neurons"]["k"] == [5, 20]
    assert config["prompt"]["epochs"] == 10 and config["ablation"]["controls"] == 10
    assert config["stimuli"]["emotions"] == "all" and config["stimuli"]["max_per_emotion"] is None
    assert isinstance(config["prompt"]["lr"], float)


@pytest.mark.parametrize("edit,key,expected", [
    ("[prompts]\nseeds = [1]\n", "prompts", "one of [protocol]"),
    ("[ablation]\ncontrol = 3\n", "ablation.control", "one of controls"),
    ("[ablation]\ncontrols = \"3\"\n", "ablation.controls", "an integer"),
    ("[ablation]\ncontrols = true\n", "ablation.controls", "an integer"),
    ("[ablation]\ncontrols = 0\n", "ablation.controls", "an integer >= 1"),
    ("[ablation]\nlayer_matched = 1\n", "ablation.layer_matched", "true or false"),
    ("[ablation]\nmode = \"half\"\n", "ablation.mode", "one of zero, mean, scale, noise"),
    ("[prompt2]\n", "prompt2", "one of [protocol]"),
    ("[stimuli]\nemotions = \"joy\"\n", "stimuli.emotions", "a non-empty list of strings"),
    ("[stimuli]\nemotions = [\"joy\", \"Joy\"]\n", "stimuli.emotions", "distinct emotions"),
    ("[stimuli]\nmax_per_emotion = 2.5\n", "stimuli.max_per_emotion", "an integer"),
    ("[stimuli]\ndataset = \"../elsewhere\"\n", "stimuli.dataset", "a name of 1-128 characters"),
    ("[searchlight]\nalpha = nan\n", "searchlight.alpha", "a number"),
    ("[rsa]\nseed = -1\n", "rsa.seed", "an integer >= 0"),
])
def test_bad_keys_and_values_name_the_file_key_expected_and_found(tmp_path, edit, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + edit)  # sections the minimal config lacks, added with one bad key
    with pytest.raises(BadInputError) as error:
        load_protocol(path)
    message = str(error.value)
    assert str(path) in message and key in message and expected in message, message
    assert "found" in message


@pytest.mark.parametrize("text,key", [
    (MINIMAL.replace('name = "p"\n', ""), "protocol.name"),
    (MINIMAL.replace("seeds = [3, 1]", "seeds = []"), "prompt.seeds"),
    (MINIMAL.replace("seeds = [3, 1]", "seeds = [1, 1]"), "prompt.seeds"),
    (MINIMAL.replace("k = [20, 5]", "k = [0, 5]"), "neurons.k"),
    (MINIMAL.replace("[neurons]", "neurons = 3\n[neurons]"), "prompt.neurons"),
    (MINIMAL + "[prompt.extra]\nx = 1\n", "prompt.extra"),
    (MINIMAL + '[prompt]\nlength = 3\n', "prompt"),  # a section twice is invalid TOML
    (MINIMAL.replace("study = \"li2024\"", "study = li2024"), "line 4"),
])
def test_missing_keys_bad_lists_and_bad_toml_are_refused(text, key):
    with pytest.raises(BadInputError) as error:
        parse_protocol(text, "cfg.toml")
    assert "cfg.toml" in str(error.value) and key in str(error.value), str(error.value)


def test_the_cli_checks_the_config_and_exits_2_on_a_bad_one(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(MINIMAL)
    bad.write_text(MINIMAL + "[ablation]\ncontrols = \"many\"\n")
    checked = CliRunner().invoke(cli, ["--lake", str(tmp_path / "lake"), "protocol", "--config", str(good), "--check",
                                       "--json"])
    assert checked.exit_code == 0, checked.output
    assert '"seeds": [\n' in checked.output or '"seeds": [1, 3]' in checked.output
    refused = CliRunner().invoke(cli, ["--lake", str(tmp_path / "lake"), "protocol", "--config", str(bad)])
    assert refused.exit_code == 2
    assert "ablation.controls" in refused.output and "bad.toml" in refused.output and "'many'" in refused.output
    assert not (tmp_path / "lake").exists()  # nothing was created
    missing = CliRunner().invoke(cli, ["--lake", str(tmp_path / "lake"), "protocol", "--config",
                                       str(tmp_path / "none.toml")])
    assert missing.exit_code == 2 and "none.toml" in missing.output


def test_a_protocol_without_its_inputs_is_refused_before_any_training(lake, tmp_path):
    """No stimuli, an emotion the dataset lacks, or a study without human data: exit 2, nothing written."""
    import pyarrow as pa

    from conftest import tree_hashes
    from emolake.warehouse.database import query

    config = tmp_path / "p.toml"
    config.write_text(MINIMAL.replace("[prompt]", '[stimuli]\ndataset = "toy"\nemotions = ["joy", "grief"]\n[prompt]'))
    run = lambda: CliRunner().invoke(cli, ["--lake", str(lake.root), "protocol", "--config", str(config)])  # noqa: E731
    query(lake, "SELECT 1")
    before = tree_hashes(lake.root)
    result = run()
    assert result.exit_code == 2 and "no stimuli for dataset 'toy'" in result.output, result.output
    assert tree_hashes(lake.root) == before
    rows = [{"split": split, "stimulus_id": f"{split}-{i}", "text": "so happy", "emotion": "joy", "n_labels": 1,
             "source_row": i} for i, split in enumerate(["train", "dev", "test"])]
    with lake.transaction() as txn:
        txn.write("stimuli", pa.Table.from_pylist(rows), {"dataset": "toy"})
    result = run()
    assert result.exit_code == 2 and "emotions without stimuli" in result.output and "grief" in result.output
    config.write_text(config.read_text().replace('"joy", "grief"', '"joy"'))
    query(lake, "SELECT 1")
    before = tree_hashes(lake.root)
    result = run()
    assert result.exit_code == 2 and "study 'li2024' has no emotion_attributes" in result.output, result.output
    assert tree_hashes(lake.root) == before
