"""One hook mechanism over every layer's MLP neurons, for capture and for ablation.

Which module carries a neuron, and whether it is that module's input or output, comes from the
family registry (`extract.models.families`): e.g. the input of `mlp.down_proj` in Llama
(`mlp_post` = act(gate(x)) * up(x)), the output of `intermediate` in BERT. `ffn_hook_points(model,
neuron)` finds these sites; `hooked(model, fn, neuron=...)` registers `fn(layer, act) -> act | None`
on all of them (a forward hook on an output, a forward pre-hook on an input) and removes every hook
on exit, even when the forward pass raises. A returned tensor replaces the activation (that is how
ablation works); returning None leaves it alone (that is how capture works).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from emolake.extract.models.families import DEFAULT_NEURON, Family, check_neuron, family_of

HookFn = Callable[[int, torch.Tensor], "torch.Tensor | None"]


@dataclass(frozen=True)
class HookPoint:
    layer: int
    name: str  # dotted path from the model root, stored in run manifests as the hook point
    module: nn.Module
    side: str = "output"  # 'output' of the module, or its (first) 'input'


def _getattr_path(obj: object, path: str) -> object:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def model_family(model: nn.Module) -> Family:
    return family_of(getattr(getattr(model, "config", None), "model_type", None))


def ffn_hook_points(model: nn.Module, neuron: str = DEFAULT_NEURON) -> list[HookPoint]:
    """The module carrying `neuron` in every layer, in layer order."""
    family = model_family(model)
    site = check_neuron(family, neuron)
    base = model.base_model
    prefix = "" if base is model else f"{model.base_model_prefix}."
    layers = _getattr_path(base, family.layers)
    return [
        HookPoint(i, f"{prefix}{family.layers}.{i}.{site.module}", _getattr_path(layer, site.module), site.side)
        for i, layer in enumerate(layers)
    ]


def down_projections(model: nn.Module) -> list[nn.Module]:
    """Every layer's down projection ([.., d_ff] -> [.., d_model]), in layer order."""
    family = model_family(model)
    return [_getattr_path(layer, family.down) for layer in _getattr_path(model.base_model, family.layers)]


def hook_point_pattern(model: nn.Module, neuron: str = DEFAULT_NEURON) -> str:
    """The hook point as stored in run manifests: 'encoder.layer.{layer}.intermediate',
    'model.layers.{layer}.mlp.down_proj:input'."""
    point = ffn_hook_points(model, neuron)[0]
    name = point.name.replace(".0.", ".{layer}.", 1)
    return name if point.side == "output" else f"{name}:input"


def ffn_width(model: nn.Module) -> int:
    """d_ff, the number of neurons per layer: the input width of the down projection."""
    down = down_projections(model)[0]
    if isinstance(down, nn.Linear):
        return int(down.in_features)
    return int(down.weight.shape[0])  # GPT-2's Conv1D stores its weight as [d_ff, d_model]


@contextlib.contextmanager
def hooked(model: nn.Module, fn: HookFn, layers: list[int] | None = None,
           neuron: str = DEFAULT_NEURON) -> Iterator[list[HookPoint]]:
    """Run `fn(layer, act)` on the neurons `neuron` of each layer (all, or `layers`) inside the block.

    `act` is `[batch, pos, d_ff]`. Hooks are removed on exit, whatever happens inside.
    """
    points = ffn_hook_points(model, neuron)
    if layers is not None:
        points = [p for p in points if p.layer in set(layers)]
    handles = []
    try:
        for point in points:
            if point.side == "output":
                def hook(_module, _inputs, output, _layer=point.layer):
                    return fn(_layer, output)  # output: [batch, pos, d_ff]
                handles.append(point.module.register_forward_hook(hook))
            else:
                def pre_hook(_module, inputs, _layer=point.layer):
                    edited = fn(_layer, inputs[0])  # inputs[0]: [batch, pos, d_ff], e.g. act(gate(x)) * up(x)
                    return None if edited is None else (edited, *inputs[1:])
                handles.append(point.module.register_forward_pre_hook(pre_hook))
        yield points
    finally:
        for handle in handles:
            handle.remove()


def active_hook_count(model: nn.Module) -> int:
    """Hooks currently registered on any neuron site (0 outside `hooked`); for tests."""
    family = model_family(model)
    points = [p for neuron in family.neurons for p in ffn_hook_points(model, neuron)]
    return sum(len(p.module._forward_hooks) + len(p.module._forward_pre_hooks) for p in points)
