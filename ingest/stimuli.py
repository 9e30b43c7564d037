"""Stimulus readers: GoEmotions TSV, the one-hot CSV layout, and a generic CSV/Parquet table.

Each reader returns validated `Piece`s of the `stimuli` table: one row per stimulus and label
(`n_labels` says how many labels the stimulus has), emotion names normalised, split recorded,
`source_row` = the 1-based data row in the source file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from warehouse.errors import BadInputError
from warehouse.names import check_name

from .emotions import DEFAULT_EMOTIONS, normalise_emotion
from .load import Piece, arrow_rows
from .tabular import RawTable, read_table, require_columns, texts
from .validation import between, in_set, not_null, unique_together, validate

GOEMOTIONS_SPLITS = ("train", "dev", "test")
ONEHOT_COLUMNS = ("text", "classes", "ids")
LABEL_SEPARATORS = r"[,;|]"


def stimuli_suite(emotions: Sequence[str], n_emotions: int) -> list:
    return [
        not_null("text"), not_null("stimulus_id"), in_set("emotion", emotions),
        between("n_labels", 1, n_emotions), unique_together("stimulus_id", "emotion"),
    ]


def _piece(long: pd.DataFrame, table: RawTable, dataset: str, emotions: Sequence[str], part: str,
           checks: list[str]) -> Piece:
    """Validate the long frame (index = source row) and wrap it as a Piece."""
    result = validate(long, stimuli_suite(emotions, len(emotions)), name=f"stimuli-{dataset}-{part}",
                      file=table.name, describe={"emotion": f"a known emotion ({len(emotions)} names)"})
    columns = {c: long[c].tolist() for c in ("split", "stimulus_id", "text", "emotion", "n_labels")}
    columns["source_row"] = long.index.to_list()
    return Piece("stimuli", arrow_rows(columns, "stimuli"), {"dataset": dataset}, table.path, result, checks, part)


def _long(table: RawTable, text: pd.Series, labels: pd.Series, ids: pd.Series, split: pd.Series) -> pd.DataFrame:
    """One row per stimulus and label from per-row label lists; index = source row."""
    frame = pd.DataFrame({"split": split, "stimulus_id": ids, "text": text, "labels": labels}, index=table.frame.index)
    frame["n_labels"] = frame["labels"].map(len)
    long = frame.explode("labels").rename(columns={"labels": "emotion"})
    return long[["split", "stimulus_id", "text", "emotion", "n_labels"]]


def read_goemotions_tsv(path: Path, labels: Sequence[str], split: str) -> tuple[RawTable, pd.DataFrame]:
    """One GoEmotions TSV (text, comma-separated label ids, comment id; no header) as a long frame."""
    table = read_table(path, delimiter="\t", header=False, columns=["text", "label_ids", "comment_id"])
    text = texts(table, "text")
    ids = texts(table, "comment_id", what="comment id").str.strip()
    names_by_id = {str(i): name for i, name in enumerate(labels)}
    per_row = []
    for row, cell in zip(table.frame.index, table.frame["label_ids"]):
        try:
            per_row.append(list(dict.fromkeys(names_by_id[i.strip()] for i in cell.split(","))))
        except KeyError:
            raise table.error("bad label id", row=row, column="label_ids",
                              expected=f"comma-separated label ids 0-{len(labels) - 1} (indices into labels.txt)",
                              found=cell.strip()) from None
    per_row = pd.Series(per_row, index=table.frame.index, dtype=object)
    return table, _long(table, text, per_row, ids, pd.Series(split, index=table.frame.index))


def read_labels_txt(path: Path) -> list[str]:
    if not path.exists():
        raise BadInputError("labels.txt not found beside the TSV files", file=str(path),
                            expected="labels.txt with one emotion name a line (label id = line number - 1)")
    names = [normalise_emotion(n) for n in path.read_text(encoding="utf-8-sig").splitlines() if n.strip()]
    if not names:
        raise BadInputError("the file is empty", file=str(path), expected="emotion names, one a line")
    return names


def goemotions_pieces(path: Path, dataset: str = "goemotions") -> list[Piece]:
    """The GoEmotions original split: a directory of train/dev/test.tsv + labels.txt, or one TSV."""
    path = Path(path)
    if path.is_dir():
        files = [path / f"{s}.tsv" for s in GOEMOTIONS_SPLITS if (path / f"{s}.tsv").exists()]
        files += [f for f in sorted(path.glob("*.tsv")) if f not in files]
        if not files:
            raise BadInputError("no .tsv files in the directory", file=str(path),
                                expected="train.tsv, dev.tsv, test.tsv and labels.txt")
        labels_path = path / "labels.txt"
    else:
        files, labels_path = [path], path.parent / "labels.txt"
    labels = read_labels_txt(labels_path)
    read = [(f, *read_goemotions_tsv(f, labels, _split_name(f))) for f in files]
    all_ids = pd.concat([long["stimulus_id"].drop_duplicates() for _, _, long in read])
    ids_unique = not all_ids.duplicated().any()
    pieces = []
    for f, table, long in read:
        if not ids_unique:  # fall back to split + row, which is unique by construction
            long = long.assign(stimulus_id=[f"{s}-{r}" for s, r in zip(long["split"], long.index)])
        unknown = set(labels) - set(DEFAULT_EMOTIONS)
        emotions = tuple(DEFAULT_EMOTIONS) + tuple(sorted(unknown))
        pieces.append(_piece(long, table, dataset, emotions, _split_name(f),
                             ["label ids are integers indexing labels.txt", "comment ids unique across splits"
                              if ids_unique else "stimulus_id = split-row (comment ids repeat)"]))
    return pieces


def _split_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".tsv", ".csv", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name


def read_onehot_csv(path: Path, dataset: str = "goemotions", split: str | None = None) -> Piece:
    """The authors' one-hot layout: text, classes, ids, then one 0/1 column per emotion."""
    path = Path(path)
    table = read_table(path)
    require_columns(table, ONEHOT_COLUMNS)
    emotion_columns = [c for c in table.frame.columns if c not in ONEHOT_COLUMNS]
    if not emotion_columns:
        raise table.error("no emotion columns after text, classes, ids", expected="one 0/1 column per emotion",
                          found=list(table.frame.columns))
    names = [normalise_emotion(c) for c in emotion_columns]
    onehot = table.frame[emotion_columns].map(lambda v: str(v).strip())
    for column in emotion_columns:
        bad = ~onehot[column].isin(["0", "1"])
        if bad.any():
            row = int(bad.idxmax())
            raise table.error("not a 0/1 label", row=row, column=column, expected="0 or 1",
                              found=table.frame.at[row, column])
    matrix = onehot.to_numpy() == "1"  # [n_rows, n_emotions]
    per_row = pd.Series([[names[j] for j in np.flatnonzero(r)] for r in matrix], index=table.frame.index)
    empty = per_row.map(len) == 0
    if empty.any():
        row = int(empty.idxmax())
        raise table.error("no label set", row=row, column=",".join(emotion_columns[:3]) + ",...",
                          expected="at least one emotion column = 1", found="all 0")
    classes = table.frame["classes"].map(lambda v: str(v).strip())
    for row, text_ids in classes.items():  # the `classes` ids must agree with the one-hot columns
        try:
            from_classes = sorted(names[int(i)] for i in text_ids.split(","))
        except (ValueError, IndexError):
            raise table.error("bad label id", row=row, column="classes",
                              expected=f"comma-separated ids 0-{len(names) - 1}", found=text_ids) from None
        if from_classes != sorted(per_row.loc[row]):
            raise table.error("classes disagree with the one-hot columns", row=row, column="classes",
                              expected=",".join(sorted(per_row.loc[row])), found=",".join(from_classes))
    text = texts(table, "text")
    ids = texts(table, "ids", what="id").str.strip()
    split = split or _split_name(path)
    emotions = tuple(dict.fromkeys(tuple(DEFAULT_EMOTIONS) + tuple(names)))
    long = _long(table, text, per_row, ids, pd.Series(split, index=table.frame.index))
    return _piece(long, table, dataset, emotions, split,
                  ["one-hot cells are 0/1", "every row has a label", "classes agree with one-hot columns"])


def read_generic(
    path: Path, *, text_col: str = "text", label_cols: Sequence[str] = ("label",), split_col: str | None = None,
    split: str | None = None, id_col: str | None = None, dataset: str | None = None,
    emotions: Sequence[str] = DEFAULT_EMOTIONS,
) -> Piece:
    """A CSV/Parquet with a text column and label column(s) holding emotion names.

    A label cell may hold several names separated by `,` `;` or `|`; several label columns add up.
    A label column named after a known emotion whose cells are all 0/1 is read as one-hot.
    """
    path = Path(path)
    table = read_table(path, delimiter="\t" if path.name.endswith((".tsv", ".tsv.gz")) else ",")
    label_cols = [c.strip() for col in label_cols for c in col.split(",") if c.strip()]
    require_columns(table, [text_col, *label_cols, *([split_col] if split_col else []), *([id_col] if id_col else [])])
    known = set(emotions)
    text = texts(table, text_col)
    per_row = pd.Series([[] for _ in range(len(table.frame))], index=table.frame.index, dtype=object)
    for column in label_cols:
        cells = table.frame[column].map(lambda v: "" if v is None else str(v).strip())
        if normalise_emotion(column) in known and cells.isin(["0", "1", "0.0", "1.0"]).all():
            name = normalise_emotion(column)
            per_row = per_row.combine(cells.isin(["1", "1.0"]), lambda acc, on: acc + [name] if on else acc)
            continue
        for row, cell in cells.items():
            for raw_name in re.split(LABEL_SEPARATORS, cell):
                if not raw_name.strip():
                    continue
                name = normalise_emotion(raw_name)
                if name not in known:
                    raise table.error("unknown emotion label", row=row, column=column,
                                      expected=f"one of the {len(known)} known emotions (see --emotions)",
                                      found=raw_name.strip())
                if name not in per_row.loc[row]:
                    per_row.loc[row].append(name)
    empty = per_row.map(len) == 0
    if empty.any():
        row = int(empty.idxmax())
        raise table.error("no label", row=row, column=",".join(label_cols), expected="at least one emotion name",
                          found="")
    if split_col:
        splits = texts(table, split_col, what="split").str.strip()
    else:
        splits = pd.Series(split or "all", index=table.frame.index)
    if id_col:
        ids = texts(table, id_col, what="id").str.strip()
        repeated = ids.duplicated()
        if repeated.any():
            row = int(repeated.idxmax())
            first = int(ids[ids == ids.loc[row]].index[0])
            raise table.error("repeated stimulus id", row=row, column=id_col, expected="a unique id per row",
                              found=f"{ids.loc[row]} (also at row {first})")
    else:
        ids = pd.Series([f"{s}-{r}" for s, r in zip(splits, table.frame.index)], index=table.frame.index)
    long = _long(table, text, per_row, ids, splits)
    if dataset is None:
        dataset = check_name(_split_name(Path(path)), "dataset (the file name; give --dataset)", file=table.name)
    return _piece(long, table, dataset, tuple(emotions), _split_name(Path(path)),
                  ["labels are known emotion names", "every row has a label", "text not empty"])


def detect_layout(path: Path) -> str:
    """'goemotions-tsv', 'onehot' or 'table' from the file name and header."""
    path = Path(path)
    if path.is_dir() or path.name.endswith((".tsv", ".tsv.gz")):
        return "goemotions-tsv"
    if path.name.endswith((".csv", ".csv.gz")):
        from .tabular import read_text

        text = read_text(path)
        header = {normalise_emotion(c) for c in text.split("\n", 1)[0].split(",")}
        if set(ONEHOT_COLUMNS) <= header and len(header & set(DEFAULT_EMOTIONS)) >= 2:
            return "onehot"
    return "table"


def check_unique_ids(pieces: Sequence[Piece]) -> None:
    """Stimulus ids must not repeat across the files of one dataset."""
    seen: dict[tuple[str, str], str] = {}
    for piece in pieces:
        ids = piece.rows.column("stimulus_id").unique().to_pylist()
        dataset = piece.partition["dataset"]
        for sid in ids:
            other = seen.setdefault((dataset, sid), str(piece.source))
            if other != str(piece.source):
                raise BadInputError("stimulus id appears in two files of one dataset", file=str(piece.source),
                                    column="stimulus_id", expected=f"ids unique across the files of {dataset!r}",
                                    found=f"{sid} (also in {other})")
