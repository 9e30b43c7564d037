"""Release-part loader: the study's masking (ablation) accuracies into the ablation tables.

`Result/masking/RoBERTa/RSA_tau_14property/Acc_perSeed_JSON/{emotion}-{seed}.json` holds, per emotion
and prompt-tuning seed, the accuracy after zeroing the top-k neurons of each attribute (keys
`{attribute}_top{k}`, face attributes shortened: `happy` = `happy-face`) and `best` (unablated);
`.../random/Acc_perSeed_JSON/` the same after zeroing k random neurons (`{attribute}_random{k}`: the
study drew one random set per attribute and k). Rows land in run set `li2024-roberta`, study `li2024`,
replicate = seed, so the ablation views give the study's statistics from its own numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa

from emolake.ingest.emotions import GOEMOTIONS_27, normalise_emotion
from emolake.ingest.tabular import read_text
from emolake.warehouse.errors import BadInputError
from emolake.warehouse.lake import LakeTransaction, sha256_file

RUN_SET, STUDY = "li2024-roberta", "li2024"
MASKING_DIR = Path("Result/masking/RoBERTa")
FOLDERS = {"attribute": "RSA_tau_14property/Acc_perSeed_JSON", "random": "random/Acc_perSeed_JSON"}
KEY_PATTERN = {"attribute": re.compile(r"^(?P<attr>.+)_top(?P<k>\d+)$"),
               "random": re.compile(r"^(?P<attr>.+)_random(?P<k>\d+)$")}
FILE_PATTERN = re.compile(r"^(?P<emotion>[a-z_]+)-(?P<seed>\d+)\.json$")

# The release's short attribute names -> the published attribute table's names.
RELEASE_ATTRIBUTES = {
    "arousal": "arousal", "valence": "valence",
    "happy": "happy-face", "anger": "anger-face", "sad": "sad-face", "fear": "fear-face",
    "surprise": "surprise-face", "disgust": "disgust-face",
    "control": "control", "fairness": "fairness", "self-related": "self-relativity",
    "other-related": "other-relativity", "expectedness": "expectedness", "non-novelty": "novelty",
}


def _accuracy(value: object, file: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise BadInputError("accuracy out of range", file=str(file), column=key, expected="a number in [0, 1]",
                            found=value)
    return float(value)


def read_masking_file(path: Path, kind: str) -> list[dict]:
    """Rows (emotion, seed, kind, attribute, k, accuracy) of one released JSON file, validated."""
    match = FILE_PATTERN.match(path.name)
    if not match:
        raise BadInputError("unexpected file name", file=str(path), expected="{emotion}-{seed}.json", found=path.name)
    emotion, seed = normalise_emotion(match["emotion"]), int(match["seed"])
    if emotion not in GOEMOTIONS_27:
        raise BadInputError("unknown emotion", file=str(path), expected="one of the 27 GoEmotions emotions",
                            found=emotion)
    try:
        record = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"not valid JSON ({exc})", file=str(path)) from exc
    if not isinstance(record, dict) or "best" not in record:
        raise BadInputError("missing the unablated accuracy", file=str(path), column="best", expected="a key 'best'")
    if normalise_emotion(record.get("sentiment", emotion)) != emotion or int(record.get("seed", seed)) != seed:
        raise BadInputError("file name and contents disagree", file=str(path), column="sentiment/seed",
                            expected=f"{emotion}, {seed}", found=f"{record.get('sentiment')}, {record.get('seed')}")
    rows = [{"emotion": emotion, "seed": seed, "kind": "unablated", "attribute": None, "k": 0,
             "accuracy": _accuracy(record["best"], path, "best")}]
    for key, value in record.items():
        if key in ("best", "sentiment", "seed"):
            continue
        parsed = KEY_PATTERN[kind].match(key)
        if not parsed or parsed["attr"] not in RELEASE_ATTRIBUTES:
            raise BadInputError("unknown key", file=str(path), column=key,
                                expected=f"{{attribute}}_{'top' if kind == 'attribute' else 'random'}{{k}} with "
                                         f"attribute in {sorted(RELEASE_ATTRIBUTES)}", found=key)
        rows.append({"emotion": emotion, "seed": seed, "kind": kind, "attribute": RELEASE_ATTRIBUTES[parsed["attr"]],
                     "k": int(parsed["k"]), "accuracy": _accuracy(value, path, key)})
    return rows


def read_released_masking(release: Path) -> tuple[pd.DataFrame, list[Path]]:
    """All masking rows of a release (validated), and the files read. Unablated rows come from both
    folders and must agree."""
    base = Path(release) / MASKING_DIR
    rows, files = [], []
    for kind, folder in FOLDERS.items():
        directory = base / folder
        if not directory.is_dir():
            raise BadInputError("masking results folder missing", file=str(directory))
        found = sorted(directory.glob("*.json"))
        if not found:
            raise BadInputError("no masking result files", file=str(directory), expected="{emotion}-{seed}.json files")
        for path in found:
            rows += read_masking_file(path, kind)
        files += found
    frame = pd.DataFrame(rows)
    unablated = frame[frame["kind"] == "unablated"]
    spread = unablated.groupby(["emotion", "seed"])["accuracy"].agg(lambda a: a.max() - a.min())
    if (spread > 1e-9).any():
        emotion, seed = spread[spread > 1e-9].index[0]
        raise BadInputError("the two folders disagree on the unablated accuracy", file=f"{emotion}-{seed}.json",
                            column="best")
    frame = pd.concat([frame[frame["kind"] != "unablated"], unablated.drop_duplicates(["emotion", "seed"])])
    duplicated = frame.duplicated(["emotion", "seed", "kind", "attribute", "k"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise BadInputError("duplicate result", file=f"{row['emotion']}-{row['seed']}.json", column=row["attribute"])
    return frame.reset_index(drop=True), files


def masking_tables(frame: pd.DataFrame) -> dict[int, tuple[pa.Table, pa.Table]]:
    """k -> (ablations rows, ablation_accuracy rows) for the lake."""
    frame = frame.copy()
    frame["condition_id"] = [
        "unablated" if kind == "unablated" else f"{kind}:{attribute}:k{k}:d0"
        for kind, attribute, k in zip(frame["kind"], frame["attribute"], frame["k"])
    ]
    out = {}
    for k, group in frame.groupby("k", sort=True):
        conditions = group.drop_duplicates("condition_id")
        n = len(conditions)
        ablations = pa.table({
            "condition_id": conditions["condition_id"].tolist(), "kind": conditions["kind"].tolist(),
            "attribute": conditions["attribute"].tolist(), "draw": [0] * n, "seed": pa.nulls(n, pa.int64()),
            "layer_matched": [False] * n, "scope": ["global"] * n, "mode": ["zero"] * n,
            "mode_value": [0.0] * n, "neurons": pa.nulls(n, pa.list_(pa.int32())), "source": ["li2024-release"] * n,
        })
        m = len(group)
        accuracy = pa.table({
            "condition_id": group["condition_id"].tolist(), "emotion": group["emotion"].tolist(),
            "replicate": group["seed"].astype("int64").tolist(), "inference_id": ["li2024-soft-prompt"] * m,
            "model": ["roberta-base"] * m, "dataset": ["li2024-goemotions"] * m, "split": ["dev"] * m,
            "n_stimuli": pa.nulls(m, pa.int64()), "accuracy": group["accuracy"].tolist(),
        })
        out[int(k)] = (ablations, accuracy)
    return out


def load_released_masking(release: Path, txn: LakeTransaction, summary: dict) -> None:
    """Stage the release's masking results (and their paired tests) in `txn`; counts go to `summary`.

    The importance link needs human attribute importance: after the transaction commits, run
    `analysis.ablation_stats.refresh_ablation_statistics(lake, 'li2024-roberta', 'li2024')`
    (or `emolake ablation-stats --run-set li2024-roberta --study li2024`).
    """
    from emolake.analysis.ablation_stats import tests_table

    frame, files = read_released_masking(Path(release))
    source = str(Path(release) / MASKING_DIR)
    digest = _files_digest(files)
    for k, (ablations, accuracy) in masking_tables(frame).items():
        partition = {"run_set": RUN_SET, "study": STUDY, "k": k}
        txn.write("ablations", ablations, partition, source_path=source, source_sha256=digest)
        txn.write("ablation_accuracy", accuracy, partition, source_path=source, source_sha256=digest)
    results = frame.rename(columns={"kind": "condition", "seed": "replicate"}).assign(draw=0)
    txn.write("ablation_tests", tests_table(results), {"run_set": RUN_SET, "study": STUDY},
              source_path=source, source_sha256=digest)
    summary["masking files"] = len(files)
    summary["masking accuracies"] = len(frame)


def _files_digest(files: list[Path]) -> str:
    """One sha256 over the per-file hashes (name + hash), for the load manifest."""
    import hashlib

    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.parent.name}/{path.name}:{sha256_file(path)}\n".encode())
    return digest.hexdigest()
