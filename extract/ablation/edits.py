"""Neuron ablation through the FFN hooks of `extract/hooks.py`, many conditions per forward pass.

A condition is a set of neurons (global ids, neuron = layer * d_ff + unit) edited at every position:
set to zero (the study), to their mean over a reference set, scaled, or given seeded Gaussian noise
(sd = `noise` x the neuron's sd over the reference set). Neuron sets come from `attribute_neurons`
(attribute, k) or are random controls: R seeded draws per size, uniform over all neurons or matched
per layer to an attribute's set.

Efficiency: conditions are stacked along the batch. Each batch of texts is repeated once per
condition of a group (copy-major rows), and the hook edits the activation viewed as
`[conditions, texts, pos, d_ff]` with a per-condition unit mask `[conditions, n_layers, d_ff]`, so one
forward pass evaluates the whole group; the read-out (probe) is then applied to all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from emolake.extract.choices import MODES
from emolake.extract.hooks import HookFn, hooked
from emolake.extract.inference.readouts import base_encoder, forward_kwargs
from emolake.extract.models.families import DEFAULT_NEURON
from emolake.extract.inference.tasks import derive_seed
from emolake.warehouse.errors import BadInputError



@dataclass(frozen=True)
class Condition:
    condition_id: str
    kind: str  # 'unablated' | 'attribute' | 'random'
    attribute: str | None  # the attribute of the set; for layer-matched controls, the attribute matched
    k: int
    draw: int
    seed: int | None  # the seed that drew a random set (None for attribute sets)
    layer_matched: bool
    neurons: np.ndarray  # [n] int global ids, sorted


def condition_id(kind: str, attribute: str | None, k: int, draw: int) -> str:
    return "unablated" if kind == "unablated" else f"{kind}:{attribute or '-'}:k{k}:d{draw}"


def unablated_condition() -> Condition:
    return Condition("unablated", "unablated", None, 0, 0, None, False, np.zeros(0, dtype=np.int64))


def attribute_conditions(neuron_sets: dict[tuple[str, int], np.ndarray]) -> list[Condition]:
    """One condition per (attribute, k) neuron set."""
    return [Condition(condition_id("attribute", a, k, 0), "attribute", a, int(k), 0, None, False,
                      np.sort(np.asarray(neurons, dtype=np.int64)))
            for (a, k), neurons in sorted(neuron_sets.items())]


def random_conditions(ks: list[int], draws: int, n_layers: int, d_ff: int, seed: int,
                      match: dict[tuple[str, int], np.ndarray] | None = None,
                      sizes: dict[int, int] | None = None) -> list[Condition]:
    """`draws` random sets per k, uniform over all neurons, of `sizes[k]` neurons (default k; a per-layer
    top-k set holds k x n_layers); with `match` ({(attribute, k): neurons}), one set of `draws` per
    attribute instead, with as many neurons in each layer as the attribute's set."""
    out = []
    if match is None:
        for k in ks:
            size = (sizes or {}).get(k, k)
            if size > n_layers * d_ff:
                raise BadInputError("k exceeds the number of neurons", column="k", expected=f"<= {n_layers * d_ff}",
                                    found=size)
            for draw in range(draws):
                s = derive_seed(seed, "random", "-", k, draw)
                neurons = np.sort(np.random.default_rng(s).choice(n_layers * d_ff, size=size, replace=False))
                out.append(Condition(condition_id("random", None, k, draw), "random", None, int(k), draw, s, False,
                                     neurons))
        return out
    for (attribute, k), target in sorted(match.items()):
        per_layer = np.bincount(np.asarray(target) // d_ff, minlength=n_layers)  # [n_layers]
        for draw in range(draws):
            s = derive_seed(seed, "random", attribute, k, draw)
            rng = np.random.default_rng(s)
            neurons = np.sort(np.concatenate([
                layer * d_ff + rng.choice(d_ff, size=int(n), replace=False) for layer, n in enumerate(per_layer) if n
            ]).astype(np.int64))
            out.append(Condition(condition_id("random", attribute, k, draw), "random", attribute, int(k), draw, s,
                                 True, neurons))
    return out


def condition_masks(conditions: list[Condition], n_layers: int, d_ff: int) -> torch.Tensor:
    """[n_conditions, n_layers, d_ff] bool: True where a condition ablates the unit."""
    masks = torch.zeros(len(conditions), n_layers * d_ff, dtype=torch.bool)
    for i, condition in enumerate(conditions):
        if len(condition.neurons):
            if condition.neurons.min() < 0 or condition.neurons.max() >= n_layers * d_ff:
                raise BadInputError("neuron id outside the model", column="neuron",
                                    expected=f"0 <= neuron < {n_layers * d_ff} ({n_layers} layers x {d_ff})",
                                    found=int(condition.neurons.max()))
            masks[i, torch.as_tensor(condition.neurons)] = True
    return masks.view(len(conditions), n_layers, d_ff)


@dataclass
class AblationEdit:
    """How ablated units are changed; reference statistics are [n_layers, d_ff] (mean and noise modes)."""

    mode: str = "zero"
    value: float = 0.0  # scale: the factor; noise: sd in units of the reference sd
    reference_mean: torch.Tensor | None = None
    reference_sd: torch.Tensor | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadInputError("unknown ablation mode", column="mode", expected=f"one of {MODES}", found=self.mode)
        if self.mode == "mean" and self.reference_mean is None:
            raise BadInputError("mode 'mean' needs reference means (reference_statistics)")
        if self.mode == "noise" and self.reference_sd is None:
            raise BadInputError("mode 'noise' needs reference sds (reference_statistics)")


def ablation_hook(masks: torch.Tensor, edit: AblationEdit, rows: int,
                  generator: torch.Generator | None = None) -> HookFn:
    """Hook for a batch of `rows` = n_conditions x b rows (copy-major), editing each condition's units.

    masks: [n_conditions, n_layers, d_ff] bool.
    """
    copies = masks.shape[0]
    if rows % copies:
        raise ValueError(f"{rows} rows do not split into {copies} conditions")
    active = masks.flatten(1).any(1).tolist()
    layers_used = masks.any(2).any(0)  # [n_layers]

    def fn(layer: int, act: torch.Tensor) -> torch.Tensor | None:
        if not bool(layers_used[layer]) or not any(active):
            return None
        grouped = act.view(copies, rows // copies, act.shape[1], act.shape[2])  # [conditions, b, pos, d_ff]
        m = masks[:, layer].to(act.device, act.dtype)[:, None, None, :]  # [conditions, 1, 1, d_ff]
        if edit.mode == "zero":
            out = grouped * (1 - m)
        elif edit.mode == "scale":
            out = grouped * (1 - m + m * edit.value)
        elif edit.mode == "mean":
            out = grouped * (1 - m) + m * edit.reference_mean[layer].to(act.device, act.dtype)
        else:  # noise
            noise = torch.randn(grouped.shape, generator=generator, dtype=act.dtype, device="cpu").to(act.device)
            out = grouped + m * edit.value * edit.reference_sd[layer].to(act.device, act.dtype) * noise
        return out.view_as(act)

    return fn


def reference_statistics(model, tokenizer, texts: list[str], n_layers: int, d_ff: int, batch_size: int = 32,
                         device: str = "cpu", neuron: str = DEFAULT_NEURON) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and sd of every neuron over all non-padding token positions of `texts`: 2 x [n_layers, d_ff]."""
    total = torch.zeros(n_layers, d_ff, dtype=torch.float64)
    squares = torch.zeros(n_layers, d_ff, dtype=torch.float64)
    count = 0
    state: dict = {}

    def capture(layer: int, act: torch.Tensor) -> None:  # act: [b, pos, d_ff]
        keep = state["mask"].to(act.dtype)[:, :, None]  # [b, pos, 1]
        values = (act * keep).double()
        total[layer] += values.sum((0, 1)).cpu()
        squares[layer] += (values * act.double()).sum((0, 1)).cpu()

    with torch.inference_mode(), hooked(model, capture, neuron=neuron):
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=256,
                              return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            state["mask"] = batch["attention_mask"]
            base_encoder(model)(**forward_kwargs(model, batch))
            count += int(batch["attention_mask"].sum())
    mean = total / count
    sd = (squares / count - mean ** 2).clamp(min=0).sqrt()
    return mean.float(), sd.float()


def stacked_hook_factory(masks: torch.Tensor, edit: AblationEdit, seed: int):
    """hook_factory for `readout_features(copies=n_conditions)`: one ablation hook per stacked batch."""
    generator = torch.Generator().manual_seed(seed) if edit.mode == "noise" else None
    return lambda rows: ablation_hook(masks, edit, rows, generator)
