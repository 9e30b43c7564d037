"""Tiny random-weight models for tests, built from configs (nothing downloaded).

`tiny_config(kind)` gives a config of every family in `extract.models.families` (and of ELECTRA,
which is not listed); `save_tiny_model` saves one to a folder with the bundled MiniLM's BERT
tokenizer files, so they tokenize real text offline.
"""

from __future__ import annotations

from pathlib import Path

import torch

from emolake.extract.models.loading import default_model_path

VOCAB = 30522  # the bundled MiniLM's BERT tokenizer
SMALL = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 24,
         "max_position_embeddings": 64, "vocab_size": VOCAB}
GATED = {**SMALL, "num_key_value_heads": 1, "hidden_act": "silu", "pad_token_id": 0, "bos_token_id": 101,
         "eos_token_id": 102}
# kind -> (config class name, extra settings); one per family in the registry
CAUSAL_KINDS = ("gpt2", "gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "olmo",
                "olmo2")
ENCODER_KINDS = ("bert", "roberta", "xlm-roberta", "distilbert")
ALL_KINDS = ENCODER_KINDS + CAUSAL_KINDS


def tiny_config(kind: str):
    import transformers as T

    if kind == "gpt2":
        return T.GPT2Config(vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=2, n_positions=64, n_inner=24,
                            activation_function="gelu_new", bos_token_id=101, eos_token_id=102)
    if kind == "gpt_neox":
        return T.GPTNeoXConfig(**SMALL, hidden_act="gelu", bos_token_id=101, eos_token_id=102)
    if kind in ("llama", "mistral", "qwen2", "olmo", "olmo2"):
        cls = {"llama": T.LlamaConfig, "mistral": T.MistralConfig, "qwen2": T.Qwen2Config, "olmo": T.OlmoConfig,
               "olmo2": T.Olmo2Config}[kind]
        return cls(**GATED)
    if kind == "qwen3":
        return T.Qwen3Config(**GATED, head_dim=8)
    if kind == "gemma2":
        return T.Gemma2Config(**{**GATED, "hidden_act": None}, hidden_activation="gelu_pytorch_tanh", head_dim=8)
    if kind == "gemma3_text":
        return T.Gemma3TextConfig(**{**GATED, "hidden_act": None}, hidden_activation="gelu_pytorch_tanh", head_dim=8)
    if kind == "phi3":
        return T.Phi3Config(**GATED)
    if kind == "bert":
        return T.BertConfig(**SMALL, hidden_act="gelu", pad_token_id=0)
    if kind in ("roberta", "xlm-roberta"):
        cls = T.RobertaConfig if kind == "roberta" else T.XLMRobertaConfig
        return cls(**{**SMALL, "max_position_embeddings": 66}, hidden_act="gelu", pad_token_id=0, type_vocab_size=2)
    if kind == "distilbert":
        return T.DistilBertConfig(vocab_size=VOCAB, dim=16, n_layers=2, n_heads=2, hidden_dim=24,
                                  max_position_embeddings=64, activation="gelu", pad_token_id=0)
    if kind == "electra":  # a real architecture the registry does not list
        return T.ElectraConfig(vocab_size=VOCAB, embedding_size=16, hidden_size=16, num_hidden_layers=1,
                               num_attention_heads=2, intermediate_size=24)
    raise ValueError(kind)


def tiny_model(kind: str, seed: int = 0, head: bool = True):
    """A tiny random model of `kind` in eval mode, float32: with its LM head for causal kinds."""
    from transformers import AutoModel, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = tiny_config(kind)
    loader = AutoModelForCausalLM if head and kind in CAUSAL_KINDS else AutoModel
    model = loader.from_config(config).eval()
    with torch.no_grad():  # weights of order one (inits of sd 0.02 leave activations near 0 and checks toothless)
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.normal_(0.0, 0.3)
    return model


def tiny_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)


def save_tiny_model(folder: Path, kind: str = "roberta-mlm", seed: int = 0) -> Path:
    """Save a tiny random model of `kind` ('roberta-mlm', 'roberta', or any of ALL_KINDS, 'electra') with a BERT
    tokenizer."""
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaModel

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    if kind in ("roberta-mlm", "roberta"):
        config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=37, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
                               type_vocab_size=2)
        model = (RobertaForMaskedLM if kind == "roberta-mlm" else RobertaModel)(config)
    else:
        model = tiny_model(kind, seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
