"""The model families emolake can hook: one small spec per family, keyed by the config's `model_type`.

A spec says where the layers are, where each layer's MLP is, and which module (and whether its
input or its output) carries each neuron definition:

- `mlp_post` (default): the vector that enters the down projection. In a gated MLP (Llama,
  Mistral, Qwen2/3, Gemma 2/3, Phi-3, OLMo/OLMo-2) that is act(gate(x)) * up(x), TransformerLens'
  `hook_post`; in an ungated MLP (BERT family, DistilBERT, GPT-2, GPT-NeoX) it is the activation
  function's output act(W_in x + b_in).
- `mlp_gate` (gated MLPs only): act(gate(x)), the activation function's output before the product.

Either way the layer's MLP output is `down(h)`, so zeroing neuron i changes it by exactly
W_down[:, i] * h_i (the ablation test checks this for every family). A new family is one entry in
`FAMILIES`; an architecture not listed is refused with the list of supported ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from emolake.warehouse.errors import BadInputError

NEURONS = ("mlp_post", "mlp_gate")
DEFAULT_NEURON = "mlp_post"


@dataclass(frozen=True)
class HookSite:
    """Where a neuron definition is read: `module` (path from a layer) and its 'input' or 'output'."""

    module: str
    side: str  # 'output': a forward hook on the module; 'input': a forward pre-hook (its first argument)


@dataclass(frozen=True)
class Family:
    name: str  # what users call it, for messages and the README
    model_types: tuple[str, ...]  # config.model_type values of this family
    layers: str  # path from the base model to the list of layers
    down: str  # path from a layer to the down projection (maps [.., d_ff] -> [.., d_model])
    neurons: dict[str, HookSite]  # neuron definition -> where it is read
    causal: bool  # decoder-only LM (left-to-right attention)
    explicit_position_ids: bool = True  # False: the model derives positions from input_ids (RoBERTa's padding offset)

    @property
    def gated(self) -> bool:
        return "mlp_gate" in self.neurons


def _gated(name: str, model_types: tuple[str, ...], act: str = "mlp.act_fn") -> Family:
    return Family(name, model_types, "layers", "mlp.down_proj",
                  {"mlp_post": HookSite("mlp.down_proj", "input"), "mlp_gate": HookSite(act, "output")}, causal=True)


FAMILIES: tuple[Family, ...] = (
    Family("BERT / MiniLM", ("bert",), "encoder.layer", "output.dense",
           {"mlp_post": HookSite("intermediate", "output")}, causal=False),
    Family("RoBERTa / XLM-R / CamemBERT", ("roberta", "xlm-roberta", "camembert"), "encoder.layer", "output.dense",
           {"mlp_post": HookSite("intermediate", "output")}, causal=False, explicit_position_ids=False),
    Family("DistilBERT", ("distilbert",), "transformer.layer", "ffn.lin2",
           {"mlp_post": HookSite("ffn.activation", "output")}, causal=False),
    Family("GPT-2", ("gpt2",), "h", "mlp.c_proj", {"mlp_post": HookSite("mlp.act", "output")}, causal=True),
    Family("GPT-NeoX / Pythia", ("gpt_neox",), "layers", "mlp.dense_4h_to_h",
           {"mlp_post": HookSite("mlp.act", "output")}, causal=True),
    _gated("Llama 1-3", ("llama",)),
    _gated("Mistral", ("mistral",)),
    _gated("Qwen2 / Qwen2.5", ("qwen2",)),
    _gated("Qwen3", ("qwen3",)),
    _gated("Gemma 2", ("gemma2",)),
    _gated("Gemma 3 (text)", ("gemma3_text",)),
    _gated("Phi-3", ("phi3",), act="mlp.activation_fn"),
    _gated("OLMo", ("olmo",)),
    _gated("OLMo-2", ("olmo2",)),
)
_BY_TYPE = {t: family for family in FAMILIES for t in family.model_types}
SUPPORTED_MODEL_TYPES = tuple(_BY_TYPE)


def family_of(model_type: str | None, source: str | None = None) -> Family:
    """The family of a config's `model_type`; a clear BadInputError naming the supported ones otherwise."""
    family = _BY_TYPE.get(model_type or "")
    if family is None:
        raise BadInputError(
            f"unsupported architecture {model_type!r}", file=source,
            expected="one of the model types " + ", ".join(SUPPORTED_MODEL_TYPES)
                     + " (" + "; ".join(f.name for f in FAMILIES) + ")",
            found=model_type)
    return family


def check_neuron(family: Family, neuron: str) -> HookSite:
    """The hook site of `neuron` in `family`; mlp_gate on an ungated MLP is refused."""
    if neuron not in NEURONS:
        raise BadInputError("unknown neuron definition", column="neuron", expected=" | ".join(NEURONS), found=neuron)
    if neuron not in family.neurons:
        raise BadInputError(f"--neuron {neuron} needs a gated MLP; {family.name} has an ungated one",
                            column="neuron", expected=" | ".join(family.neurons), found=neuron)
    return family.neurons[neuron]
