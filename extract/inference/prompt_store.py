"""Trained soft prompts as lake rows: one `StoredPrompt` per (inference, emotion, seed).

The study's protocol keeps, per emotion and seed, a prompt trained on the frozen model; its
activations (`extract --prompts`) and its re-evaluation under ablation (`ablate`) both start from
these vectors. Writers and readers of the `prompts` table exchange this record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class StoredPrompt:
    inference_id: str
    emotion: str  # the binary task's emotion ('all' for the multiclass task)
    seed: int  # seeds the prompt's initialisation, the batch order and the task's negative draw
    vectors: np.ndarray  # [n_prompt, hidden] float32: the prompt kept on the select split
    words: list[str]  # verbalizer words, label index order ('no', 'yes' for the binary task)
    settings: dict = field(default_factory=dict)  # n_prompt, epochs, lr, batch_size, template, ...
    best_epoch: int = -1
    select_accuracy: float = float("nan")
    report_accuracy: float = float("nan")
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
