"""The study's released RoBERTa activations and accuracies, read from its release layout into runs.

`Data/raw_data/PLM/prompt_tuning_RoBERTa/neurons_activation_before_relu/{emotion}-{seed}.csv[.gz]`
holds, per emotion and seed, a header `0..36863` and one row: the FFN activations (post-GELU,
despite the folder name) of frozen RoBERTa-base, 12 layers x 3,072 units layer-major, at the
`<mask>` of that emotion's soft-prompt-tuned prompt. Each seed becomes one run
`li2024-roberta-seed{seed}` (run_set `li2024-roberta`) over the 27 prompts, stored exactly as
extraction runs are (`activations`, `runs`); `accuracy.csv` becomes `release_accuracy`.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from emolake.extract.store import activation_table
from emolake.ingest.emotions import GOEMOTIONS_27, normalise_emotion
from emolake.ingest.tabular import read_text
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake, LakeTransaction, sha256_file
from emolake.warehouse.tables import TABLES
from emolake.warehouse.version import code_version, package_versions

RELEASE_MODEL_DIR = Path("Data/raw_data/PLM/prompt_tuning_RoBERTa")
ACTIVATION_DIR = RELEASE_MODEL_DIR / "neurons_activation_before_relu"
N_LAYERS, D_FF = 12, 3072
RUN_SET = "li2024-roberta"
DATASET = "li2024-prompts"
SPLIT = "prompt"
HOOK_POINT = "roberta.encoder.layer.{layer}.intermediate"
_HEADER = ",".join(map(str, range(N_LAYERS * D_FF)))


def release_run_id(seed: int) -> str:
    return f"{RUN_SET}-seed{seed}"


def _read_text(path: Path) -> tuple[str, str]:
    """(text, sha256 of the file bytes); `.gz` files are decompressed."""
    return read_text(path), sha256_file(path)


def activation_files(release: Path) -> dict[tuple[str, int], Path]:
    """{(emotion, seed): file} over the release folder; every emotion must have every seed."""
    folder = release / ACTIVATION_DIR
    if not folder.is_dir():
        raise NotFoundError(f"no released activations folder at {folder}")
    found: dict[tuple[str, int], Path] = {}
    for path in sorted(folder.iterdir()):
        name = path.name
        stem = name[:-7] if name.endswith(".csv.gz") else name[:-4] if name.endswith(".csv") else None
        if stem is None:
            continue
        emotion, _, seed = stem.rpartition("-")
        emotion = normalise_emotion(emotion)
        if emotion not in GOEMOTIONS_27 or not seed.isdigit():
            raise BadInputError("file name is not {emotion}-{seed}.csv[.gz] of a GoEmotions emotion", file=str(path),
                                expected=f"one of {', '.join(GOEMOTIONS_27)}, then an integer seed", found=name)
        key = (emotion, int(seed))
        if key in found:
            raise BadInputError("two files for the same emotion and seed", file=str(path), found=found[key].name)
        found[key] = path
    if not found:
        raise NotFoundError(f"no {{emotion}}-{{seed}}.csv[.gz] files in {folder}")
    emotions = sorted({e for e, _ in found})
    seeds = sorted({s for _, s in found})
    for emotion in emotions:
        for seed in seeds:
            if (emotion, seed) not in found:
                raise BadInputError("missing released activation file", file=str(folder / f"{emotion}-{seed}.csv.gz"),
                                    expected=f"every emotion for every seed {seeds}")
    return found


def read_activation_csv(path: Path) -> tuple[np.ndarray, str]:
    """(`[N_LAYERS * D_FF]` float32 activations, file sha256) from one released file, validated."""
    text, sha = _read_text(path)
    lines = [line for line in text.splitlines() if line.strip()]
    n = N_LAYERS * D_FF
    if len(lines) != 2:
        raise BadInputError("expected a header row and one data row", file=str(path), found=f"{len(lines)} rows")
    header = lines[0].split(",") if lines[0] != _HEADER else None
    if header is not None and len(header) != n:
        raise BadInputError("wrong column count in the header", file=str(path),
                            expected=f"{n} columns (12 layers x 3072 units)", found=len(header))
    for i, name in enumerate(header or []):
        if name.strip().strip('"') != str(i):
            raise BadInputError("header is not 0..36863", file=str(path), column=str(i), expected=str(i), found=name)
    fields = lines[1].split(",")
    if len(fields) != n:
        raise BadInputError("wrong column count (line 2 of the file)", file=str(path), row=1, expected=f"{n} values",
                            found=len(fields))
    try:
        values = np.array(fields, dtype=np.float64)
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        for i, field in enumerate(fields):
            try:
                ok = math.isfinite(float(field))
            except ValueError:
                ok = False
            if not ok:
                raise BadInputError("not a finite number (line 2 of the file)", file=str(path), row=1, column=str(i),
                                    expected="a finite number", found=field)
    return values.astype(np.float32), sha


def read_accuracy(path: Path) -> pa.Table:
    """`accuracy.csv` (sentiment, random_seed, accuracy) -> release_accuracy rows, validated."""
    import csv
    import io

    text, _ = _read_text(path)
    reader = csv.DictReader(io.StringIO(text))
    wanted = ["sentiment", "random_seed", "accuracy"]
    if reader.fieldnames is None or any(c not in reader.fieldnames for c in wanted):
        raise BadInputError("missing columns in the header", file=str(path), expected=", ".join(wanted),
                            found=reader.fieldnames)
    rows = []
    for i, row in enumerate(reader, start=1):  # data rows, the header not counted (README)
        emotion = normalise_emotion(row["sentiment"])
        if emotion not in GOEMOTIONS_27:
            raise BadInputError("unknown emotion", file=str(path), row=i, column="sentiment",
                                expected="a GoEmotions emotion", found=row["sentiment"])
        try:
            seed, accuracy = int(row["random_seed"]), float(row["accuracy"])
        except (TypeError, ValueError):
            column = "random_seed" if not str(row["random_seed"]).strip().isdigit() else "accuracy"
            raise BadInputError("not a number", file=str(path), row=i, column=column, found=row[column]) from None
        if not 0.0 <= accuracy <= 1.0:  # NaN fails this too
            raise BadInputError("accuracy out of range", file=str(path), row=i, column="accuracy",
                                expected="0..1", found=accuracy)
        rows.append({"run_id": release_run_id(seed), "emotion": emotion, "seed": seed, "accuracy": accuracy,
                     "source": str(path)})
    return pa.Table.from_pylist(rows, schema=TABLES["release_accuracy"].schema)


def _check_accuracy_matches(accuracy: pa.Table, path: Path, seeds: list[int], emotions: list[str]) -> None:
    """Every accuracy row belongs to a released run (seed) and prompt (emotion), once."""
    seen: dict[tuple[int, str], int] = {}
    for row, (seed, emotion) in enumerate(zip(accuracy.column("seed").to_pylist(),
                                              accuracy.column("emotion").to_pylist()), start=1):
        if seed not in seeds:
            raise BadInputError("accuracy for a seed without released activations", file=str(path), row=row,
                                column="random_seed", expected=f"one of the released seeds {seeds}", found=seed)
        if emotion not in emotions:
            raise BadInputError("accuracy for an emotion without released activations", file=str(path), row=row,
                                column="sentiment", expected=f"one of the {len(emotions)} released emotions",
                                found=emotion)
        first = seen.setdefault((seed, emotion), row)
        if first != row:
            raise BadInputError("repeated accuracy row", file=str(path), row=row, column="sentiment",
                                expected="each emotion and seed once", found=f"{emotion}, seed {seed} (also at row {first})")


def _manifest(seed: int, stimuli_sha256: str, source: str, now: datetime) -> dict:
    return {
        "run_set": RUN_SET, "status": "complete", "source": source,
        "model": "roberta-base", "model_class": "RobertaForMaskedLM (frozen, soft-prompt-tuned per emotion)",
        "weights_sha256": None, "tokenizer": "roberta-base", "tokenizer_settings": None,
        "template": "<soft prompt tuned for the emotion> <mask>", "position": "mask", "hook_point": HOOK_POINT, "neuron": "mlp_post",
        "dtype": "float32", "device": None, "batch_size": None, "chunk_size": None, "seed": seed,
        "dataset": DATASET, "split": SPLIT, "emotions": None, "limit": None, "stimuli_sha256": stimuli_sha256,
        "n_stimuli": 27, "n_layers": N_LAYERS, "d_ff": D_FF, "package_versions": json.dumps(package_versions(), sort_keys=True),
        "code_version": code_version(), "created_at": now, "finished_at": now,
    }


def load_released_activations(release: Path, target: LakeTransaction | Lake, summary: dict) -> None:
    """Load the release's activations (one run per seed), prompts and accuracies into the lake.

    Everything is read and validated before anything is staged; with a `Lake`, one transaction of
    its own; with a `LakeTransaction`, the caller's (so one `ingest model-emotion` is all-or-nothing).
    Adds counts to `summary`.
    """
    if isinstance(target, Lake):
        with target.transaction("ingest released activations") as txn:
            return load_released_activations(release, txn, summary)
    release = Path(release)
    files = activation_files(release)
    emotions = sorted({e for e, _ in files})
    seeds = sorted({s for _, s in files})
    values: dict[int, np.ndarray] = {}  # seed -> [n_emotions, N_LAYERS * D_FF]
    hashes: dict[int, str] = {}
    for seed in seeds:
        rows, digest = [], hashlib.sha256()
        for emotion in emotions:
            row, sha = read_activation_csv(files[(emotion, seed)])
            rows.append(row)
            digest.update(f"{files[(emotion, seed)].name} {sha}\n".encode())
        values[seed] = np.stack(rows)
        hashes[seed] = digest.hexdigest()
    accuracy_path = next((p for p in (release / RELEASE_MODEL_DIR / "accuracy.csv",
                                      release / RELEASE_MODEL_DIR / "accuracy.csv.gz") if p.exists()), None)
    accuracy = read_accuracy(accuracy_path) if accuracy_path else None
    if accuracy is not None:
        _check_accuracy_matches(accuracy, accuracy_path, seeds, emotions)

    stimuli = pa.table({
        "split": [SPLIT] * len(emotions), "stimulus_id": emotions,
        "text": [f"<soft prompt tuned for {e}> <mask>" for e in emotions], "emotion": emotions,
        "n_labels": [1] * len(emotions), "source_row": list(range(len(emotions))),
    })
    stimuli_sha = hashlib.sha256("".join(f"{e}\0" for e in emotions).encode()).hexdigest()
    txn = target
    folder = release / ACTIVATION_DIR
    txn.write("stimuli", stimuli, {"dataset": DATASET}, source_path=str(folder))
    now = datetime.now(timezone.utc)
    for seed in seeds:
        run_id = release_run_id(seed)
        for layer in range(N_LAYERS):
            table = activation_table(emotions, values[seed][:, layer * D_FF:(layer + 1) * D_FF])
            txn.write("activations", table, {"run_id": run_id, "layer": layer},
                      source_path=str(folder / f"*-{seed}.csv*"), source_sha256=hashes[seed])
        manifest = _manifest(seed, stimuli_sha, f"li2024 release: {folder}", now)
        txn.write("runs", pa.Table.from_pylist([manifest], schema=TABLES["runs"].schema), {"run_id": run_id},
                  source_path=str(folder), source_sha256=hashes[seed])
    if accuracy is not None:
        txn.write("release_accuracy", accuracy, {"run_set": RUN_SET}, source_path=str(accuracy_path))
    summary["released_runs"] = len(seeds)
    summary["released_prompts"] = len(emotions)
    summary["released_activations"] = len(seeds) * len(emotions) * N_LAYERS * D_FF
    summary["release_accuracy_rows"] = accuracy.num_rows if accuracy is not None else 0
