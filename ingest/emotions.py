"""Emotion names: the 27 GoEmotions emotions (+ neutral) and normalisation of user-written names."""

from __future__ import annotations

import re

# The 27 GoEmotions emotions in alphabetical order: the numbering of the study's rating files.
GOEMOTIONS_27: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization",
    "relief", "remorse", "sadness", "surprise",
)
NEUTRAL = "neutral"


def normalise_emotion(name: str) -> str:
    """The one normal form of an emotion name, used for every source (`--emotions`, stimulus labels,
    ratings, attribute tables, similarity judgments): lower case, outer whitespace stripped, inner
    runs of whitespace and hyphens collapsed to '_'; other punctuation is kept.
    '  Admiration ' -> 'admiration', 'Aesthetic Appreciation' -> 'aesthetic_appreciation',
    'empathic  pain' -> 'empathic_pain'."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())

# The default set of known emotion names: the 27 GoEmotions emotions and neutral.
DEFAULT_EMOTIONS: tuple[str, ...] = GOEMOTIONS_27 + (NEUTRAL,)


def emotion_set(spec: str | None) -> tuple[str, ...]:
    """Known emotions from a comma-separated list or a file of names (one a line, so a name may hold
    spaces: 'empathic pain'), normalised; default GoEmotions + neutral."""
    if not spec:
        return DEFAULT_EMOTIONS
    from pathlib import Path

    path = Path(spec)
    names = path.read_text(encoding="utf-8-sig").splitlines() if path.is_file() else spec.split(",")
    return tuple(dict.fromkeys(normalise_emotion(n) for n in names if n.strip()))
