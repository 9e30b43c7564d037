"""Per-emotion attribute tables and pairwise similarity judgments.

Attribute tables come long (`emotion, attribute, value`) or wide (an `emotion` column and one column per
attribute); both become `emotion_attributes` rows and must give every emotion every attribute, once.
Similarity judgments are `rater, emotion_a, emotion_b` and either `distance` or `similarity`; a similarity
on a scale [lo, hi] becomes distance = lo + hi - similarity (the study: 10 - rating on 1-9). Pairs are
stored ordered (emotion_a < emotion_b); a rater judging a pair twice (in either order) is an error.
Without a `rater` column the file is one set of distances (e.g. published means), stored as rater 'mean'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .emotions import DEFAULT_EMOTIONS, normalise_emotion
from .load import Piece, arrow_rows
from .tabular import RawTable, check_finite, numbers, read_table, require_columns, texts
from .validation import between, in_set, not_null, unique_together, validate


MEAN_RATER = "mean"  # rater of a similarity file without a rater column (one distance per pair)


def read_attributes(path: Path, *, study: str, emotions: Sequence[str] = DEFAULT_EMOTIONS,
                    source: str | None = None) -> Piece:
    """An attribute table, long or wide, as a validated `emotion_attributes` piece of `study`."""
    table = read_table(Path(path))
    columns = list(table.frame.columns)
    if {"emotion", "attribute", "value"} <= set(columns):
        frame = pd.DataFrame({
            "emotion": texts(table, "emotion", what="emotion").map(normalise_emotion),
            "attribute": texts(table, "attribute", what="attribute").str.strip(),
            "value": numbers(table, "value"),
        }, index=table.frame.index)
    else:
        require_columns(table, ["emotion"])
        attributes = [c for c in columns if c != "emotion"]
        if not attributes:
            raise table.error("no attribute columns", expected="an emotion column and one column per attribute "
                              "(wide), or emotion, attribute, value (long)", found=columns)
        emotion = texts(table, "emotion", what="emotion").map(normalise_emotion)
        parts = [pd.DataFrame({"emotion": emotion, "attribute": a, "value": numbers(table, a)}) for a in attributes]
        frame = pd.concat(parts)
    return frame_to_attributes(frame, table, study=study, emotions=emotions, source=source or Path(path).name)


def frame_to_attributes(frame: pd.DataFrame, table: RawTable, *, study: str, emotions: Sequence[str],
                        source: str) -> Piece:
    """Check an attribute frame (index = source data row) and wrap it as an `emotion_attributes` piece."""
    check_finite(table, frame["value"], "value")
    result = validate(frame, [
        not_null("emotion"), not_null("attribute"), not_null("value"), in_set("emotion", emotions),
        unique_together("emotion", "attribute"),
    ], name=f"attributes-{study}", file=table.name,
        describe={"emotion": f"a known emotion ({len(emotions)} names; see --emotions)"})
    have = set(zip(frame["emotion"], frame["attribute"]))
    for emotion in frame["emotion"].unique():
        for attribute in frame["attribute"].unique():
            if (emotion, attribute) not in have:
                raise table.error(f"emotion {emotion!r} has no value for attribute {attribute!r}", column="attribute",
                                  expected="a value for every emotion x attribute", found=f"{emotion!r} without {attribute!r}")
    columns = {"emotion": frame["emotion"].tolist(), "attribute": frame["attribute"].tolist(),
               "value": frame["value"].astype(float).tolist(), "source": [source] * len(frame)}
    return Piece("emotion_attributes", arrow_rows(columns, "emotion_attributes"), {"study": study}, table.path,
                 result, ["every emotion x attribute once"], "attributes")


def read_similarity(path: Path, *, study: str, emotions: Sequence[str] = DEFAULT_EMOTIONS,
                    scale: tuple[float, float] | None = None) -> Piece:
    """`rater, emotion_a, emotion_b, distance|similarity` as a validated `similarity_judgments` piece."""
    table = read_table(Path(path))
    require_columns(table, ["emotion_a", "emotion_b"])
    has = [c for c in ("distance", "similarity") if c in table.frame.columns]
    if len(has) != 1:
        raise table.error("need exactly one of the columns distance, similarity", column="distance",
                          expected="a distance column, or a similarity column with --scale",
                          found=list(table.frame.columns))
    values = numbers(table, has[0])
    if scale is not None and not all(np.isfinite(scale)):
        raise table.error("the scale bounds must be finite", column="--scale-min/--scale-max",
                          expected="finite numbers", found=f"{scale[0]:g} to {scale[1]:g}")
    if has[0] == "similarity":
        if scale is None:
            raise table.error("a similarity column needs its scale", column="similarity",
                              expected="--scale-min and --scale-max (distance = min + max - similarity)")
        outside = (values < scale[0]) | (values > scale[1])
        if outside.any():
            row = int(outside.idxmax())
            raise table.error("similarity out of range", row=row, column="similarity",
                              expected=f"a number between {scale[0]:g} and {scale[1]:g}",
                              found=table.frame.at[row, "similarity"])
        values = scale[0] + scale[1] - values
    frame = pd.DataFrame({
        "rater": texts(table, "rater", what="rater").str.strip() if "rater" in table.frame.columns else MEAN_RATER,
        "emotion_a": texts(table, "emotion_a", what="emotion").map(normalise_emotion),
        "emotion_b": texts(table, "emotion_b", what="emotion").map(normalise_emotion),
        "distance": values,
    }, index=table.frame.index)
    return frame_to_similarity(frame, table, study=study, emotions=emotions, source=Path(path).name)


def frame_to_similarity(frame: pd.DataFrame, table: RawTable, *, study: str, emotions: Sequence[str],
                        source: str | Sequence[str], low: float | None = 0.0, part: str = "similarity",
                        checks: Sequence[str] = ()) -> Piece:
    """Order pairs (emotion_a < emotion_b), check, and wrap as a `similarity_judgments` piece.

    `source` is one name or one per row (the release's log file of each judgment).
    """
    check_finite(table, frame["distance"], "distance" if "distance" in table.frame.columns else "similarity")
    same = frame["emotion_a"] == frame["emotion_b"]
    if same.any():
        row = int(same.idxmax())
        raise table.error("an emotion compared with itself", row=row, column="emotion_b",
                          expected="two different emotions", found=frame.at[row, "emotion_b"])
    swap = frame["emotion_a"] > frame["emotion_b"]
    a = np.where(swap, frame["emotion_b"], frame["emotion_a"])
    b = np.where(swap, frame["emotion_a"], frame["emotion_b"])
    frame = frame.assign(emotion_a=a, emotion_b=b, source=source)
    result = validate(frame, [
        not_null("rater"), in_set("emotion_a", emotions), in_set("emotion_b", emotions),
        not_null("distance"), between("distance", low, None),
        unique_together("rater", "emotion_a", "emotion_b"),
    ], name=f"similarity-{study}-{part}", file=table.name,
        describe={"emotion_a": f"a known emotion ({len(emotions)} names; see --emotions)",
                  "emotion_b": f"a known emotion ({len(emotions)} names; see --emotions)",
                  "distance": "a distance >= 0" if low == 0 else "a number"})
    columns = {c: frame[c].tolist() for c in ("rater", "emotion_a", "emotion_b", "source")}
    columns["distance"] = frame["distance"].astype(float).tolist()
    return Piece("similarity_judgments", arrow_rows(columns, "similarity_judgments"), {"study": study}, table.path,
                 result, ["pairs ordered emotion_a < emotion_b", "no self-pairs", "one judgment per rater and pair",
                          *checks], part)
