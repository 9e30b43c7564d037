"""Emotion-inference tasks over a stimulus dataset: binary per emotion (the study) and 27-way.

Binary task for emotion e in a split: every stimulus labelled e (multi-label stimuli included) plus
an equal number drawn without replacement from the split's other stimuli (neutral included), seeded
per (seed, emotion, split); the drawn seed is stored with the task. 27-way task: the single-label
stimuli of the emotions (neutral excluded), label = index in the emotion list. `max_per_emotion` caps
the positives (binary) or the stimuli per class (27-way), drawn with the same seeds, to bound cost.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emolake.ingest.emotions import GOEMOTIONS_27, NEUTRAL
from emolake.warehouse.errors import BadInputError

TASKS = ("binary", "multiclass")
MULTICLASS = "all"  # the emotion column of 27-way task rows


@dataclass(frozen=True)
class Task:
    """One task in one split: which stimuli, their labels, and the seed that drew them."""

    emotion: str  # the emotion of a binary task, 'all' for the 27-way task
    split: str
    stimulus_ids: np.ndarray  # [n] str
    labels: np.ndarray  # [n] int: 1/0 (binary) or class index (27-way)
    draw_seed: int


def derive_seed(seed: int, *names: object) -> int:
    """A 32-bit seed from a base seed and names (stable across runs and platforms)."""
    entropy = [int(seed)] + [zlib.crc32(str(n).encode()) for n in names]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


def check_splits(stimuli: pd.DataFrame, dataset: str, splits: list[str]) -> None:
    available = sorted(stimuli["split"].unique())
    for split in splits:
        if split not in available:
            raise BadInputError(f"dataset {dataset!r} has no split {split!r}", column="split",
                                expected=f"one of {available}", found=split)


def _draw(ids: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if n >= len(ids):
        return ids
    return np.sort(rng.choice(ids, size=n, replace=False))


def binary_tasks(stimuli: pd.DataFrame, emotions: list[str], split: str, seed: int,
                 max_per_emotion: int | None = None) -> list[Task]:
    """One binary task per emotion in `split`. `stimuli`: one row per stimulus and label."""
    rows = stimuli[stimuli["split"] == split]
    all_ids = np.sort(rows["stimulus_id"].unique())
    tasks = []
    for emotion in emotions:
        draw_seed = derive_seed(seed, emotion, split)
        rng = np.random.default_rng(draw_seed)
        positives = np.sort(rows.loc[rows["emotion"] == emotion, "stimulus_id"].unique())
        if max_per_emotion is not None:
            positives = _draw(positives, max_per_emotion, rng)
        if len(positives) == 0:
            raise BadInputError(f"no stimuli labelled {emotion!r} in split {split!r}", column="emotion",
                                expected="at least one stimulus per emotion", found=0)
        labelled = set(rows.loc[rows["emotion"] == emotion, "stimulus_id"])
        others = np.array([s for s in all_ids if s not in labelled], dtype=object)
        negatives = _draw(others, len(positives), rng)
        ids = np.concatenate([positives, negatives]).astype(object)
        labels = np.concatenate([np.ones(len(positives), int), np.zeros(len(negatives), int)])
        tasks.append(Task(emotion, split, ids, labels, draw_seed))
    return tasks


def multiclass_task(stimuli: pd.DataFrame, emotions: list[str], split: str, seed: int,
                    max_per_emotion: int | None = None) -> Task:
    """The 27-way task in `split`: single-label stimuli of `emotions`, label = emotion index."""
    rows = stimuli[(stimuli["split"] == split) & (stimuli["n_labels"] == 1) & stimuli["emotion"].isin(emotions)]
    draw_seed = derive_seed(seed, MULTICLASS, split)
    rng = np.random.default_rng(draw_seed)
    ids, labels = [], []
    for index, emotion in enumerate(emotions):
        chosen = np.sort(rows.loc[rows["emotion"] == emotion, "stimulus_id"].unique())
        if max_per_emotion is not None:
            chosen = _draw(chosen, max_per_emotion, rng)
        ids.append(chosen)
        labels.append(np.full(len(chosen), index))
    ids_all = np.concatenate(ids).astype(object)
    if len(ids_all) == 0:
        raise BadInputError(f"no single-label stimuli of the emotions in split {split!r}")
    return Task(MULTICLASS, split, ids_all, np.concatenate(labels).astype(int), draw_seed)


def build_tasks(stimuli: pd.DataFrame, task: str, emotions: list[str], split: str, seed: int,
                max_per_emotion: int | None = None) -> list[Task]:
    if task == "binary":
        return binary_tasks(stimuli, emotions, split, seed, max_per_emotion)
    if task == "multiclass":
        return [multiclass_task(stimuli, emotions, split, seed, max_per_emotion)]
    raise BadInputError("unknown task", expected=f"one of {TASKS}", found=task)


def default_emotions(stimuli: pd.DataFrame) -> list[str]:
    """The 27 GoEmotions emotions present in the stimuli, else every label but neutral (sorted)."""
    present = set(stimuli["emotion"].unique())
    chosen = [e for e in GOEMOTIONS_27 if e in present]
    return chosen or sorted(present - {NEUTRAL})

def task_texts(stimuli: pd.DataFrame, ids: np.ndarray) -> list[str]:
    text = stimuli.drop_duplicates("stimulus_id").set_index("stimulus_id")["text"]
    return text.loc[list(ids)].tolist()


def score_task(config, task: Task, predicted: np.ndarray,
               score: np.ndarray) -> tuple[dict, pd.DataFrame]:
    """One task scored on its split: its accuracy row and its prediction rows."""
    role = [r for r, s in (("fit", config.fit_split), ("select", config.select_split),
                           ("report", config.report_split)) if s == task.split]
    accuracy = {"emotion": task.emotion, "split": task.split, "n_stimuli": len(task.labels),
                "accuracy": float((predicted == task.labels).mean()), "selected": ",".join(role)}
    predictions = pd.DataFrame({
        "emotion": task.emotion, "split": task.split, "stimulus_id": task.stimulus_ids.astype(str),
        "label": task.labels, "predicted": predicted, "score": score.astype(np.float32)})
    return accuracy, predictions
