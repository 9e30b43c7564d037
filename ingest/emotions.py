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
    spaces: 'empathic pain'), normalised; default GoEmotions + neutral.

    A value containing a path separator or ending in .txt/.csv is a file: one that does not exist is an
    error (never read as one emotion name).
    """
    if not spec:
        return DEFAULT_EMOTIONS
    from pathlib import Path

    from emolake.warehouse.errors import BadInputError

    from .tabular import read_text

    path = Path(spec)
    looks_like_path = "/" in spec or "\\" in spec or spec.lower().endswith((".txt", ".csv", ".txt.gz", ".csv.gz"))
    if looks_like_path or path.is_file():
        if not path.exists() and not path.is_symlink():
            raise BadInputError("the --emotions file does not exist", file=spec, column="--emotions",
                                expected="a file of emotion names (one a line) or a comma-separated list",
                                found="no such file")
        names, where = read_text(path).splitlines(), spec
    else:
        names, where = spec.split(","), None
    for name in names:
        if "\0" in name:
            raise BadInputError("a NUL byte in an emotion name", file=where, column="--emotions",
                                expected="emotion names without NUL bytes", found=name)
    emotions = tuple(dict.fromkeys(normalise_emotion(n) for n in names if n.strip()))
    if not emotions:
        raise BadInputError("no emotion names", file=where, column="--emotions", expected="at least one name",
                            found=spec)
    return emotions
