"""Every family in the registry, on a tiny random model built from its config: the neuron definitions
computed by hand from the module's weights, ablation's exact effect on the MLP output, batched ==
one prompt at a time on every layer at every read-out with left and right padding, and a clear
error for an architecture the registry does not list."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emolake.extract.capture import build_prompts, capture, encode
from emolake.extract.hooks import active_hook_count, down_projections, ffn_hook_points, hooked
from emolake.extract.models.families import FAMILIES, family_of
from emolake.extract.models.loading import LoadedModel, load_model
from extract_models import ALL_KINDS, CAUSAL_KINDS, save_tiny_model, tiny_model, tiny_tokenizer
from emolake.warehouse.database import query
from emolake.warehouse.errors import BadInputError

ACTIVATIONS = {"silu": F.silu, "gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
               "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}
TEXTS = ["I am so happy today!", "This is awful.", "Why would anyone ever do such a thing to me, honestly?", "ok"]
# kind -> (path from a layer to the module whose input is the MLP input x, hand formula(mlp module, x) -> neurons)
GATED_KINDS = [k for k in CAUSAL_KINDS if k not in ("gpt2", "gpt_neox")]


def _act_name(config) -> str:
    for key in ("hidden_activation", "hidden_act", "activation_function", "activation"):
        if getattr(config, key, None):
            return getattr(config, key)
    raise AssertionError("no activation in config")


def hand_neurons(kind: str, layer: torch.nn.Module, x: torch.Tensor, act, neuron: str) -> torch.Tensor:
    """[batch, pos, d_ff] from the MLP input x, the weights and the activation named in the config."""
    if kind in ("bert", "roberta", "xlm-roberta"):
        dense = layer.intermediate.dense
        return act(x @ dense.weight.T + dense.bias)
    if kind == "distilbert":
        return act(x @ layer.ffn.lin1.weight.T + layer.ffn.lin1.bias)
    if kind == "gpt2":
        return act(x @ layer.mlp.c_fc.weight + layer.mlp.c_fc.bias)  # Conv1D: weight is [d_model, d_ff]
    if kind == "gpt_neox":
        return act(x @ layer.mlp.dense_h_to_4h.weight.T + layer.mlp.dense_h_to_4h.bias)
    if kind == "phi3":
        gate, up = (x @ layer.mlp.gate_up_proj.weight.T).chunk(2, dim=-1)
    else:
        gate, up = x @ layer.mlp.gate_proj.weight.T, x @ layer.mlp.up_proj.weight.T
    return act(gate) if neuron == "mlp_gate" else act(gate) * up


def mlp_input_module(kind: str, layer: torch.nn.Module) -> torch.nn.Module:
    if kind in ("bert", "roberta", "xlm-roberta"):
        return layer.intermediate
    return layer.ffn if kind == "distilbert" else layer.mlp


def loaded_tiny(kind: str, neuron: str = "mlp_post") -> LoadedModel:
    model = tiny_model(kind)
    return LoadedModel(kind, None, model, tiny_tokenizer(), "0" * 64, False, "cpu", "0" * 64, "float32", neuron)


def _layers(loaded: LoadedModel) -> list[torch.nn.Module]:
    base = loaded.model.base_model
    for part in loaded.family.layers.split("."):
        base = getattr(base, part)
    return list(base)


def _neuron_cases():
    return [(k, "mlp_post") for k in ALL_KINDS] + [(k, "mlp_gate") for k in GATED_KINDS]


def test_every_family_in_the_registry_has_a_tiny_model_here():
    covered = {family_of(tiny_model(k).config.model_type).name for k in ALL_KINDS}
    assert covered == {f.name for f in FAMILIES}


@pytest.mark.parametrize(("kind", "neuron"), _neuron_cases())
def test_neuron_definition_matches_a_hand_computation_from_the_weights(kind, neuron):
    loaded = loaded_tiny(kind, neuron)
    act = ACTIVATIONS[_act_name(loaded.model.config)]
    batch = loaded.tokenizer(["The weather makes me feel calm."], return_tensors="pt")
    inputs, hooked_values = {}, {}
    layers = _layers(loaded)
    handles = [mlp_input_module(kind, layer).register_forward_pre_hook(
        lambda _m, args, i=i: inputs.__setitem__(i, args[0].detach().clone())) for i, layer in enumerate(layers)]

    def keep(layer: int, act_values: torch.Tensor) -> None:  # [batch, pos, d_ff]
        hooked_values[layer] = act_values.detach().clone()

    try:
        with torch.no_grad(), hooked(loaded.model, keep, neuron=neuron):
            loaded.model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        for handle in handles:
            handle.remove()
    assert sorted(hooked_values) == list(range(len(layers)))
    for i, layer in enumerate(layers):
        with torch.no_grad():
            expected = hand_neurons(kind, layer, inputs[i], act, neuron)
        assert hooked_values[i].shape == expected.shape == (1, batch["input_ids"].shape[1], loaded.d_ff)
        torch.testing.assert_close(hooked_values[i], expected, atol=1e-5, rtol=1e-5)
    assert active_hook_count(loaded.model) == 0


@pytest.mark.parametrize(("kind", "neuron"), _neuron_cases())
def test_ablating_neuron_i_changes_the_mlp_output_by_exactly_w_down_i_times_h_i(kind, neuron):
    loaded = loaded_tiny(kind, neuron)
    layer, unit = 1, 5
    down = down_projections(loaded.model)[layer]
    batch = loaded.tokenizer(["Nothing ever goes right for me."], return_tensors="pt")
    outputs, post = [], []  # the down projection's output and input (as it received it), per pass

    def record(_module, args, out) -> None:
        outputs.append(out.detach().clone())
        post.append(args[0].detach().clone())

    handle = down.register_forward_hook(record)

    def zero(at: int, values: torch.Tensor) -> torch.Tensor | None:  # [batch, pos, d_ff]
        if at != layer:
            return None
        values = values.clone()
        values[..., unit] = 0
        return values

    try:
        with torch.no_grad():
            loaded.model.base_model(**{k: v for k, v in batch.items() if k != "token_type_ids"})
            with hooked(loaded.model, zero, neuron=neuron):
                loaded.model.base_model(**{k: v for k, v in batch.items() if k != "token_type_ids"})
    finally:
        handle.remove()
    h = post[0][..., unit]  # [batch, pos]: the neuron as the down projection received it, unablated
    weight = (down.weight[:, unit] if isinstance(down, torch.nn.Linear) else down.weight[unit, :]).detach()  # [d_model]
    torch.testing.assert_close(outputs[0] - outputs[1], h[..., None] * weight, atol=1e-5, rtol=1e-5)
    assert float(h.abs().max()) > 1e-3  # the neuron was active, so the check could fail
    assert torch.all(post[1][..., unit] == 0)


def _positions(kind: str) -> list[tuple[str, str]]:
    if kind in CAUSAL_KINDS:
        return [("last", "{text}\nThe emotion expressed here is"), ("mask", "{text} I feel {mask}."),
                ("mean", "Text: {text}\nEmotion:"), ("all", "{text}")]
    return [("mask", "{text} I feel {mask}."), ("cls", "{text}"), ("mean", "{text}"), ("all", "{text}")]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_batched_equals_one_prompt_at_a_time_on_every_layer_with_left_and_right_padding(kind):
    loaded = loaded_tiny(kind)
    for position, template in _positions(kind):
        prompts, spans = build_prompts(loaded, TEXTS, template, position)
        encoded = encode(loaded, prompts, position, [f"s{i}" for i in range(len(TEXTS))], spans)
        assert len(set(encoded.lengths())) == len(TEXTS)  # every batch needs padding
        single = capture(loaded, encoded, position, batch_size=1)
        for side in ("right", "left"):
            batched = capture(loaded, encoded, position, batch_size=4, padding_side=side)
            for layer in range(loaded.n_layers):
                np.testing.assert_allclose(batched.layer(layer), single.layer(layer), atol=1e-5, rtol=1e-5,
                                           err_msg=f"{kind} {position} {side} layer {layer}")


def test_left_padding_without_position_ids_would_shift_the_shorter_prompts(monkeypatch):
    """The known bug class the position ids prevent, so the check above can fail: with absolute position
    embeddings (GPT-2) a left-padded prompt starts at the wrong position. (RoPE models only see relative
    positions, which a uniform shift leaves alone.)"""
    from dataclasses import replace

    loaded = loaded_tiny("gpt2")
    prompts, spans = build_prompts(loaded, TEXTS, "{text}", "last")
    encoded = encode(loaded, prompts, "last", ["a", "b", "c", "d"], spans)
    single = capture(loaded, encoded, "last", batch_size=1)
    loaded.family = replace(loaded.family, explicit_position_ids=False)
    batched = capture(loaded, encoded, "last", batch_size=4, padding_side="left")
    assert np.abs(batched.layer(1) - single.layer(1)).max() > 1e-3


def test_causal_mean_averages_the_text_tokens_only():
    loaded = loaded_tiny("llama")
    prompts, spans = build_prompts(loaded, ["so happy"], "Text: {text}\nEmotion:", "mean")
    encoded = encode(loaded, prompts, "mean", ["s"], spans)
    tokens = loaded.tokenizer.convert_ids_to_tokens(encoded.ids[0])
    chosen = [t for t, keep in zip(tokens, encoded.text_tokens[0]) if keep]
    assert chosen == ["so", "happy"]
    everything = capture(loaded, encoded, "all", batch_size=1)
    mean = capture(loaded, encoded, "mean", batch_size=1)
    keep = np.array(encoded.text_tokens[0])
    np.testing.assert_allclose(mean.layer(0)[0], everything.layer(0)[keep].mean(0), atol=1e-6)


def test_causal_mask_position_reads_where_the_mask_would_be_predicted():
    loaded = loaded_tiny("qwen2")
    with_mask, spans = build_prompts(loaded, ["so happy"], "{text} I feel {mask}.", "mask")
    assert with_mask == ["so happy I feel"]
    encoded = encode(loaded, with_mask, "mask", ["s"], spans)
    assert encoded.read_index == [len(encoded.ids[0]) - 1]


def test_mlp_gate_on_an_ungated_mlp_is_refused():
    with pytest.raises(BadInputError, match="needs a gated MLP"):
        ffn_hook_points(tiny_model("gpt2"), "mlp_gate")


def test_cls_on_a_causal_lm_is_refused():
    from emolake.extract.prompts import check_position

    with pytest.raises(BadInputError, match="causal LM"):
        check_position("cls", causal=True)


def test_unlisted_architecture_is_refused_with_exit_2_naming_the_supported_ones(tmp_path, lake):
    from click.testing import CliRunner

    from emolake.cli import cli
    from conftest import tree_hashes
    from test_extract_run import write_stimuli

    folder = save_tiny_model(tmp_path / "electra", "electra")
    with pytest.raises(BadInputError, match=r"unsupported architecture 'electra'.*llama.*Gemma 3"):
        load_model(str(folder))
    write_stimuli(lake, 3)
    query(lake, "SELECT count(*) FROM stimuli")  # builds the catalog, as any first command does
    before = tree_hashes(lake.root)
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), "extract", "--model", str(folder), "--dataset", "toy"])
    assert result.exit_code == 2, result.output
    assert "unsupported architecture 'electra'" in result.output and "config.json" in result.output
    assert tree_hashes(lake.root) == before


@pytest.mark.parametrize("kind", ["llama", "gpt2", "phi3"])
def test_causal_folder_loads_with_its_lm_head(tmp_path, kind):
    folder = save_tiny_model(tmp_path / kind, kind)
    loaded = load_model(str(folder))
    assert loaded.causal and not loaded.has_mlm_head
    assert loaded.model.get_output_embeddings() is not None
    assert (loaded.n_layers, loaded.d_ff) == (2, 24)
    assert len(loaded.tokenizer_sha256) == 64


def test_chat_template_wraps_each_prompt_and_the_text_span_follows_it():
    loaded = loaded_tiny("llama")
    loaded.tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
                                      "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    prompts, spans = build_prompts(loaded, ["so happy"], "Text: {text}\nEmotion:", "mean", chat=True)
    assert prompts == ["<|user|> Text: so happy\nEmotion: <|assistant|>"]
    assert prompts[0][spans[0][0]:spans[0][1]] == "so happy"
    encoded = encode(loaded, prompts, "mean", ["s"], spans, chat=True)
    chosen = [t for t, keep in zip(loaded.tokenizer.convert_ids_to_tokens(encoded.ids[0]), encoded.text_tokens[0])
              if keep]
    assert chosen == ["so", "happy"] and encoded.ids[0][0] != loaded.tokenizer.cls_token_id  # no [CLS] added


def test_chat_without_a_chat_template_is_refused():
    loaded = loaded_tiny("llama")
    with pytest.raises(BadInputError, match="chat template"):
        build_prompts(loaded, ["x"], "{text}", "last", chat=True)
