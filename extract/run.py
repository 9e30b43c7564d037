"""One extraction run: stimuli from the lake -> FFN activations in the lake, resumable, with a manifest.

The run id defaults to a hash of what decides the data (model weights, tokenizer files, neuron
definition, compute dtype, chat template, dataset, split, template, position, limit, emotions), so the same command finds the same run again. The run is cut into
fixed chunks of stimuli (in selection order); each chunk is captured and written as one file per
layer before the next starts, so memory stays flat and an interrupted run (Ctrl-C, kill -9)
resumes by writing only the chunks the lake does not hold (each chunk is one lake commit). The
`runs` row says 'running' until the last chunk is written, then 'complete'; rerunning a complete
run does nothing. A lock per run id makes a second, concurrent `extract` of the run fail at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from emolake.extract import store
from emolake.extract.capture import build_prompts, capture, encode, tokenizer_settings
from emolake.extract.models.families import DEFAULT_NEURON
from emolake.extract.models.loading import LoadedModel, load_model
from emolake.extract.prompts import check_position, check_template, default_position, default_template
from emolake.warehouse.database import connect
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake
from emolake.warehouse.tables import TABLES
from emolake.warehouse.version import code_version, package_versions

CHUNK_BYTES = 8 << 20  # target bytes of float32 activations per layer file; bounds memory per chunk
SEED = 0  # extraction draws nothing at random; seeded and recorded all the same


@dataclass(frozen=True)
class ExtractSettings:
    model: str | None = None  # name or path; None = the bundled all-MiniLM-L6-v2
    dataset: str = "goemotions"
    split: str | None = None  # None = every split of the dataset
    template: str | None = None  # None = the model's default (extract.prompts.default_template)
    position: str | None = None  # None = the model's default: last (causal), mask (MLM head), mean (encoder)
    run_id: str | None = None
    run_set: str | None = None
    batch_size: int = 32
    limit: int | None = None
    emotions: tuple[str, ...] | None = None
    device: str = "cpu"
    chunk_size: int | None = None  # stimuli per chunk; default from CHUNK_BYTES and d_ff
    neuron: str = DEFAULT_NEURON  # mlp_post | mlp_gate (extract.models.families)
    dtype: str = "float32"  # compute dtype; activations are stored as float32
    chat: bool = False  # wrap each prompt in the tokenizer's chat template
    padding_side: str = "right"  # results do not depend on it (tested); recorded in tokenizer_settings

    def resolved(self, loaded: LoadedModel) -> "ExtractSettings":
        """These settings with the model's default position and template filled in, and checked."""
        position = self.position or default_position(loaded.causal, loaded.has_mlm_head)
        template = self.template or default_template(position, loaded.causal)
        check_position(position, loaded.causal)
        check_template(template, position)
        return replace(self, position=position, template=template)


@dataclass
class Stimuli:
    ids: list[str]
    texts: list[str]

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for sid, text in zip(self.ids, self.texts):
            digest.update(sid.encode() + b"\0" + text.encode() + b"\0")
        return digest.hexdigest()


def select_stimuli(lake: Lake, dataset: str, split: str | None, emotions: tuple[str, ...] | None,
                   limit: int | None) -> Stimuli:
    """Distinct stimuli of a dataset (optionally one split, some emotions), in source order."""
    where, params = ["dataset = ?"], [dataset]
    if split is not None:
        where.append("split = ?")
        params.append(split)
    if emotions:
        where.append(f"emotion IN ({', '.join('?' for _ in emotions)})")
        params.extend(emotions)
    sql = (f"SELECT stimulus_id, any_value(text) AS text, min(source_row) AS source_row FROM stimuli "
           f"WHERE {' AND '.join(where)} GROUP BY stimulus_id ORDER BY source_row, stimulus_id")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with connect(lake) as con:
        rows = con.execute(sql, params).fetchall()
        if not rows:
            datasets = [r[0] for r in con.execute("SELECT DISTINCT dataset || '/' || split FROM stimuli ORDER BY 1").fetchall()]
            raise NotFoundError(
                f"no stimuli for dataset {dataset!r}" + (f", split {split!r}" if split else "")
                + (f", emotions {list(emotions)}" if emotions else ""),
                expected=f"one of {datasets}" if datasets else "stimuli in the lake (run `ingest goemotions` first)")
    return Stimuli([r[0] for r in rows], [r[1] for r in rows])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def default_run_id(settings: ExtractSettings, loaded: LoadedModel) -> str:
    """'<model>-<dataset>-<split>-<position>-<hash>': the same settings give the same id."""
    key = json.dumps({
        "weights_sha256": loaded.weights_sha256, "tokenizer_sha256": loaded.tokenizer_sha256,
        "neuron": loaded.neuron, "dtype": loaded.dtype, "chat": settings.chat,
        "dataset": settings.dataset, "split": settings.split,
        "template": settings.template, "position": settings.position, "limit": settings.limit,
        "emotions": sorted(settings.emotions) if settings.emotions else None,
    }, sort_keys=True)
    model = _slug(loaded.name.rstrip("/").rsplit("/", 1)[-1])
    parts = [model, _slug(settings.dataset), _slug(settings.split or "all"), settings.position]
    if loaded.neuron != DEFAULT_NEURON:
        parts.append(_slug(loaded.neuron))
    return "-".join(parts + [hashlib.sha256(key.encode()).hexdigest()[:10]])


def check_run_id(run_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*", run_id) or run_id == "_empty":
        raise BadInputError("bad run id", column="run_id", expected="letters, digits, '.', '_', '-'", found=run_id)
    return run_id


def read_manifest(lake: Lake, run_id: str) -> dict | None:
    files = lake.live_paths("runs", f"run_id={run_id}")
    if not files:
        return None
    rows = pa.concat_tables(lake.read_table(p) for p in files).to_pylist()
    return rows[-1] if rows else None


# Manifest fields that must match for a run to be resumed rather than refused.
RESUME_KEYS = ("model", "weights_sha256", "tokenizer_sha256", "template", "position", "dataset", "split", "emotions",
               "limit", "stimuli_sha256", "batch_size", "chunk_size", "n_layers", "d_ff", "hook_point", "neuron",
               "dtype", "tokenizer_settings")


def build_manifest(run_id: str, settings: ExtractSettings, loaded: LoadedModel, stimuli: Stimuli,
                   chunk_size: int) -> dict:
    return {
        "run_id": run_id, "run_set": settings.run_set or run_id, "status": "running", "source": "emolake extract",
        "model": loaded.name, "model_class": type(loaded.model).__name__, "weights_sha256": loaded.weights_sha256,
        "tokenizer": loaded.name, "tokenizer_sha256": loaded.tokenizer_sha256,
        "tokenizer_settings": json.dumps(tokenizer_settings(loaded, settings.padding_side, settings.chat),
                                         sort_keys=True),
        "template": settings.template, "position": settings.position, "hook_point": loaded.hook_point,
        "neuron": loaded.neuron, "dtype": loaded.dtype, "device": loaded.device, "batch_size": settings.batch_size, "chunk_size": chunk_size,
        "seed": SEED, "dataset": settings.dataset, "split": settings.split,
        "emotions": ",".join(sorted(settings.emotions)) if settings.emotions else None, "limit": settings.limit,
        "stimuli_sha256": stimuli.sha256(), "n_stimuli": len(stimuli.ids), "n_layers": loaded.n_layers,
        "d_ff": loaded.d_ff, "package_versions": json.dumps(package_versions(), sort_keys=True),
        "code_version": code_version(), "created_at": datetime.now(timezone.utc), "finished_at": None,
    }


def write_manifest(lake: Lake, manifest: dict, command: str) -> None:
    row = {k: v for k, v in manifest.items() if k != "run_id"}
    with lake.transaction(command) as txn:
        txn.write("runs", pa.Table.from_pylist([row], schema=TABLES["runs"].schema), {"run_id": manifest["run_id"]})


def extract_run(lake: Lake, settings: ExtractSettings, loaded: LoadedModel | None = None,
                on_start: Callable[[int, int], None] | None = None, on_progress: Callable[[int], None] | None = None,
                command: str = "extract") -> dict:
    """Run (or resume) an extraction; returns a summary.

    `on_start(total, already_done)` is called once the work is known, `on_progress(n)` after every batch.
    """
    lake.require()
    lake.init()  # seeds the extraction tables in lakes created before they existed
    if settings.template is not None and settings.position is not None:
        check_template(settings.template, settings.position)  # before the model loads
    if settings.batch_size < 1:
        raise BadInputError("batch size must be at least 1", column="batch_size", found=settings.batch_size)
    stimuli = select_stimuli(lake, settings.dataset, settings.split, settings.emotions, settings.limit)
    loaded = loaded or load_model(settings.model, settings.device, settings.dtype, settings.neuron)
    if loaded.neuron != settings.neuron:
        raise BadInputError("the loaded model reads another neuron definition than the settings", column="neuron",
                            expected=settings.neuron, found=loaded.neuron)
    settings = settings.resolved(loaded)
    torch.manual_seed(SEED)
    run_id = check_run_id(settings.run_id or default_run_id(settings, loaded))
    # One extraction per run at a time: a second one (same --run-id) fails at once, naming the first.
    with lake.run_lock(run_id, command).held(), lake.writing(command):
        return _extract_locked(lake, settings, loaded, run_id, stimuli, command, on_start, on_progress)


def _extract_locked(lake: Lake, settings: ExtractSettings, loaded: LoadedModel, run_id: str, stimuli: Stimuli,
                    command: str, on_start: Callable[[int, int], None] | None,
                    on_progress: Callable[[int], None] | None) -> dict:
    chunk_size = settings.chunk_size or max(settings.batch_size, CHUNK_BYTES // (4 * loaded.d_ff))
    manifest = build_manifest(run_id, settings, loaded, stimuli, chunk_size)
    previous = read_manifest(lake, run_id)
    if previous is not None:
        changed = [k for k in RESUME_KEYS if previous.get(k) != manifest.get(k)]
        if changed:
            raise BadInputError(
                f"run {run_id!r} already exists with other settings ({', '.join(changed)}); "
                "rerun with its original settings to resume, or choose another --run-id",
                column=changed[0], expected=previous.get(changed[0]), found=manifest.get(changed[0]))
        if previous["status"] == "complete":
            return {"run_id": run_id, "status": "already complete", "n_stimuli": previous["n_stimuli"],
                    "chunks_written": 0, "message": f"run {run_id} is already complete: nothing to do"}
        manifest["created_at"] = previous["created_at"]
    else:
        write_manifest(lake, manifest, command)

    n = len(stimuli.ids)
    chunks = [(k, range(start, min(start + chunk_size, n))) for k, start in enumerate(range(0, n, chunk_size))]
    done = store.done_chunks(lake, run_id, loaded.n_layers)
    todo = [(k, rows) for k, rows in chunks if k not in done]
    done_before = n - sum(len(rows) for _, rows in todo)
    if on_start:
        on_start(n, done_before)
    for k, rows in todo:
        ids = [stimuli.ids[i] for i in rows]
        prompts, spans = build_prompts(loaded, [stimuli.texts[i] for i in rows], settings.template, settings.position,
                                       settings.chat)
        encoded = encode(loaded, prompts, settings.position, ids, spans, settings.chat)
        captured = capture(loaded, encoded, settings.position, settings.batch_size, on_batch=on_progress,
                           padding_side=settings.padding_side)
        row_ids = ids if captured.tokens is None else list(np.repeat(np.array(ids, dtype=object), encoded.lengths()))
        with lake.transaction(f"{command} (chunk {k})") as txn:  # one commit per chunk, all its layers
            for layer in range(loaded.n_layers):
                table = store.activation_table(row_ids, captured.layer(layer), captured.tokens)
                txn.write("activations", table, {"run_id": run_id, "layer": layer}, replace=False,
                          part_name=store.chunk_name(k))
        del captured
    manifest.update(status="complete", finished_at=datetime.now(timezone.utc))
    write_manifest(lake, manifest, command)
    return {"run_id": run_id, "status": "complete" if done_before == 0 else "resumed and complete",
            "n_stimuli": n, "chunks_written": len(todo), "chunks": len(chunks), "n_layers": loaded.n_layers,
            "d_ff": loaded.d_ff, "n_neurons": loaded.n_layers * loaded.d_ff, "model": loaded.name,
            "position": settings.position, "neuron": loaded.neuron}
