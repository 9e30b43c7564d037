"""Emotion inference read-outs on a frozen model: linear probe (default) and LM-head verbalizer.

Both run through one forward loop, `readout_features`, which can stack several copies of each batch
(one per ablation condition) and applies a neuron hook built per batch (`extract/hooks.py`). Batches
of causal LMs are left-padded with position ids counted from the attention mask, so the last
position is every row's last real token and results do not depend on the batch:

- probe: features are the last hidden state pooled over the prompt: the attention-masked mean over
  all tokens ([CLS]/[SEP] included, as sentence-transformers pools MiniLM; the default for
  encoders), the first token (`--pooling cls`, encoders), or the last token (`--pooling last`, the
  default for causal LMs); a scikit-learn LogisticRegression is fitted on the fit split (features
  standardised), its C chosen by accuracy on the select split, and stored with the standardisation
  folded into the weights.
- verbalizer (models with an MLM or LM head): features are the log-probabilities of the FIRST
  sub-token of each label word (multi-token words are scored by their first piece; two words
  sharing a first piece are refused), at the template's single `{mask}` (masked LMs) or as the next
  token after the template (causal LMs; a `{mask}` there cuts the template, as in extraction).
  27-way: argmax over the emotions' words. Binary for emotion e: score = log p(word e) - mean log
  p(all words), threshold fitted on the fit split (scoring the emotion word against the others, not
  yes/no, which a small LM answers 'no' to almost always).

Soft-prompt tuning lives in `extract/inference/soft_prompt.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from emolake.extract.capture import position_ids
from emolake.extract.hooks import HookFn, hooked, model_family
from emolake.extract.models.families import DEFAULT_NEURON
from emolake.extract.prompts import CAUSAL_TEMPLATE, cut_at_mask
from emolake.warehouse.errors import BadInputError

PROBE_CS = (0.01, 0.1, 1.0, 10.0)
DEFAULT_PROBE_TEMPLATE = "{text}"
DEFAULT_VERBALIZER_TEMPLATE = "{text} I feel {mask}."
DEFAULT_CAUSAL_VERBALIZER_TEMPLATE = CAUSAL_TEMPLATE

# batch_rows -> hook for that batch (or None); lets ablation build per-row masks for each batch.
HookFactory = Callable[[int], HookFn | None]


def default_template(readout: str, causal: bool) -> str:
    if readout == "probe":
        return CAUSAL_TEMPLATE if causal else DEFAULT_PROBE_TEMPLATE
    return DEFAULT_CAUSAL_VERBALIZER_TEMPLATE if causal else DEFAULT_VERBALIZER_TEMPLATE


def default_pooling(causal: bool) -> str:
    return "last" if causal else "mean"


def is_causal(model: nn.Module) -> bool:
    return model_family(model).causal


def forward_kwargs(model: nn.Module, batch: dict) -> dict:
    """The batch plus what the family needs: position ids from the mask, no KV cache for causal LMs."""
    family = model_family(model)
    kwargs = dict(batch)
    if family.explicit_position_ids and "position_ids" not in kwargs:
        kwargs["position_ids"] = position_ids(batch["attention_mask"])
    if family.causal:
        kwargs["use_cache"] = False
        kwargs.pop("token_type_ids", None)
    return kwargs


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """[rows]: index of each row's last real token, whichever side the padding is on."""
    index = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.bool() * index).argmax(1)


def fill_template(template: str, text: str, mask_token: str | None) -> str:
    if "{text}" not in template:
        raise BadInputError("template has no {text}", column="template", expected="a string with {text}",
                            found=template)
    filled = template.replace("{text}", text)
    if "{mask}" in template:
        if mask_token is None:
            raise BadInputError("template has {mask} but the tokenizer has no mask token", found=template)
        filled = filled.replace("{mask}", mask_token)
    return filled


def base_encoder(model: nn.Module) -> nn.Module:
    """The encoder without any head (BertModel inside BertForMaskedLM; the model itself otherwise)."""
    return model.base_model


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[rows, pos, hidden], [rows, pos] -> [rows, hidden]: mean over non-padding tokens."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


@dataclass
class ProbeReadout:
    """Pooled last hidden state of the model (no head)."""

    pooling: str = "mean"
    template: str = DEFAULT_PROBE_TEMPLATE

    def features(self, model: nn.Module, batch: dict) -> torch.Tensor:  # -> [rows, hidden]
        hidden = base_encoder(model)(**forward_kwargs(model, batch)).last_hidden_state  # [rows, pos, hidden]
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "last":
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            return hidden[rows, last_positions(batch["attention_mask"])]
        return mean_pool(hidden, batch["attention_mask"])


@dataclass
class VerbalizerReadout:
    """Log-probabilities of the label words' first sub-tokens at the single mask position (masked LM) or
    as the next token after the prompt (causal LM: `mask_token_id` None)."""

    word_token_ids: list[int]
    mask_token_id: int | None
    template: str = DEFAULT_VERBALIZER_TEMPLATE

    def features(self, model: nn.Module, batch: dict) -> torch.Tensor:  # -> [rows, n_words]
        if self.mask_token_id is None:  # left-padded: the last position is every row's last real token
            logits = model(**forward_kwargs(model, batch), logits_to_keep=1).logits[:, -1]  # [rows, vocab]
            return torch.log_softmax(logits.float(), dim=-1)[:, self.word_token_ids]
        logits = model(**forward_kwargs(model, batch)).logits  # [rows, pos, vocab]
        at_mask = logits[mask_positions(batch["input_ids"], self.mask_token_id)]  # [rows, vocab]
        return torch.log_softmax(at_mask.float(), dim=-1)[:, self.word_token_ids]


def mask_positions(input_ids: torch.Tensor, mask_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, position) of the one mask token of every row; any other count is an error."""
    is_mask = input_ids == mask_token_id  # [rows, pos]
    counts = is_mask.sum(1)
    if not bool((counts == 1).all()):
        bad = int(torch.nonzero(counts != 1)[0, 0])
        raise BadInputError("each input needs exactly one mask token", row=bad, expected=1, found=int(counts[bad]))
    return torch.nonzero(is_mask, as_tuple=True)


def label_word_ids(tokenizer, words: list[str]) -> list[int]:
    """First sub-token id of each label word (with the leading space a mid-sentence word has)."""
    ids = []
    for word in words:
        pieces = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        if not pieces:
            raise BadInputError("label word has no tokens", column="label_words", found=word)
        ids.append(pieces[0])
    seen: dict[int, str] = {}
    for word, token in zip(words, ids):
        if token in seen:
            raise BadInputError("two label words share their first sub-token", column="label_words",
                                expected="label words with distinct first sub-tokens", found=f"{seen[token]}, {word}")
        seen[token] = word
    return ids


def verbalizer_readout(model: nn.Module, tokenizer, words: list[str],
                       template: str = DEFAULT_VERBALIZER_TEMPLATE) -> VerbalizerReadout:
    if not hasattr(model, "get_output_embeddings") or model.get_output_embeddings() is None:
        raise BadInputError("the verbalizer read-out needs a model with a masked-LM or causal-LM head",
                            expected="a ...ForMaskedLM or causal LM checkpoint (use --readout probe for encoders "
                                     "like MiniLM)")
    if is_causal(model):
        return VerbalizerReadout(label_word_ids(tokenizer, words), None,
                                 cut_at_mask(template) if "{mask}" in template else template)
    if "{mask}" not in template:
        raise BadInputError("verbalizer template has no {mask}", column="template", found=template)
    return VerbalizerReadout(label_word_ids(tokenizer, words), tokenizer.mask_token_id, template)


def length_order(texts: list[str]) -> np.ndarray:
    """Stimulus order for batching: by length, so that batches carry little padding."""
    return np.argsort([len(t) for t in texts], kind="stable")


def readout_features(
    model: nn.Module,
    tokenizer,
    texts: list[str],
    readout,
    *,
    batch_size: int = 32,
    copies: int = 1,
    hook_factory: HookFactory | None = None,
    device: str = "cpu",
    on_batch: Callable[[int], None] | None = None,
    max_length: int = 256,
    neuron: str = DEFAULT_NEURON,
) -> np.ndarray:
    """Read-out features of every text, `copies` times: [copies, n_texts, n_features] float32.

    Each batch of texts is repeated `copies` times along the batch (copy-major: row = copy * b + i),
    and `hook_factory(rows)` gives the FFN hook for that stacked batch. Texts are length-sorted into
    batches; the output is in the order of `texts`.
    """
    mask_token = getattr(tokenizer, "mask_token", None)
    filled = [fill_template(readout.template, t, mask_token) for t in texts]
    side = "left" if is_causal(model) else "right"
    order = length_order(filled)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            batch = tokenizer([filled[i] for i in index], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt", padding_side=side)
            if copies > 1:
                batch = {k: v.repeat(copies, *([1] * (v.dim() - 1))) for k, v in batch.items()}
            batch = {k: v.to(device) for k, v in batch.items()}
            fn = hook_factory(len(index) * copies) if hook_factory else None
            with (hooked(model, fn, neuron=neuron) if fn is not None else contextlib.nullcontext()):
                features = readout.features(model, batch).float().cpu().numpy()  # [copies * b, F]
            if out is None:
                out = np.empty((copies, len(texts), features.shape[1]), dtype=np.float32)
            out[:, index] = features.reshape(copies, len(index), -1)
            if on_batch:
                on_batch(len(index))
    if out is None:
        raise BadInputError("no texts to read out")
    return out


# --- Linear probes ------------------------------------------------------------------------------

@dataclass
class Probe:
    """A linear read-out on raw features: scores = features @ weights.T + bias."""

    weights: np.ndarray  # [n_outputs, n_features]: 1 output (binary) or one per class
    bias: np.ndarray  # [n_outputs]
    c: float
    select_accuracy: float = float("nan")
    classes: list[int] = field(default_factory=list)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """[..., n_features] -> [..., n_outputs]."""
        return features @ self.weights.T + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        scores = self.scores(features)
        if scores.shape[-1] == 1:
            return (scores[..., 0] > 0).astype(int)
        return np.asarray(self.classes)[scores.argmax(-1)]


def fit_probe(x_fit: np.ndarray, y_fit: np.ndarray, x_select: np.ndarray, y_select: np.ndarray,
              seed: int, cs: tuple[float, ...] = PROBE_CS) -> Probe:
    """Logistic regression on standardised features; C by accuracy on the select split (ties: smaller C)."""
    from sklearn.linear_model import LogisticRegression

    mean, sd = x_fit.mean(0), x_fit.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    if len(np.unique(y_fit)) < 2:
        raise BadInputError("a probe needs both classes in the fit split", found=sorted(np.unique(y_fit).tolist()))
    best: Probe | None = None
    for c in cs:
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        model.fit((x_fit - mean) / sd, y_fit)
        weights = model.coef_ / sd  # fold the standardisation into the weights
        bias = model.intercept_ - (model.coef_ * (mean / sd)).sum(1)
        probe = Probe(weights.astype(np.float64), bias.astype(np.float64), c, classes=model.classes_.tolist())
        probe.select_accuracy = float((probe.predict(x_select) == y_select).mean())
        if best is None or probe.select_accuracy > best.select_accuracy:
            best = probe
    return best


def fit_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Threshold on a 1-D score maximising accuracy of `score > threshold` (midpoints between scores)."""
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
    positives, negatives = np.sort(scores[labels == 1]), np.sort(scores[labels == 0])
    correct = (len(positives) - np.searchsorted(positives, candidates, side="right")  # positives above
               + np.searchsorted(negatives, candidates, side="right"))  # negatives at or below
    return float(candidates[int(np.argmax(correct))])

