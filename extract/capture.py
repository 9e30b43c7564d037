"""Turn stimuli into prompts and capture every layer's neurons at the read-out position.

Prompts come from `extract.prompts` templates, optionally wrapped in the tokenizer's own chat
template (`chat=True`: one user turn, then the assistant's generation prompt). Batches are built
from length-sorted prompts and padded on `padding_side` (right by default; left works the same).
Padding never reaches a read-out: the attention mask keeps it out of attention, and position ids
are counted from the mask (the first real token is position 0 on either side), so results do not
depend on batch size, composition or padding side (the known bug class: left-padded batches
without position ids shift every shorter prompt). RoBERTa-style models count positions from the
input ids themselves. Capture runs through `extract.hooks.hooked`, the one hook mechanism, and
copies each layer's read-out straight into one float32 buffer allocated up front, whatever the
compute dtype.

Read-out positions (`extract.prompts.POSITIONS`): `last` (the last token of the filled template;
causal LMs), `mask` (the mask token, exactly one per prompt; for a causal LM the last token before
where `{mask}` stands), `cls` (the first token, [CLS] or <s>; encoders), `mean` (encoders: the
attention-masked mean over all tokens, special tokens included, as sentence-transformers pools;
causal LMs: the mean over the stimulus text's own tokens), `all` (every non-padding token; one
buffer row per token, in prompt order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from emolake.extract.hooks import hooked
from emolake.extract.models.loading import LoadedModel
from emolake.extract.prompts import cut_at_mask, fill_template
from emolake.warehouse.errors import BadInputError

PADDING_SIDES = ("right", "left")


def max_length(loaded: LoadedModel) -> int:
    """Longest prompt in tokens that the model's position embeddings allow."""
    config = loaded.model.config
    limit = int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 512)
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        limit -= int(config.pad_token_id) + 1  # RoBERTa positions start after the padding index
    return min(limit, int(getattr(loaded.tokenizer, "model_max_length", limit) or limit))


def tokenizer_settings(loaded: LoadedModel, padding_side: str = "right", chat: bool = False) -> dict:
    tok = loaded.tokenizer
    return {
        "class": type(tok).__name__, "padding_side": padding_side, "truncation": True, "max_length": max_length(loaded),
        "add_special_tokens": not chat, "chat_template": chat, "pad_token": tok.pad_token,
        "mask_token": tok.mask_token, "cls_token": tok.cls_token, "sep_token": tok.sep_token,
        "bos_token": tok.bos_token, "eos_token": tok.eos_token, "vocab_size": len(tok),
        "files_sha256": loaded.tokenizer_sha256,
    }


@dataclass
class EncodedPrompts:
    ids: list[list[int]]  # token ids per prompt, special tokens included, unpadded
    read_index: list[int]  # read-out token per prompt (positions 'mask', 'last'), else 0 (the first token)
    text_tokens: list[list[bool]] | None = None  # per token: part of the stimulus text (causal 'mean')

    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids])


def build_prompts(loaded: LoadedModel, texts: Sequence[str], template: str, position: str,
                  chat: bool = False) -> tuple[list[str], list[tuple[int, int]]]:
    """(prompts, character span of the stimulus text in each prompt)."""
    if loaded.causal and position == "mask":
        template = cut_at_mask(template)
    mask_token = None if loaded.causal else loaded.tokenizer.mask_token
    prompts = fill_template(template, texts, mask_token)
    head = template[:template.index("{text}")].replace("{mask}", mask_token or "")
    head = head.replace("{{", "{").replace("}}", "}")
    spans = [(len(head), len(head) + len(text)) for text in texts]
    if chat:
        tok = loaded.tokenizer
        if not getattr(tok, "chat_template", None):
            raise BadInputError("--chat needs a tokenizer with a chat template", column="chat",
                                expected="a chat model's tokenizer", found=type(tok).__name__)
        wrapped = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                   for p in prompts]
        spans = [(w.index(p) + a, w.index(p) + b) for w, p, (a, b) in zip(wrapped, prompts, spans)]
        prompts = wrapped
    return prompts, spans


def encode(loaded: LoadedModel, prompts: Sequence[str], position: str, stimulus_ids: Sequence[str],
           spans: Sequence[tuple[int, int]] | None = None, chat: bool = False) -> EncodedPrompts:
    """Tokenize without padding; find each prompt's read-out token (refusing prompts without one)."""
    tok = loaded.tokenizer
    want_offsets = loaded.causal and position == "mean"
    if want_offsets and not getattr(tok, "is_fast", False):
        raise BadInputError("--position mean on a causal LM needs a fast tokenizer (token offsets)",
                            column="position", found=type(tok).__name__)
    encoded = tok(list(prompts), truncation=True, max_length=max_length(loaded), add_special_tokens=not chat,
                  return_offsets_mapping=want_offsets)
    ids = encoded["input_ids"]
    read_index = [0] * len(ids)
    text_tokens = None
    if position in ("last", "mask") and loaded.causal:
        for i, row in enumerate(ids):
            if not row:
                raise BadInputError("empty prompt", row=i, column="stimulus_id", found=stimulus_ids[i])
            read_index[i] = len(row) - 1
    elif position == "mask":
        mask_id = tok.mask_token_id
        for i, row in enumerate(ids):
            hits = [j for j, t in enumerate(row) if t == mask_id]
            if len(hits) != 1:
                raise BadInputError(
                    "the prompt must hold exactly one mask token at position 'mask'"
                    + (" (it may have been cut by truncation)" if not hits else ""),
                    row=i, column="stimulus_id", expected="1 mask token", found=f"{stimulus_ids[i]}: {len(hits)}")
            read_index[i] = hits[0]
    if want_offsets:
        text_tokens = []
        for i, (offsets, (start, end)) in enumerate(zip(encoded["offset_mapping"], spans)):
            inside = [a < end and b > start and b > a for a, b in offsets]
            if not any(inside):
                raise BadInputError("no token of the stimulus text is left in the prompt", row=i,
                                    column="stimulus_id", found=stimulus_ids[i])
            text_tokens.append(inside)
    return EncodedPrompts(ids, read_index, text_tokens)


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (stable: ties keep their order)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, device: str,
              padding_side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Padded input ids and attention mask, both `[batch, pos]`."""
    if padding_side not in PADDING_SIDES:
        raise BadInputError("unknown padding side", column="padding_side", expected=" | ".join(PADDING_SIDES),
                            found=padding_side)
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        start = 0 if padding_side == "right" else width - len(row)
        input_ids[i, start:start + len(row)] = torch.tensor(row, dtype=torch.long)
        attention[i, start:start + len(row)] = 1
    return input_ids.to(device), attention.to(device)


def position_ids(attention: torch.Tensor) -> torch.Tensor:
    """[batch, pos]: 0 at each prompt's first real token, counting real tokens (padding gets 0)."""
    return (attention.cumsum(1) - 1).clamp(min=0)


def forward_base(loaded: LoadedModel, input_ids: torch.Tensor | None, attention: torch.Tensor,
                 inputs_embeds: torch.Tensor | None = None):
    """The model without its head, with the attention mask and (where the family needs them) position ids.

    `inputs_embeds` ([batch, pos, hidden]) replaces `input_ids`: a trained soft prompt with no text."""
    kwargs = {"input_ids": input_ids, "attention_mask": attention} if inputs_embeds is None else \
        {"inputs_embeds": inputs_embeds, "attention_mask": attention}
    if loaded.family.explicit_position_ids:
        kwargs["position_ids"] = position_ids(attention)
    if loaded.causal:
        kwargs["use_cache"] = False
    return loaded.model.base_model(**kwargs)


def capture_batch(
    loaded: LoadedModel,
    input_ids: torch.Tensor | None,  # [batch, pos]; None with inputs_embeds
    attention: torch.Tensor,  # [batch, pos]
    position: str,
    read_index: torch.Tensor,  # [batch] read-out token in padded coordinates (positions 'mask', 'last', 'cls')
    out: torch.Tensor,  # [batch, n_layers, d_ff], or [n_tokens, n_layers, d_ff] for 'all'
    mean_mask: torch.Tensor | None = None,  # [batch, pos] tokens averaged by 'mean' (default: attention)
    inputs_embeds: torch.Tensor | None = None,  # [batch, pos, hidden] instead of input_ids (soft prompts)
) -> torch.Tensor:
    """One forward pass of the model (no head) with every layer's read-out copied into `out` (as float32)."""
    rows = torch.arange(attention.shape[0], device=attention.device)
    if position == "mean":
        keep = (attention if mean_mask is None else mean_mask).to(torch.float32)  # [batch, pos]
        weights = (keep / keep.sum(dim=1, keepdim=True))[:, None, :]  # [batch, 1, pos]
    if position == "all":
        keep_all = attention.bool()  # [batch, pos]

    def read_out(layer: int, act: torch.Tensor) -> None:  # act: [batch, pos, d_ff]
        if position in ("mask", "last", "cls"):
            out[:, layer].copy_(act[rows, read_index])  # [batch, d_ff]
        elif position == "mean":
            out[:, layer].copy_(torch.bmm(weights.to(act.device), act.float())[:, 0])  # [batch, d_ff]
        else:
            out[:, layer].copy_(act[keep_all.to(act.device)])  # [n_tokens, d_ff], row-major over (prompt, token)
        return None

    with torch.inference_mode(), hooked(loaded.model, read_out, neuron=loaded.neuron):
        forward_base(loaded, input_ids, attention, inputs_embeds)
    return out


@dataclass
class Captured:
    buffer: np.ndarray  # [n_rows, n_layers, d_ff] float32, rows in batch (length-sorted) order
    rows: np.ndarray  # [n_rows] buffer row of each output row (prompt order; for 'all', then token order)
    tokens: np.ndarray | None  # [n_rows] token index of each output row for 'all', else None

    def layer(self, layer: int) -> np.ndarray:
        """`[n_rows, d_ff]` contiguous activations of one layer in prompt order (one gather copy)."""
        return self.buffer[self.rows, layer]


def capture(loaded: LoadedModel, encoded: EncodedPrompts, position: str, batch_size: int,
            on_batch: Callable[[int], None] | None = None, padding_side: str = "right") -> Captured:
    """Read-outs for all prompts, through one buffer allocated up front and filled batch by batch.

    `on_batch(n_prompts)` is called after each batch (progress bars).
    """
    lengths = encoded.lengths()
    per_prompt = lengths if position == "all" else np.ones_like(lengths)
    n_rows = int(per_prompt.sum())
    buffer = torch.empty((n_rows, loaded.n_layers, loaded.d_ff), dtype=torch.float32)  # [rows, n_layers, d_ff]
    first_row = np.concatenate([[0], np.cumsum(per_prompt)[:-1]]).astype(np.int64)  # output row of each prompt
    rows = np.empty(n_rows, dtype=np.int64)
    tok = loaded.tokenizer
    pad_id = next((t for t in (tok.pad_token_id, tok.eos_token_id) if t is not None), 0)  # masked out either way
    filled = 0
    for batch in length_sorted_batches(lengths, batch_size):
        input_ids, attention = pad_batch([encoded.ids[i] for i in batch], pad_id, loaded.device, padding_side)
        width = input_ids.shape[1]
        shift = [0 if padding_side == "right" else width - len(encoded.ids[i]) for i in batch]
        index = torch.tensor([encoded.read_index[i] + s for i, s in zip(batch, shift)], device=loaded.device)
        mean_mask = None
        if encoded.text_tokens is not None:
            mean_mask = torch.zeros_like(attention)
            for j, (i, s) in enumerate(zip(batch, shift)):
                mean_mask[j, s:s + len(encoded.ids[i])] = torch.tensor(encoded.text_tokens[i], dtype=torch.long)
        n = int(per_prompt[batch].sum())
        if loaded.device == "cpu":
            capture_batch(loaded, input_ids, attention, position, index, buffer[filled:filled + n], mean_mask)
        else:  # hooks write on the device; one copy to the host per batch
            out = torch.empty((n, loaded.n_layers, loaded.d_ff), dtype=torch.float32, device=loaded.device)
            buffer[filled:filled + n] = capture_batch(loaded, input_ids, attention, position, index, out,
                                                      mean_mask).cpu()
        for i in batch:
            rows[first_row[i]:first_row[i] + per_prompt[i]] = np.arange(filled, filled + per_prompt[i])
            filled += int(per_prompt[i])
        if on_batch:
            on_batch(len(batch))
    tokens = None
    if position == "all":
        tokens = np.concatenate([np.arange(n) for n in lengths]).astype(np.int32) if n_rows else np.empty(0, np.int32)
    return Captured(buffer.numpy(), rows, tokens)
