"""Turn stimuli into prompts and capture every layer's FFN activation at the read-out position.

Prompts come from `extract.prompts` templates. Batches are right-padded (whatever side the tokenizer is configured for) and built from
length-sorted prompts; the attention mask keeps padding out of every read-out, so results do not
depend on batch size or composition. Capture runs through `extract.hooks.hooked`, the one hook
mechanism, and copies each layer's read-out straight into one buffer allocated up front.

Read-out positions (`extract.prompts.POSITIONS`): `mask` (the mask token; exactly one per prompt), `cls` (the first token,
[CLS] or <s>), `mean` (attention-masked mean over all tokens, special tokens included), `all`
(every non-padding token; one buffer row per token, in prompt order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from extract.hooks import hooked
from extract.models.loading import LoadedModel
from warehouse.errors import BadInputError

def max_length(loaded: LoadedModel) -> int:
    """Longest prompt in tokens that the model's position embeddings allow."""
    config = loaded.model.config
    limit = int(getattr(config, "max_position_embeddings", 512))
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        limit -= int(config.pad_token_id) + 1  # RoBERTa positions start after the padding index
    return min(limit, int(getattr(loaded.tokenizer, "model_max_length", limit) or limit))


def tokenizer_settings(loaded: LoadedModel) -> dict:
    tok = loaded.tokenizer
    return {
        "class": type(tok).__name__, "padding_side": "right", "truncation": True, "max_length": max_length(loaded),
        "add_special_tokens": True, "pad_token": tok.pad_token, "mask_token": tok.mask_token,
        "cls_token": tok.cls_token, "sep_token": tok.sep_token, "vocab_size": len(tok),
    }


@dataclass
class EncodedPrompts:
    ids: list[list[int]]  # token ids per prompt, special tokens included, unpadded
    read_index: list[int]  # mask-token index per prompt (position 'mask'), else 0

    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids])


def encode(loaded: LoadedModel, prompts: Sequence[str], position: str, stimulus_ids: Sequence[str]) -> EncodedPrompts:
    """Tokenize without padding; find the mask token and refuse prompts without exactly one."""
    tok = loaded.tokenizer
    ids = tok(list(prompts), truncation=True, max_length=max_length(loaded), add_special_tokens=True)["input_ids"]
    read_index = [0] * len(ids)
    if position == "mask":
        mask_id = tok.mask_token_id
        for i, row in enumerate(ids):
            hits = [j for j, t in enumerate(row) if t == mask_id]
            if len(hits) != 1:
                raise BadInputError(
                    "the prompt must hold exactly one mask token at position 'mask'"
                    + (" (it may have been cut by truncation)" if not hits else ""),
                    row=i, column="stimulus_id", expected="1 mask token", found=f"{stimulus_ids[i]}: {len(hits)}")
            read_index[i] = hits[0]
    return EncodedPrompts(ids, read_index)


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (stable: ties keep their order)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids and attention mask, both `[batch, pos]`."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        attention[i, :len(row)] = 1
    return input_ids.to(device), attention.to(device)


def capture_batch(
    loaded: LoadedModel,
    input_ids: torch.Tensor,  # [batch, pos]
    attention: torch.Tensor,  # [batch, pos]
    position: str,
    read_index: torch.Tensor,  # [batch] mask-token index (position 'mask')
    out: torch.Tensor,  # [batch, n_layers, d_ff], or [n_tokens, n_layers, d_ff] for 'all'
) -> torch.Tensor:
    """One forward pass of the encoder (no MLM head) with every layer's read-out copied into `out`."""
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    if position == "mean":
        weights = (attention / attention.sum(dim=1, keepdim=True)).to(torch.float32)[:, None, :]  # [batch, 1, pos]
    if position == "all":
        keep = attention.bool()  # [batch, pos]

    def read_out(layer: int, act: torch.Tensor) -> None:  # act: [batch, pos, d_ff]
        if position == "mask":
            out[:, layer].copy_(act[rows, read_index])
        elif position == "cls":
            out[:, layer].copy_(act[:, 0])
        elif position == "mean":
            out[:, layer].copy_(torch.bmm(weights, act)[:, 0])
        else:
            out[:, layer].copy_(act[keep])  # [n_tokens, d_ff], row-major over (prompt, token)
        return None

    with torch.inference_mode(), hooked(loaded.model, read_out):
        loaded.model.base_model(input_ids=input_ids, attention_mask=attention)
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
            on_batch: Callable[[int], None] | None = None) -> Captured:
    """Read-outs for all prompts, through one buffer allocated up front and filled batch by batch.

    `on_batch(n_prompts)` is called after each batch (progress bars).
    """
    lengths = encoded.lengths()
    per_prompt = lengths if position == "all" else np.ones_like(lengths)
    n_rows = int(per_prompt.sum())
    buffer = torch.empty((n_rows, loaded.n_layers, loaded.d_ff), dtype=torch.float32)  # [rows, n_layers, d_ff]
    first_row = np.concatenate([[0], np.cumsum(per_prompt)[:-1]]).astype(np.int64)  # output row of each prompt
    rows = np.empty(n_rows, dtype=np.int64)
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    filled = 0
    for batch in length_sorted_batches(lengths, batch_size):
        input_ids, attention = pad_batch([encoded.ids[i] for i in batch], pad_id, loaded.device)
        index = torch.tensor([encoded.read_index[i] for i in batch], device=loaded.device)
        n = int(per_prompt[batch].sum())
        if loaded.device == "cpu":
            capture_batch(loaded, input_ids, attention, position, index, buffer[filled:filled + n])  # hooks write in place
        else:
            out = torch.empty((n, loaded.n_layers, loaded.d_ff), dtype=torch.float32, device=loaded.device)
            buffer[filled:filled + n] = capture_batch(loaded, input_ids, attention, position, index, out).cpu()
        for i in batch:
            rows[first_row[i]:first_row[i] + per_prompt[i]] = np.arange(filled, filled + per_prompt[i])
            filled += int(per_prompt[i])
        if on_batch:
            on_batch(len(batch))
    tokens = None
    if position == "all":
        tokens = np.concatenate([np.arange(n) for n in lengths]).astype(np.int32) if n_rows else np.empty(0, np.int32)
    return Captured(buffer.numpy(), rows, tokens)
