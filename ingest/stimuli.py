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

from emolake.warehouse.errors import BadInputError
from emolake.warehouse.names import check_name

from .emotions import DEFAULT_EMOTIONS, normalise_emotion
from .load import Piece, arrow_rows
from .tabular import RawTable, read_table, read_text, require_columns, texts
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
    """The label names of a GoEmotions split, in id order (id = line number - 1), each a known emotion once."""
    if not path.exists() and not path.is_symlink():
        raise BadInputError("labels.txt not found beside the TSV files", file=str(path),
                            expected="labels.txt with one emotion name a line (label id = line number - 1)")
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines do not shift ids
    if not lines:
        raise BadInputError("the file is empty", file=str(path), expected="emotion names, one a line")
    names: list[str] = []
    for number, line in enumerate(lines, start=1):
        name = normalise_emotion(line)
        problem = ("an empty line (it would shift every later label id)" if not name else
                   "a NUL byte" if "\0" in line else
                   f"a repeated name (also on line {names.index(name) + 1})" if name in names else
                   "an unknown emotion name" if name not in DEFAULT_EMOTIONS else None)
        if problem:
            raise BadInputError(f"labels.txt line {number}: {problem}", file=str(path), row=number,
                                expected=f"one of the {len(DEFAULT_EMOTIONS)} GoEmotions names (27 emotions and "
                                "neutral), each once", found=line)
        names.append(name)
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
    pieces = []
    for f in files:
        table, long = read_goemotions_tsv(f, labels, _split_name(f))
        pieces.append(_piece(long, table, dataset, DEFAULT_EMOTIONS, _split_name(f),
                             ["label ids are integers indexing labels.txt", "comment ids unique in the dataset"]))
    check_unique_ids(pieces)
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
            ids = [int(i) for i in text_ids.split(",")]
            if any(not 0 <= i < len(names) for i in ids):
                raise IndexError(text_ids)
            from_classes = sorted(names[i] for i in ids)
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
        text = read_text(path)
        header = {normalise_emotion(c) for c in text.split("\n", 1)[0].split(",")}
        if set(ONEHOT_COLUMNS) <= header and len(header & set(DEFAULT_EMOTIONS)) >= 2:
            return "onehot"
    return "table"


def check_unique_ids(pieces: Sequence[Piece]) -> None:
    """Each stimulus id comes from one row of one file per dataset; no file is given twice.

    A repeated id (within a file or across the files of a dataset, with the same text or not) is
    refused: `extract` would otherwise pick one of its texts arbitrarily and profiles count it twice.
    """
    files: dict[tuple[str, Path], str] = {}
    for piece in pieces:
        if piece.source is None:
            continue
        key = (piece.partition["dataset"], Path(piece.source).resolve())
        if key in files:
            raise BadInputError("the same file is given twice for one dataset", file=str(piece.source),
                                expected="each file once", found=f"{piece.source} (also given as {files[key]})")
        files[key] = str(piece.source)
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for piece in pieces:
        dataset = piece.partition["dataset"]
        ids = piece.rows.column("stimulus_id").to_pylist()
        rows = piece.rows.column("source_row").to_pylist()
        for sid, row in zip(ids, rows):
            first = seen.setdefault((dataset, sid), (str(piece.source), row))
            if first != (str(piece.source), row):
                where = f"row {first[1]}" + ("" if first[0] == str(piece.source) else f" of {first[0]}")
                raise BadInputError("repeated stimulus id", file=str(piece.source), row=row, column="stimulus_id",
                                    expected=f"each stimulus id once in dataset {dataset!r}",
                                    found=f"{sid} (also at {where})")
