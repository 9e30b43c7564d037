"""Tiny random-weight models saved to a folder, for tests (built from a config; nothing downloaded).

They reuse the bundled MiniLM's BERT tokenizer files, so they tokenize real text offline.
"""

from __future__ import annotations

from pathlib import Path

import torch

from extract.models.loading import default_model_path


def save_tiny_model(folder: Path, kind: str = "roberta-mlm", seed: int = 0) -> Path:
    """Save a tiny random model of `kind` ('roberta-mlm', 'roberta', 'gpt2') with a BERT tokenizer."""
    from transformers import (AutoTokenizer, GPT2Config, GPT2Model, RobertaConfig, RobertaForMaskedLM,
                              RobertaModel)

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)
    if kind.startswith("roberta"):
        config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=37, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
                               type_vocab_size=2)
        model = (RobertaForMaskedLM if kind == "roberta-mlm" else RobertaModel)(config)
    elif kind == "gpt2":
        model = GPT2Model(GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2, n_positions=64))
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
