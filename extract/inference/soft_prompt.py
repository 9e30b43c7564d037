"""Soft-prompt tuning as in the study: trainable prompt vectors, frozen LM, verbalizer on the label words.

Masked LM input: `<s> P_1 ... P_N <mask> text </s>`, the words scored at `<mask>`. Causal LM input:
`P_1 ... P_N text` (left-padded, position ids from the attention mask), the words scored as the
next token after the text's last token. P_i are N trainable vectors in the word-embedding
space (initialised from the embeddings of seeded random vocabulary tokens). The model's weights are frozen (requires_grad off, eval mode: no dropout); only the prompt is
trained, with AdamW on the cross-entropy of the label words' logits at the mask (first sub-token of
each word; binary default words 'no'/'yes'). After every epoch the prompt is scored on the select
split and the best one (ties: the earlier) is kept. Runs on `device` ('cuda' when available).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from emolake.extract.capture import position_ids
from emolake.extract.inference.prompt_store import StoredPrompt
from emolake.extract.inference.readouts import is_causal, label_word_ids
from emolake.extract.inference.tasks import MULTICLASS, Task, score_task, task_texts
from emolake.warehouse.errors import BadInputError

BINARY_WORDS = ["no", "yes"]
DEFAULTS = {"n_prompt": 20, "epochs": 10, "lr": 3e-2, "batch_size": 16}


@dataclass
class SoftPromptResult:
    prompt: torch.Tensor  # [n_prompt, hidden]: the best prompt (on the select split)
    best_epoch: int
    select_accuracy: float
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch


def _embed(model: nn.Module, tokenizer, texts: list[str], prompt: torch.Tensor, device: str):
    """(inputs_embeds [b, N + T, H], attention_mask [b, N + T], mask position) for `<s> P <mask> text </s>`."""
    batch = tokenizer([f"{tokenizer.mask_token} {t}" for t in texts], padding=True, truncation=True,
                      max_length=256, return_tensors="pt")
    ids, attention = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    words = model.get_input_embeddings()(ids)  # [b, T, H]
    b, n = ids.shape[0], prompt.shape[0]
    embeds = torch.cat([words[:, :1], prompt.unsqueeze(0).expand(b, -1, -1), words[:, 1:]], dim=1)
    mask = torch.cat([attention[:, :1], torch.ones(b, n, dtype=attention.dtype, device=device), attention[:, 1:]], 1)
    if not bool((ids[:, 1] == tokenizer.mask_token_id).all()):
        raise BadInputError("the tokenizer did not keep the leading mask token in place")
    return embeds, mask, 1 + n


def _embed_causal(model: nn.Module, tokenizer, texts: list[str], prompt: torch.Tensor, device: str):
    """(inputs_embeds [b, N + T, H], attention_mask [b, N + T]) for `P text`, the text left-padded."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt",
                      padding_side="left")
    ids, attention = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    words = model.get_input_embeddings()(ids)  # [b, T, H]
    b, n = ids.shape[0], prompt.shape[0]
    embeds = torch.cat([prompt.unsqueeze(0).expand(b, -1, -1), words], dim=1)
    mask = torch.cat([torch.ones(b, n, dtype=attention.dtype, device=device), attention], 1)
    return embeds, mask


def prompt_only_inputs(model: nn.Module, tokenizer, prompts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                    torch.Tensor]:
    """(inputs_embeds [b, L, H], attention_mask [b, L], read-out index [b]) of trained prompts with no text.

    `prompts`: [b, N, H]. Masked LM: `<s> P_1..P_N <mask> </s>` (the training input with an empty text),
    read at the mask. Causal LM: `P_1..P_N`, read at the last prompt position: causal attention makes
    that position's activations the same as in every training input, whatever text followed.
    """
    b, n = prompts.shape[:2]
    device = prompts.device
    if is_causal(model):
        return prompts, torch.ones(b, n, dtype=torch.long, device=device), torch.full((b,), n - 1, device=device)
    ids = tokenizer([tokenizer.mask_token], return_tensors="pt")["input_ids"].to(device)  # [1, T]: <s> <mask> </s>
    if ids.shape[1] < 2 or int(ids[0, 1]) != tokenizer.mask_token_id:
        raise BadInputError("the tokenizer did not keep the leading mask token in place")
    words = model.get_input_embeddings()(ids).expand(b, -1, -1)  # [b, T, H]
    embeds = torch.cat([words[:, :1], prompts.to(words.dtype), words[:, 1:]], dim=1)
    return embeds, torch.ones(embeds.shape[:2], dtype=torch.long, device=device), torch.full((b,), 1 + n,
                                                                                             device=device)


def word_logits(model: nn.Module, tokenizer, texts: list[str], prompt: torch.Tensor, word_ids: list[int],
                device: str) -> torch.Tensor:
    """[b, n_words]: the label words' logits at the mask (masked LM) or as the next token (causal LM)."""
    if is_causal(model):
        embeds, mask = _embed_causal(model, tokenizer, texts, prompt, device)
        out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids(mask), use_cache=False,
                    logits_to_keep=1)
        return out.logits[:, -1, word_ids]  # [b, n_words]: the last position is every row's last real token
    embeds, mask, at = _embed(model, tokenizer, texts, prompt, device)
    logits = model(inputs_embeds=embeds, attention_mask=mask).logits  # [b, pos, vocab]
    return logits[:, at, word_ids]


def predict(model, tokenizer, texts: list[str], prompt: torch.Tensor, word_ids: list[int], device: str,
            batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(predicted word index [n], logits [n, n_words])."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            out.append(word_logits(model, tokenizer, texts[start:start + batch_size], prompt, word_ids, device).cpu())
    logits = torch.cat(out).float().numpy()
    return logits.argmax(1), logits


def train_soft_prompt(model: nn.Module, tokenizer, fit: tuple[list[str], np.ndarray],
                      select: tuple[list[str], np.ndarray], words: list[str], *, seed: int = 0,
                      device: str = "cpu", n_prompt: int = 20, epochs: int = 10, lr: float = 3e-2,
                      batch_size: int = 16, progress=None) -> SoftPromptResult:
    """Train N prompt vectors on `fit` (texts, label indices into `words`); keep the best on `select`."""
    if getattr(model, "get_output_embeddings", lambda: None)() is None:
        raise BadInputError("soft-prompt tuning needs a model with a masked-LM or causal-LM head",
                            expected="a ...ForMaskedLM checkpoint (MiniLM has none: use --readout probe)")
    word_ids = label_word_ids(tokenizer, words)
    model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    vocabulary = model.get_input_embeddings().weight
    init = torch.randint(0, vocabulary.shape[0], (n_prompt,), generator=generator)
    prompt = nn.Parameter(vocabulary[init.to(vocabulary.device)].detach().clone())
    optimizer = torch.optim.AdamW([prompt], lr=lr, weight_decay=0.0)
    texts, labels = fit
    target = torch.as_tensor(labels, dtype=torch.long)
    best = SoftPromptResult(prompt.detach().clone(), -1, -1.0)
    for epoch in range(epochs):
        order = torch.randperm(len(texts), generator=generator).tolist()
        total, batches = 0.0, 0
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            logits = word_logits(model, tokenizer, [texts[i] for i in index], prompt, word_ids, device)
            loss = nn.functional.cross_entropy(logits.float(), target[index].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + float(loss.detach()), batches + 1
            if progress:
                progress(len(index))
        best.losses.append(total / max(batches, 1))
        predicted, _ = predict(model, tokenizer, select[0], prompt.detach(), word_ids, device)
        accuracy = float((predicted == np.asarray(select[1])).mean())
        if accuracy > best.select_accuracy:
            best.prompt, best.best_epoch, best.select_accuracy = prompt.detach().clone(), epoch, accuracy
    return best


def task_sha256(stimulus_ids: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of a task's stimulus ids and labels: a stored prompt is reused only for the same task."""
    text = "".join(f"{s}\t{int(y)}\n" for s, y in zip(stimulus_ids.astype(str), labels))
    return hashlib.sha256(text.encode()).hexdigest()


def prompt_settings(config, fit: Task, select: Task, words: list[str], settings: dict) -> dict:
    """What a stored prompt of (emotion, seed) was trained with; a prompt is reused only if they are equal."""
    return {**settings, "task": config.task, "dataset": config.dataset, "fit_split": config.fit_split,
            "select_split": config.select_split, "words": list(words), "fit_sha256": task_sha256(fit.stimulus_ids, fit.labels),
            "select_sha256": task_sha256(select.stimulus_ids, select.labels)}


def fit_soft_prompt_tasks(loaded, stimuli: pd.DataFrame, config, tasks: dict[int, dict[str, list[Task]]],
                          progress=None, *, stored: dict[tuple[str, int], StoredPrompt] | None = None,
                          on_prompt=None, start=None) -> tuple[list[StoredPrompt], pd.DataFrame, pd.DataFrame]:
    """One prompt per fit-split task (per emotion for the binary task) and seed, scored on every split.

    `tasks`: seed -> split -> tasks. A prompt of `stored` ((emotion, seed) -> prompt) trained with the same
    settings, task and model is scored again instead of trained; every other one is trained, and
    `on_prompt(prompt)` is called as soon as it is (the caller commits it, so an interrupted run resumes).
    `start(label, total)` is called before each training, with the texts it will process.
    Returns (prompts, accuracy rows, prediction rows): the rows as `score_task` makes them, plus `seed`.
    """
    settings = {**DEFAULTS, **(config.soft_prompt or {})}
    config.soft_prompt = settings
    stored = stored or {}
    weights = getattr(loaded, "weights_sha256", "") or ""
    tokenizer = getattr(loaded, "tokenizer_sha256", "") or ""
    dtype = loaded.model.get_input_embeddings().weight.dtype
    prompts, accuracy, predictions = [], [], []
    jobs = [(seed, task) for seed in sorted(tasks) for task in tasks[seed][config.fit_split]]
    for number, (seed, task) in enumerate(jobs, 1):
        by_emotion = {split: {t.emotion: t for t in tasks[seed][split]} for split in config.splits}
        if task.emotion == MULTICLASS:
            words = config.label_words or [e.replace("_", " ") for e in config.emotions]
        else:
            words = config.label_words or BINARY_WORDS
        select = by_emotion[config.select_split][task.emotion]
        wanted = prompt_settings(config, task, select, words, settings)
        word_ids = label_word_ids(loaded.tokenizer, words)
        old = stored.get((task.emotion, seed))
        if old is not None and (old.settings, old.words, old.weights_sha256, old.tokenizer_sha256) == (
                wanted, words, weights, tokenizer):
            vectors, best_epoch, losses = torch.as_tensor(old.vectors), old.best_epoch, old.losses
            trained = False
        else:
            if start:
                start(f"soft prompt {task.emotion} seed {seed} ({number}/{len(jobs)})",
                      settings["epochs"] * len(task.labels))
            result = train_soft_prompt(
                loaded.model, loaded.tokenizer, (task_texts(stimuli, task.stimulus_ids), task.labels),
                (task_texts(stimuli, select.stimulus_ids), select.labels), words, seed=seed,
                device=config.device, progress=progress, **settings)
            vectors, best_epoch, losses = result.prompt.float().cpu(), result.best_epoch, result.losses
            trained = True
        scored_accuracy = {}
        for split in config.splits:
            scored = by_emotion[split][task.emotion]
            predicted, logits = predict(loaded.model, loaded.tokenizer, task_texts(stimuli, scored.stimulus_ids),
                                        vectors.to(config.device, dtype), word_ids, config.device)
            row, rows = score_task(config, scored, predicted, logits.max(1))
            scored_accuracy[split] = row["accuracy"]
            accuracy.append({**row, "seed": seed})
            predictions.append(rows.assign(seed=seed))
        prompt = StoredPrompt(
            config.inference_id(), task.emotion, seed, vectors.numpy().astype(np.float32), list(words), wanted,
            best_epoch, scored_accuracy[config.select_split], scored_accuracy[config.report_split], list(losses),
            model=config.model, weights_sha256=weights, tokenizer_sha256=tokenizer)
        prompts.append(prompt)
        if trained and on_prompt:
            on_prompt(prompt)
    return prompts, pd.DataFrame(accuracy), pd.concat(predictions, ignore_index=True)
