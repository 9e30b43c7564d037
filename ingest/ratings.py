"""Human ratings in tidy long form: `rater, emotion, attribute, rating` (+ optional `scale_min, scale_max`).

Checks, in order: the columns exist; ratings and bounds are numbers; every rating lies within its
bounds (the row's `scale_min/scale_max` columns if present, else the `scale` given, default 1-9);
emotions are known (a configurable set, default the 27 GoEmotions emotions + neutral); no rater rates
the same emotion and attribute twice; and completeness, decided as follows:
- each rater's ratings form a full grid: every emotion the rater rated has every attribute that the
  rater used for any emotion (raters may rate different subsets of emotions or attributes), and
- every emotion in the file has every attribute in the file from at least one rater,
so per-emotion means exist for every emotion x attribute.
`frame_to_ratings` runs the same checks on frames built by other readers (the study's release).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .emotions import DEFAULT_EMOTIONS, normalise_emotion
from .load import Piece, arrow_rows
from .tabular import RawTable, check_finite, numbers, read_table, require_columns, texts
from .validation import between, columns_exist, in_set, not_null, unique_together, validate

RATING_COLUMNS = ("rater", "emotion", "attribute", "rating")
DEFAULT_SCALE = (1.0, 9.0)


def read_ratings(
    path: Path, *, study: str, emotions: Sequence[str] = DEFAULT_EMOTIONS,
    scale: tuple[float, float] = DEFAULT_SCALE, instrument: str = "ratings",
) -> Piece:
    """A long-form ratings file (CSV or Parquet) as a validated `ratings` piece of `study`."""
    table = read_table(Path(path))
    require_columns(table, RATING_COLUMNS)
    frame = pd.DataFrame({
        "rater": texts(table, "rater", what="rater").str.strip(),
        "emotion": texts(table, "emotion", what="emotion").map(normalise_emotion),
        "attribute": texts(table, "attribute", what="attribute").str.strip(),
        "rating": numbers(table, "rating"),
    }, index=table.frame.index)
    has_bounds = [c for c in ("scale_min", "scale_max") if c in table.frame.columns]
    if len(has_bounds) == 1:
        raise table.error("scale bounds come in pairs", column=has_bounds[0],
                          expected="both scale_min and scale_max columns, or neither", found=has_bounds)
    if has_bounds:
        frame["scale_min"], frame["scale_max"] = numbers(table, "scale_min"), numbers(table, "scale_max")
    else:
        frame["scale_min"], frame["scale_max"] = float(scale[0]), float(scale[1])
    frame["instrument"] = instrument
    return frame_to_ratings(frame, table, study=study, emotions=emotions, part=instrument)


def frame_to_ratings(frame: pd.DataFrame, table: RawTable, *, study: str, emotions: Sequence[str],
                     part: str, allow_missing: bool = False) -> Piece:
    """Check a ratings frame (index = source data row) and wrap it as a `ratings` piece.

    `allow_missing` lets `rating` be NULL (the release's 'not applicable'); the grid must still be full.
    """
    checks = ["rating within its row's scale bounds", "emotions known", "no duplicate rater-emotion-attribute",
              "each rater's emotions x attributes complete", "every emotion has every attribute"]
    for bound in ("scale_min", "scale_max"):  # also --scale-min/--scale-max: an infinite bound lets inf in
        check_finite(table, frame[bound], bound if bound in table.frame.columns else "--" + bound.replace("_", "-"))
    check_finite(table, frame["rating"], "rating", allow_missing=allow_missing)
    inverted = frame["scale_min"] >= frame["scale_max"]
    if inverted.any():
        row = int(inverted.idxmax())
        raise table.error("scale_min is not below scale_max", row=row, column="scale_min",
                          expected="scale_min < scale_max",
                          found=f"{frame.at[row, 'scale_min']} >= {frame.at[row, 'scale_max']}")
    outside = (frame["rating"] < frame["scale_min"]) | (frame["rating"] > frame["scale_max"])
    if outside.any():
        row = int(outside.idxmax())
        raise table.error("rating out of range", row=row, column="rating",
                          expected=f"a rating between {frame.at[row, 'scale_min']:g} and {frame.at[row, 'scale_max']:g}",
                          found=_original(table, row, "rating", frame.at[row, "rating"]))
    low, high = float(frame["scale_min"].min()), float(frame["scale_max"].max())
    suite = [
        columns_exist(["rater", "emotion", "attribute", "rating"]),
        not_null("rater"), not_null("emotion"), not_null("attribute"),
        in_set("emotion", emotions), between("rating", low, high),
        unique_together("rater", "emotion", "attribute"),
    ]
    if not allow_missing:
        suite.append(not_null("rating"))
    result = validate(frame, suite, name=f"ratings-{study}-{part}", file=table.name,
                      describe={"emotion": f"a known emotion ({len(emotions)} names; see --emotions)",
                                "rating": f"a number between {low:g} and {high:g}"})
    _check_complete(frame, table)
    columns = {c: frame[c].tolist() for c in ("rater", "emotion", "attribute", "scale_min", "scale_max", "instrument")}
    columns["rating"] = [None if pd.isna(v) else float(v) for v in frame["rating"]]
    return Piece("ratings", arrow_rows(columns, "ratings"), {"study": study}, table.path, result, checks, part)


def _original(table: RawTable, row: int, column: str, fallback: object) -> object:
    if column in table.frame.columns:
        return table.frame.at[row, column]
    return fallback


def _check_complete(frame: pd.DataFrame, table: RawTable) -> None:
    """Each rater's grid full, and every emotion rated on every attribute by someone (see module doc)."""
    pairs = frame[["rater", "emotion", "attribute"]].drop_duplicates()
    for rater, own in pairs.groupby("rater", sort=False):
        emotions, attributes = own["emotion"].unique(), own["attribute"].unique()
        if len(own) == len(emotions) * len(attributes):
            continue
        have = set(zip(own["emotion"], own["attribute"]))
        emotion, attribute = next((e, a) for e in emotions for a in attributes if (e, a) not in have)
        row = int(own.index[own["emotion"] == emotion][0])
        raise table.error(
            f"rater {rater!r} rated {emotion!r} but not on attribute {attribute!r}", row=row, column="attribute",
            expected=f"every attribute the rater used ({', '.join(map(str, attributes))}) for each emotion rated",
            found=f"{emotion!r} without {attribute!r}",
        )
    emotions, attributes = pairs["emotion"].unique(), pairs["attribute"].unique()
    have = set(zip(pairs["emotion"], pairs["attribute"]))
    for emotion in emotions:
        for attribute in attributes:
            if (emotion, attribute) not in have:
                raise table.error(
                    f"emotion {emotion!r} has no rating on attribute {attribute!r}", column="attribute",
                    expected="every emotion rated on every attribute in the file (by at least one rater)",
                    found=f"{emotion!r} without {attribute!r}",
                )
