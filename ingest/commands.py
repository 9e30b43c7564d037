"""`emolake ingest ...`: Click commands over the readers; each validates everything, then writes once.

Every subcommand prints a short summary (`--json` for one JSON object). Re-loading a source
replaces its partition (dataset for stimuli, study for the other tables), so loads are idempotent.
Replacing a partition that another source loaded is refused (exit 2) unless `--replace` is given;
results computed from the replaced data then show as stale (`stale_results`, `emolake status`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from emolake.warehouse.lake import Lake

pass_lake = click.make_pass_decorator(Lake)
json_flag = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
emotions_option = click.option(
    "--emotions", default=None, metavar="LIST|FILE",
    help="Emotion set: the names labels may use, comma-separated or a file with one a line "
    "(default: GoEmotions 27 + neutral).",
)
replace_flag = click.option(
    "--replace", is_flag=True,
    help="Allow replacing partitions that another source loaded (results computed from them become stale).",
)
study_option = click.option("--study", required=True, help="Study id: the partition these rows replace.")


def _scale_options(fn):
    fn = click.option("--scale-max", type=float, default=None, help="Top of the rating scale.")(fn)
    return click.option("--scale-min", type=float, default=None, help="Bottom of the rating scale.")(fn)


def _ready(lake: Lake) -> Lake:
    if not lake.exists:
        lake.init()
    return lake


@contextlib.contextmanager
def _lake_kept_only_on_success(lake: Lake) -> Iterator[None]:
    """A failed ingest into a lake that did not exist leaves no lake (nor anything it created) behind."""
    if lake.exists:
        yield
        return
    before = lake.storage.entries(lake.root)  # None: nothing there yet
    try:
        yield
    except BaseException:
        lake.storage.remove_new(lake.root, before)  # an existing folder that was not a lake: only what we added
        raise


def _report(title: str, summary: dict, as_json: bool) -> None:
    from emolake.warehouse.console import print_summary

    print_summary(title, summary, as_json=as_json)


def _write(lake: Lake, pieces: list, command: str, replace: bool) -> dict:
    from .load import write_pieces

    with _lake_kept_only_on_success(lake):
        load_id = write_pieces(_ready(lake), pieces, command + (" --replace" if replace else ""), replace=replace)
    tables: dict[str, int] = {}
    for piece in pieces:
        tables[piece.table] = tables.get(piece.table, 0) + piece.rows.num_rows
    partitions = sorted({f"{p.table}/{p.partition_rel}" for p in pieces})
    return {"load_id": load_id, "rows": tables, "partitions": partitions,
            "validation": f"validation/*/*/{load_id}*.json"}


def _stimuli_summary(pieces: list, written: dict) -> dict:
    splits: dict[str, int] = {}
    stimuli: set[str] = set()
    for piece in pieces:
        ids = piece.rows.column("stimulus_id").to_pylist()
        for split, sid in zip(piece.rows.column("split").to_pylist(), ids):
            if sid not in stimuli:
                splits[split] = splits.get(split, 0) + 1
            stimuli.add(sid)
    return {"datasets": sorted({p.partition["dataset"] for p in pieces}), "stimuli": len(stimuli),
            "rows": written["rows"]["stimuli"], "stimuli_per_split": splits, "load_id": written["load_id"]}


@click.group()
def ingest() -> None:
    """Load stimuli, human ratings and the study's release into the lake (validated first).

    \b
    Example:
      emolake --lake lake ingest goemotions ../shared/data/goemotions
      emolake --lake lake ingest model-emotion ../shared/data/model_emotion --json
    """


@ingest.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dataset", default="goemotions", show_default=True, help="Dataset name: the partition replaced.")
@json_flag
@replace_flag
@pass_lake
def goemotions(lake: Lake, path: Path, dataset: str, as_json: bool, replace: bool) -> None:
    """GoEmotions original split: a folder with train/dev/test.tsv and labels.txt.

    \b
    Example:
      emolake --lake lake ingest goemotions ../shared/data/goemotions
    """
    from .stimuli import goemotions_pieces

    pieces = goemotions_pieces(path, dataset)
    _report(f"Stimuli from {path}", _stimuli_summary(pieces, _write(lake, pieces, f"ingest goemotions {path}", replace)), as_json)


@ingest.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--layout", type=click.Choice(["auto", "goemotions-tsv", "onehot", "table"]), default="auto",
              show_default=True, help="Input layout: auto reads .tsv as GoEmotions TSV, text/classes/ids + emotion "
              "columns as one-hot, else a generic table.")
@click.option("--text-col", default="text", show_default=True, help="Generic table: the text column.")
@click.option("--label-col", "label_cols", multiple=True, default=("label",), show_default=True,
              help="Generic table: label column(s) (repeat or comma-separate); cells hold emotion names "
              "(several separated by , ; |) or 0/1 in a column named after an emotion.")
@click.option("--split-col", default=None, help="Generic table: column holding the split.")
@click.option("--split", default=None, help="Split: the one of every row (default: the file name for GoEmotions layouts, "
              "'all' for a generic table).")
@click.option("--id-col", default=None, help="Generic table: stimulus id column (default: split-row).")
@click.option("--dataset", default=None, help="Dataset name: the partition replaced (default: goemotions for the GoEmotions layouts, "
              "the file name for a generic table).")
@emotions_option
@json_flag
@replace_flag
@pass_lake
def stimuli(lake: Lake, paths: tuple[Path, ...], layout: str, text_col: str, label_cols: tuple[str, ...],
            split_col: str | None, split: str | None, id_col: str | None, dataset: str | None,
            emotions: str | None, as_json: bool, replace: bool) -> None:
    """Stimuli from GoEmotions TSV, the one-hot CSV layout, or a generic CSV/Parquet table.

    All PATHS load together and replace their dataset: give every file of a dataset in one command.

    \b
    Example:
      emolake --lake lake ingest stimuli ../shared/data/model_emotion/Data/goemotions/dev.csv ../shared/data/model_emotion/Data/goemotions/test.csv --dataset goemotions-authors
      emolake --lake lake ingest stimuli my.csv --text-col sentence --label-col emotion --dataset mine
    """
    from .emotions import emotion_set
    from .stimuli import check_unique_ids, detect_layout, goemotions_pieces, read_generic, read_onehot_csv

    pieces = []
    for path in paths:
        kind = detect_layout(path) if layout == "auto" else layout
        if kind == "goemotions-tsv":
            pieces += goemotions_pieces(path, dataset or "goemotions")
        elif kind == "onehot":
            pieces.append(read_onehot_csv(path, dataset or "goemotions", split))
        else:
            pieces.append(read_generic(path, text_col=text_col, label_cols=label_cols, split_col=split_col,
                                       split=split, id_col=id_col, dataset=dataset, emotions=emotion_set(emotions)))
    check_unique_ids(pieces)
    _report("Stimuli", _stimuli_summary(pieces, _write(lake, pieces, "ingest stimuli " + " ".join(map(str, paths)), replace)),
            as_json)


@ingest.command()
@click.argument("path", type=click.Path(path_type=Path))
@study_option
@click.option("--instrument", default="ratings", show_default=True, help="Name of the questionnaire/instrument.")
@_scale_options
@emotions_option
@json_flag
@replace_flag
@pass_lake
def ratings(lake: Lake, path: Path, study: str, instrument: str, scale_min: float | None, scale_max: float | None,
            emotions: str | None, as_json: bool, replace: bool) -> None:
    """Human ratings, long form: rater, emotion, attribute, rating (+ scale_min, scale_max).

    Bounds come from the scale_min/scale_max columns, else --scale-min/--scale-max (default 1-9).
    Each rater's emotions x attributes must be complete; every emotion needs every attribute.

    \b
    Example:
      emolake --lake lake ingest ratings my_ratings.csv --study mystudy --scale-min 1 --scale-max 7
    """
    from .emotions import emotion_set
    from .ratings import DEFAULT_SCALE, read_ratings

    scale = (scale_min if scale_min is not None else DEFAULT_SCALE[0],
             scale_max if scale_max is not None else DEFAULT_SCALE[1])
    piece = read_ratings(path, study=study, emotions=emotion_set(emotions), scale=scale, instrument=instrument)
    written = _write(lake, [piece], f"ingest ratings {path} --study {study}", replace)
    raters = len(set(piece.rows.column("rater").to_pylist()))
    _report(f"Ratings from {path}", {"study": study, "rows": piece.rows.num_rows, "raters": raters,
                                     "emotions": len(set(piece.rows.column("emotion").to_pylist())),
                                     "attributes": len(set(piece.rows.column("attribute").to_pylist())),
                                     "load_id": written["load_id"]}, as_json)


@ingest.command()
@click.argument("path", type=click.Path(path_type=Path))
@study_option
@emotions_option
@json_flag
@replace_flag
@pass_lake
def attributes(lake: Lake, path: Path, study: str, emotions: str | None, as_json: bool, replace: bool) -> None:
    """Per-emotion attribute values: long (emotion, attribute, value) or wide (emotion + one column each).

    \b
    Example:
      emolake --lake lake ingest attributes my_attributes.csv --study mystudy
    """
    from .attributes import read_attributes
    from .emotions import emotion_set

    piece = read_attributes(path, study=study, emotions=emotion_set(emotions))
    written = _write(lake, [piece], f"ingest attributes {path} --study {study}", replace)
    _report(f"Attributes from {path}", {
        "study": study, "rows": piece.rows.num_rows,
        "emotions": len(set(piece.rows.column("emotion").to_pylist())),
        "attributes": len(set(piece.rows.column("attribute").to_pylist())), "load_id": written["load_id"]}, as_json)


@ingest.command()
@click.argument("path", type=click.Path(path_type=Path))
@study_option
@_scale_options
@emotions_option
@json_flag
@replace_flag
@pass_lake
def similarity(lake: Lake, path: Path, study: str, scale_min: float | None, scale_max: float | None,
               emotions: str | None, as_json: bool, replace: bool) -> None:
    """Pairwise judgments: rater, emotion_a, emotion_b, distance (or similarity with --scale-min/--scale-max).

    A similarity s on [min, max] is stored as distance = min + max - s. Pairs are stored with
    emotion_a < emotion_b.

    \b
    Example:
      emolake --lake lake ingest similarity judgments.csv --study mystudy --scale-min 1 --scale-max 9
    """
    from .attributes import read_similarity
    from .emotions import emotion_set

    scale = None
    if scale_min is not None or scale_max is not None:
        if scale_min is None or scale_max is None:
            raise click.UsageError("give both --scale-min and --scale-max")
        scale = (scale_min, scale_max)
    piece = read_similarity(path, study=study, emotions=emotion_set(emotions), scale=scale)
    written = _write(lake, [piece], f"ingest similarity {path} --study {study}", replace)
    _report(f"Similarity judgments from {path}", {
        "study": study, "rows": piece.rows.num_rows, "raters": len(set(piece.rows.column("rater").to_pylist())),
        "load_id": written["load_id"]}, as_json)


@ingest.command("model-emotion")
@click.argument("path", type=click.Path(path_type=Path))
@json_flag
@replace_flag
@pass_lake
def model_emotion(lake: Lake, path: Path, as_json: bool, replace: bool) -> None:
    """The study's release (a checkout of model_emotion; .csv or .csv.gz) as study li2024.

    Loads affective, physical and raw appraisal ratings (with the study's exclusion rules; excluded
    raters in rater_exclusions), the PsychoPy similarity logs, the authors' preprocessed distances
    (studies li2024-preprocessed, li2024-preprocessed-avg) and the published 27 x 14 attribute table.

    \b
    Example:
      emolake --lake lake ingest model-emotion ../shared/data/model_emotion
    """
    from .release import ingest_release

    with _lake_kept_only_on_success(lake):
        summary = ingest_release(_ready(lake), path, command=f"ingest model-emotion {path}" + (" --replace" if replace else ""),
                                 replace=replace)
    _report(f"Release {path}", summary, as_json)
