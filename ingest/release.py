"""The study's release (Li et al. 2024, github model_emotion) read from a checkout in its own layout.

`ingest model-emotion PATH` runs every function in `RELEASE_PARTS`, in order, inside ONE lake
transaction: each part reads its files (`.csv` or `.csv.gz`), validates them, and stages its rows
with `write_piece(txn, piece)`; a failure in any part leaves the lake unchanged. A part is a function
`(release: Path, txn: LakeTransaction, summary: dict) -> None` that adds its counts to `summary`.
Other packages add their release parts (released activations, masking results) by appending one
function to `RELEASE_PARTS` below, importing inside the function anything slow. `HUMAN_PARTS` are
this module's own parts (the ingest tests run only those).

Study ids: `li2024` (raw human data + the published 27 x 14 attribute table),
`li2024-preprocessed` (the authors' per-person 351-pair distances, raters `ind01..ind61`) and
`li2024-preprocessed-avg` (their averaged 351-pair distances, rater `avg`).
Conventions: raw appraisal `-99` (not applicable) is stored as a NULL rating (the study imputed 5 later,
which is an analysis choice, not data); the two appraisal catch items are used to exclude raters and
are not stored; similarity logs: `trials.thisIndex` indexes `itertools.combinations` of the 28 words of
`emotions.txt`, distance = 10 - `Rating.response`, trials without a response are absent rows.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from emolake.warehouse.errors import BadInputError
from emolake.warehouse.lake import LakeTransaction

from .attributes import frame_to_attributes, frame_to_similarity
from .emotions import DEFAULT_EMOTIONS, NEUTRAL, normalise_emotion
from .load import Piece, arrow_rows, write_piece
from .ratings import frame_to_ratings
from .tabular import RawTable, numbers, read_table, read_text, require_columns
from .validation import not_null, unique_together, validate

STUDY = "li2024"
PREPROCESSED = "li2024-preprocessed"
PREPROCESSED_AVG = "li2024-preprocessed-avg"

EMOTIONS_TXT = "Data/raw_data/subjective_comparison/emotions.txt"
LOGS_DIR = "Data/raw_data/subjective_comparison"
FEATURES_DIR = "Data/raw_data/emotional_featuers"
AFFECTIVE = f"{FEATURES_DIR}/affective_features/rawdata.csv"
PHYSICAL = f"{FEATURES_DIR}/physical_features/rawdata.csv"
APPRAISAL = f"{FEATURES_DIR}/appraisal_features/rawdata.csv"
REORDERED = "Data/preprocessed/reordered_emotions.csv"
SCORES = "Data/preprocessed/emotional_features/score_emotional_PCs.csv"
AVG_DIST = "Data/preprocessed/subjective_comparison/avg_dist_subjective_comparison.csv"
IND_DIST = "Data/preprocessed/subjective_comparison/ind_dist_subjective_comparison.csv"

SCALE = (1.0, 9.0)
CATCH_ITEM = 28  # affective and physical: emotion number 28 is a catch item whose answer must be 9
AFFECTIVE_ITEMS = {"Arousal": "arousal", "Valence": "valence"}
PHYSICAL_ITEMS = {"Happy": "happy-face", "Anger": "anger-face", "Sad": "sad-face", "Fear": "fear-face",
                  "Surprise": "surprise-face", "Disgust": "disgust-face"}
APPRAISAL_CATCH = {"42_Item_1": 4.0, "43_Item_1": -99.0}
NOT_APPLICABLE = -99.0

ReleasePart = Callable[[Path, LakeTransaction, dict], None]


def release_file(release: Path, relpath: str) -> Path:
    """`relpath` in the release, as `.csv` or `.csv.gz`; a missing file is a BadInputError."""
    plain = Path(release) / relpath
    for candidate in (plain, plain.with_name(plain.name + ".gz")):
        if candidate.exists() or candidate.is_symlink():  # a directory or a link loop is reported by its reader
            return candidate
    raise BadInputError("missing release file", file=str(plain),
                        expected=f"{relpath} (or {relpath}.gz) in the release checkout {release}")


def release_emotions(release: Path) -> list[str]:
    """The 28 words of `emotions.txt` (27 emotions in alphabetical order, then neutral)."""
    path = release_file(release, EMOTIONS_TXT)
    words = [normalise_emotion(w) for w in read_text(path).splitlines() if w.strip()]
    unknown = [w for w in words if w not in DEFAULT_EMOTIONS]
    if len(words) < 2 or unknown:
        raise BadInputError("unexpected emotion list", file=str(path), expected="GoEmotions emotion names, one a line",
                            found=unknown or words)
    return words


def _screen(table: RawTable, rater_col: str, catch: dict[str, float], instrument: str) -> tuple[pd.Index, list]:
    """Rows kept by the study's exclusion rules, and (instrument, rater, reason) for every excluded row."""
    frame = table.frame
    require_columns(table, ["Finished", "UserLanguage", "Consent", rater_col, *catch])
    reasons = pd.Series([[] for _ in range(len(frame))], index=frame.index, dtype=object)
    def flag(mask: pd.Series, why: Callable[[int], str]) -> None:
        for row in mask[mask].index:
            reasons.loc[row].append(why(row))
    flag(frame["Finished"].str.strip().str.lower() != "true", lambda r: f"not finished (Finished={frame.at[r, 'Finished']})")
    flag(frame["UserLanguage"].str.strip() != "EN", lambda r: f"language {frame.at[r, 'UserLanguage']!r} is not EN")
    flag(frame["Consent"].str.strip() != "I agree", lambda r: f"no consent (Consent={frame.at[r, 'Consent']!r})")
    for column, required in catch.items():
        values = numbers(table, column, allow_missing=True)
        flag(values != required, lambda r, c=column, v=values, q=required: f"catch item {c} = {_fmt(v.loc[r])} (must be {q:g})")
    excluded = [(instrument, str(frame.at[row, rater_col]).strip(), "; ".join(why)) for row, why in reasons.items() if why]
    kept = reasons.index[reasons.map(len) == 0]
    return kept, excluded


def _fmt(value: float) -> str:
    return "empty" if pd.isna(value) else f"{value:g}"


def _rater_column(table: RawTable) -> str:
    for name in ("Prolific ID", "PROLIFIC_PID"):
        if name in table.frame.columns:
            return name
    raise table.error("missing column", column="Prolific ID", expected="a rater id column 'Prolific ID' or 'PROLIFIC_PID'",
                      found=list(table.frame.columns))


def _exclusions_piece(rows: list[tuple[str, str, str]], source: Path, part: str) -> Piece:
    columns = {"instrument": [r[0] for r in rows], "rater": [r[1] for r in rows], "reason": [r[2] for r in rows]}
    frame = pd.DataFrame(columns, index=pd.RangeIndex(1, len(rows) + 1))
    result = validate(frame, [not_null("rater"), not_null("reason"), unique_together("instrument", "rater")],
                      name=f"exclusions-{part}", file=str(source))
    return Piece("rater_exclusions", arrow_rows(columns, "rater_exclusions"), {"study": STUDY}, source, result,
                 ["exclusion rules: Finished, UserLanguage EN, Consent, catch items"], part)


def _grid_ratings(release: Path, txn: LakeTransaction, summary: dict, relpath: str, items: dict[str, str],
                  instrument: str) -> None:
    """Affective / physical: columns `N_Item_1` for emotion N (1-27) and item; 28 is the catch item."""
    path = release_file(release, relpath)
    table = read_table(path)
    emotions = [w for w in release_emotions(release) if w != NEUTRAL]
    # Column names vary in inner spaces ('N_Anger _1'): match them ignoring whitespace and case.
    by_key = {re.sub(r"\s+", "", c).lower(): c for c in table.frame.columns}

    def column(n: int, item: str) -> str:
        key = f"{n}_{item}_1".lower()
        if key not in by_key:
            raise table.error("missing column", column=f"{n}_{item}_1", expected=f"a rating column for emotion {n}, item {item}",
                              found=f"{len(table.frame.columns)} columns")
        return by_key[key]

    rater_col = _rater_column(table)
    catch = {column(CATCH_ITEM, item): 9.0 for item in items}
    kept, excluded = _screen(table, rater_col, catch, instrument)
    parts = []
    for n, emotion in enumerate(emotions, start=1):
        for item, attribute in items.items():
            values = numbers(table, column(n, item), allow_missing=True).loc[kept]
            if values.isna().any():
                raise table.error("empty rating", row=int(values.isna().idxmax()), column=column(n, item),
                                  expected="a rating 1-9 (the rater passed the exclusion rules)", found="an empty cell")
            parts.append(pd.DataFrame({
                "rater": table.frame.loc[kept, rater_col].str.strip(), "emotion": emotion, "attribute": attribute,
                "rating": values, "scale_min": SCALE[0], "scale_max": SCALE[1], "instrument": instrument,
            }, index=kept))
    frame = pd.concat(parts)
    write_piece(txn, frame_to_ratings(frame, table, study=STUDY, emotions=DEFAULT_EMOTIONS, part=instrument))
    write_piece(txn, _exclusions_piece(excluded, path, instrument))
    summary[f"{instrument}_raters"] = len(kept)
    summary[f"{instrument}_excluded"] = len(excluded)
    summary[f"{instrument}_ratings"] = len(frame)


def affective_ratings(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """Arousal and valence of the 27 emotions (`N_Arousal_1`, `N_Valence_1`)."""
    _grid_ratings(release, txn, summary, AFFECTIVE, AFFECTIVE_ITEMS, "affective")


def physical_ratings(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """Consistency of each emotion with six basic emotions' bodily/facial responses (`N_Happy_1` ...)."""
    _grid_ratings(release, txn, summary, PHYSICAL, PHYSICAL_ITEMS, "physical")


def appraisal_ratings(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """Raw appraisal items: one EMOTION per rater, items `N_Item_1` (1-9, -99 = not applicable -> NULL)."""
    path = release_file(release, APPRAISAL)
    table = read_table(path, skip_after_header=2)  # Qualtrics: question text and import ids under the header
    require_columns(table, ["EMOTION", "Specific Event"])
    rater_col = _rater_column(table)
    kept, excluded = _screen(table, rater_col, APPRAISAL_CATCH, "appraisal")
    events = table.frame["Specific Event"].map(lambda v: "" if v is None else str(v).strip())
    no_event = [row for row in kept if events.loc[row] == "n/a"]
    for row in no_event:
        excluded.append(("appraisal", str(table.frame.at[row, rater_col]).strip(), "Specific Event is 'n/a'"))
    kept = kept.difference(pd.Index(no_event))
    items = [c for c in table.frame.columns if re.fullmatch(r"\d+_Item_1", c) and c not in APPRAISAL_CATCH]
    if not items:
        raise table.error("no appraisal item columns", column="4_Item_1", expected="columns N_Item_1",
                          found=list(table.frame.columns))
    emotion = table.frame.loc[kept, "EMOTION"].map(normalise_emotion)
    parts, not_applicable = [], 0
    for item in items:
        values = numbers(table, item, allow_missing=True).loc[kept]
        empty = values.isna()
        if empty.any():
            row = int(empty.idxmax())
            raise table.error("empty appraisal rating", row=row, column=item, expected="1-9, or -99 (not applicable)",
                              found="an empty cell")
        na = values == NOT_APPLICABLE
        not_applicable += int(na.sum())
        parts.append(pd.DataFrame({
            "rater": table.frame.loc[kept, rater_col].str.strip(), "emotion": emotion, "attribute": item,
            "rating": values.where(~na), "scale_min": SCALE[0], "scale_max": SCALE[1], "instrument": "appraisal",
        }, index=kept))
    frame = pd.concat(parts)
    bad = frame["rating"].notna() & ((frame["rating"] < SCALE[0]) | (frame["rating"] > SCALE[1]))
    if bad.any():
        row, item = int(frame.index[bad.argmax()]), frame["attribute"].iloc[bad.argmax()]
        raise table.error("rating out of range", row=row, column=item, expected="1-9, or -99 (not applicable)",
                          found=table.frame.at[row, item])
    # Each rater rates one emotion, so a rater's grid is that emotion x all items.
    write_piece(txn, frame_to_ratings(frame, table, study=STUDY, emotions=DEFAULT_EMOTIONS, part="appraisal",
                                      allow_missing=True))
    write_piece(txn, _exclusions_piece(excluded, path, "appraisal"))
    summary.update(appraisal_raters=len(kept), appraisal_excluded=len(excluded), appraisal_ratings=len(frame),
                   appraisal_not_applicable=not_applicable)


def _log_files(release: Path) -> list[Path]:
    folder = Path(release) / LOGS_DIR
    files = sorted(set(folder.glob("*_PRaM_*.csv")) | set(folder.glob("*_PRaM_*.csv.gz")))
    if not files:
        raise BadInputError("no PsychoPy logs (*_PRaM_*.csv) found", file=str(folder),
                            expected="one similarity-judgment log per person")
    return files


def read_similarity_log(path: Path, pairs: list[tuple[str, str]]) -> tuple[str, pd.DataFrame, str | None]:
    """One PsychoPy log: (rater, judgments frame indexed by data row, exclusion reason or None)."""
    table = read_table(path)
    require_columns(table, ["Rating.response", "trials.thisIndex"])
    frame = table.frame
    rater = path.name.split("_PRaM_")[0]
    if "participant" in frame.columns:
        named = frame["participant"].dropna().map(str).str.strip()
        named = named[named != ""]
        rater = named.iloc[0] if len(named) else rater
    index = numbers(table, "trials.thisIndex")
    wrong = (index != index.round()) | (index < 0) | (index >= len(pairs))
    if wrong.any():
        row = int(wrong.idxmax())
        raise table.error("pair index out of range", row=row, column="trials.thisIndex",
                          expected=f"an integer 0-{len(pairs) - 1} (pairs of emotions.txt in combination order)",
                          found=frame.at[row, "trials.thisIndex"])
    rating = numbers(table, "Rating.response", allow_missing=True)
    outside = rating.notna() & ((rating < SCALE[0]) | (rating > SCALE[1]))
    if outside.any():
        row = int(outside.idxmax())
        raise table.error("similarity rating out of range", row=row, column="Rating.response",
                          expected="a rating 1-9", found=frame.at[row, "Rating.response"])
    answered = rating.notna()
    repeated = index[answered].duplicated()
    if repeated.any():
        row = int(repeated.idxmax())
        raise table.error("pair judged twice", row=row, column="trials.thisIndex",
                          expected="each pair index once", found=frame.at[row, "trials.thisIndex"])
    reason = None
    if "preview" in frame.columns and (frame["preview"].map(lambda v: str(v).strip()) == "1").any():
        reason = "preview run (column preview = 1)"
    elif not answered.any():
        reason = "no responses in the log"
    a = [pairs[int(i)][0] for i in index[answered]]
    b = [pairs[int(i)][1] for i in index[answered]]
    judged = pd.DataFrame({"rater": rater, "emotion_a": a, "emotion_b": b,
                           "distance": SCALE[0] + SCALE[1] - rating[answered]}, index=index[answered].index)
    return rater, judged, reason


def similarity_logs(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """The PsychoPy similarity-judgment logs, one per person, into `similarity_judgments` of li2024."""
    words = release_emotions(release)
    pairs = list(itertools.combinations(words, 2))  # trials.thisIndex -> pair, e.g. 0 -> (admiration, amusement)
    frames, sources, excluded, empty, seen = [], [], [], 0, {}
    for path in _log_files(release):
        if not read_text(path).strip():
            empty += 1
            excluded.append(("similarity", path.name.split("_PRaM_")[0], f"empty log file {path.name}"))
            continue
        rater, judged, reason = read_similarity_log(path, pairs)
        if rater in seen:
            raise BadInputError("the same participant has two logs", file=str(path), column="participant",
                                expected="one log per participant", found=f"{rater} (also {seen[rater]})")
        seen[rater] = path.name
        if reason:
            excluded.append(("similarity", rater, reason))
            continue
        frames.append(judged)
        sources += [path.name] * len(judged)
    frame = pd.concat(frames, ignore_index=True)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    logs = RawTable(Path(release) / LOGS_DIR, frame, {})
    write_piece(txn, frame_to_similarity(
        frame, logs, study=STUDY, emotions=words, source=sources, part="logs",
        checks=["pair index within the 378 pairs", "ratings 1-9", "no pair judged twice in a log"]))
    write_piece(txn, _exclusions_piece(excluded, Path(release) / LOGS_DIR, "similarity"))
    summary.update(similarity_logs=len(seen) + empty, similarity_logs_empty=empty,
                   similarity_raters=len(frames), similarity_excluded=len(excluded),
                   similarity_judgments=len(frame))


def reordered_emotions(release: Path) -> list[str]:
    """The 27 emotions in the authors' analysis order (`reordered_emotions.csv`, no header)."""
    table = read_table(release_file(release, REORDERED), header=False, columns=["emotion"])
    names = table.frame["emotion"].map(normalise_emotion).tolist()
    unknown = [n for n in names if n not in DEFAULT_EMOTIONS]
    if unknown or len(set(names)) != len(names):
        raise table.error("unexpected emotion order list", column="emotion", expected="27 distinct emotion names",
                          found=unknown or names)
    return names


def lower_tri_pairs(names: list[str]) -> list[tuple[str, str]]:
    """R `lower.tri` order (column-major): for j, for i > j: (names[i], names[j])."""
    return [(names[i], names[j]) for j in range(len(names)) for i in range(j + 1, len(names))]


def preprocessed_similarity(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """The authors' 351-pair distances, per person and averaged, as studies li2024-preprocessed[-avg]."""
    pairs = lower_tri_pairs(reordered_emotions(release))
    for relpath, study, label in ((IND_DIST, PREPROCESSED, "ind"), (AVG_DIST, PREPROCESSED_AVG, "avg")):
        path = release_file(release, relpath)
        table = read_table(path)
        matrix = table.frame
        if label == "avg":
            values = numbers(table, matrix.columns[0]).to_numpy()[None, :]  # [1, n_pairs]
            if len(matrix.columns) != 1 or values.shape[1] != len(pairs):
                raise table.error("wrong shape", expected=f"one column of {len(pairs)} pair distances",
                                  found=f"{len(matrix.columns)} columns x {values.shape[1]} rows")
            raters = ["avg"]
        else:
            if len(matrix.columns) != len(pairs):
                raise table.error("wrong number of pair columns", expected=f"{len(pairs)} columns V1..V{len(pairs)}",
                                  found=f"{len(matrix.columns)} columns")
            values = np.column_stack([numbers(table, c).to_numpy() for c in matrix.columns])  # [n_people, n_pairs]
            raters = [f"ind{k:02d}" for k in range(1, len(matrix) + 1)]
        rows = np.repeat(np.arange(1, values.shape[0] + 1), values.shape[1])
        frame = pd.DataFrame({
            "rater": np.repeat(raters, values.shape[1]),
            "emotion_a": [a for _ in raters for a, _b in pairs], "emotion_b": [b for _ in raters for _a, b in pairs],
            "distance": values.ravel(),
        }, index=rows)
        write_piece(txn, frame_to_similarity(frame, table, study=study, emotions=DEFAULT_EMOTIONS, source=path.name,
                                             part=label, checks=[f"{len(pairs)} pairs per rater"]))
        summary[f"preprocessed_{label}_raters"] = len(raters)
    summary["preprocessed_pairs"] = len(pairs)


def published_attributes(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """The published 27 x 14 attribute table (rows in `reordered_emotions.csv` order) into emotion_attributes,
    for study li2024 and for the authors' preprocessed similarity studies (the same study's attributes), so
    that `rsa --study li2024-preprocessed` needs no --attributes-study."""
    emotions = reordered_emotions(release)
    path = release_file(release, SCORES)
    table = read_table(path)
    if len(table.frame) != len(emotions):
        raise table.error("wrong number of rows", expected=f"{len(emotions)} rows, one per emotion of {REORDERED}",
                          found=f"{len(table.frame)} rows")
    frame = pd.concat([
        pd.DataFrame({"emotion": emotions, "attribute": column, "value": numbers(table, column).to_numpy()},
                     index=table.frame.index)
        for column in table.frame.columns
    ])
    for study in (STUDY, PREPROCESSED, PREPROCESSED_AVG):
        write_piece(txn, frame_to_attributes(frame, table, study=study, emotions=DEFAULT_EMOTIONS, source=path.name))
    summary["attributes"] = len(frame)


# The human data and published figures (this module's parts).
HUMAN_PARTS: tuple[ReleasePart, ...] = (
    affective_ratings, physical_ratings, appraisal_ratings, similarity_logs, preprocessed_similarity,
    published_attributes,
)


def released_activations(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """The 12 seeds' prompt activations and the unablated accuracies (extract's loader)."""
    from emolake.ingest.model_emotion_activations import load_released_activations

    load_released_activations(release, txn, summary)


def released_masking(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """The masking (ablation) accuracies, into the ablation tables as run set li2024-roberta."""
    from emolake.ingest.released_masking import load_released_masking

    load_released_masking(release, txn, summary)


# The parts `ingest model-emotion` runs, in order, in one transaction. Add yours here.
RELEASE_PARTS: list[ReleasePart] = [*HUMAN_PARTS, released_activations, released_masking]


def ingest_release(lake, release: Path, command: str = "ingest model-emotion", replace: bool = False) -> dict:
    """Run every part of `RELEASE_PARTS` in one transaction; returns the summary of counts.
    `replace` allows replacing partitions that another source loaded."""
    release = Path(release)
    if not release.is_dir():
        raise BadInputError("release checkout not found", file=str(release),
                            expected="a directory in the layout of the model_emotion repository")
    summary: dict = {"release": str(release)}
    with lake.transaction(command, replace=replace) as txn:
        for part in RELEASE_PARTS:
            part(release, txn, summary)
        summary["load_id"] = txn.load_id
    summary["raters_excluded"] = sum(v for k, v in summary.items() if k.endswith("_excluded"))
    return summary
