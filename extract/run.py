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
    rows = pa.concat_tables(pq.read_table(p) for p in files).to_pylist()
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


# --- Prompt activations (`extract --prompts`): the study's emotion representations.

PROMPT_SPLIT = "prompt"  # the split of a prompt dataset's stimuli, as in the release's `li2024-prompts`


def prompt_stimulus_id(emotion: str) -> str:
    return f"prompt:{emotion}"


def prompt_dataset(inference_id: str) -> str:
    """The stimuli dataset of an inference's prompts: one stimulus per emotion, `prompt:<emotion>`."""
    return f"{inference_id}-prompts"


def prompt_run_id(run_set: str, seed: int) -> str:
    return f"{run_set}-seed{seed}"


def extract_prompt_runs(lake: Lake, inference_id: str, run_set: str | None = None,
                        loaded: LoadedModel | None = None, model: str | None = None, device: str = "cpu",
                        dtype: str = "float32", neuron: str = DEFAULT_NEURON, batch_size: int = 32,
                        on_start: Callable[[int, int], None] | None = None,
                        on_progress: Callable[[int], None] | None = None, command: str = "extract --prompts") -> dict:
    """Every layer's FFN neurons at the read-out of each stored prompt of `inference_id`, with no text.

    One run per seed (`<run_set>-seed<seed>`, run set default `<inference_id>-prompts`), each over one
    stimulus per emotion (`prompt:<emotion>` in dataset `<inference_id>-prompts`, split 'prompt'), so that
    `emotion_profile` of a run is its prompts' activations, as for the release's `li2024-roberta`.
    Masked LM: `<s> P <mask> </s>` read at the mask; causal LM: `P` read at its last position
    (`soft_prompt.prompt_only_inputs`). Captured through the extraction's hooks (`capture.capture_batch`);
    everything is one commit (the same command again rewrites the same rows).
    """
    from emolake.extract.inference.prompt_store import read_prompts
    from emolake.extract.inference.soft_prompt import prompt_only_inputs
    from emolake.extract.capture import capture_batch
    from emolake.warehouse.names import check_name

    lake.require()
    with connect(lake) as con:
        rows = con.execute("SELECT readout, task, model FROM inferences WHERE inference_id = ?",
                           [inference_id]).fetchall()
    if not rows:
        raise NotFoundError(f"no inference run {inference_id!r}",
                            expected="an inference id of `emolake infer --readout soft-prompt` (see the inferences view)")
    readout, task, inference_model = rows[0]
    if readout != "soft-prompt" or task != "binary":
        raise BadInputError(f"inference {inference_id!r} has no prompts per emotion", column="readout",
                            expected="an inference of --readout soft-prompt --task binary",
                            found=f"--readout {readout} --task {task}")
    prompts = read_prompts(lake, inference_id)
    run_set = check_name(run_set or prompt_dataset(inference_id), "run set")
    dataset = check_name(prompt_dataset(inference_id), "dataset")
    seeds = sorted({p.seed for p in prompts})
    emotions = sorted({p.emotion for p in prompts})
    missing = [(e, s) for e in emotions for s in seeds if (e, s) not in {p.key for p in prompts}]
    if missing:
        raise BadInputError(f"inference {inference_id!r} lacks prompts", column="seed",
                            expected="every emotion for every seed", found=missing[:5])
    run_ids = [check_name(prompt_run_id(run_set, s), "run id") for s in seeds]
    source = f"emolake extract --prompts {inference_id}"
    with connect(lake) as con:
        others = con.execute("SELECT run_id, source FROM runs WHERE (run_set = ? OR list_contains(?, run_id)) "
                             "AND source IS DISTINCT FROM ?", [run_set, run_ids, source]).fetchall()
    if others:
        raise BadInputError(f"run set {run_set!r} holds other runs", column="run_set",
                            expected="a new run set, or the one of these prompts",
                            found=f"{others[0][0]} ({others[0][1]})")
    loaded = loaded or load_model(model or inference_model, device, dtype, neuron)
    for prompt in prompts:
        if prompt.weights_sha256 and loaded.weights_sha256 != prompt.weights_sha256:
            raise BadInputError(f"the prompts of {inference_id!r} were trained on other weights", column="model",
                                expected=f"weights sha256 {prompt.weights_sha256[:12]}...",
                                found=f"{loaded.name}: {loaded.weights_sha256[:12]}...")
    position = "last" if loaded.causal else "mask"
    template = "{soft prompt}" if loaded.causal else "<s> {soft prompt} <mask> </s>"
    stimuli = Stimuli([prompt_stimulus_id(e) for e in emotions],
                      [f"<soft prompt of {inference_id} for {e}>" for e in emotions])
    settings = ExtractSettings(model=loaded.name, dataset=dataset, split=PROMPT_SPLIT, template=template,
                               position=position, run_set=run_set, batch_size=batch_size, device=loaded.device,
                               neuron=loaded.neuron, dtype=loaded.dtype)
    by_key = {p.key: p for p in prompts}
    dtype_ = loaded.model.get_input_embeddings().weight.dtype
    if on_start:
        on_start(len(prompts), 0)
    torch.manual_seed(SEED)
    captured: dict[int, np.ndarray] = {}  # seed -> [n_emotions, n_layers, d_ff]
    for seed in seeds:
        out = torch.empty((len(emotions), loaded.n_layers, loaded.d_ff), dtype=torch.float32)
        for start in range(0, len(emotions), batch_size):
            chosen = emotions[start:start + batch_size]
            vectors = torch.stack([torch.as_tensor(by_key[(e, seed)].vectors) for e in chosen])  # [b, N, H]
            embeds, attention, index = prompt_only_inputs(loaded.model, loaded.tokenizer,
                                                          vectors.to(loaded.device, dtype_))
            batch = torch.empty((len(chosen), loaded.n_layers, loaded.d_ff), dtype=torch.float32,
                                device=loaded.device)
            capture_batch(loaded, None, attention, position, index, batch, inputs_embeds=embeds)
            out[start:start + len(chosen)] = batch.cpu()
            if on_progress:
                on_progress(len(chosen))
        captured[seed] = out.numpy()
    now = datetime.now(timezone.utc)
    with lake.transaction(command) as txn:
        txn.write("stimuli", pa.table({
            "split": [PROMPT_SPLIT] * len(emotions), "stimulus_id": stimuli.ids, "text": stimuli.texts,
            "emotion": emotions, "n_labels": [1] * len(emotions), "source_row": list(range(len(emotions))),
        }), {"dataset": dataset})
        for seed, run_id in zip(seeds, run_ids):
            for layer in range(loaded.n_layers):
                txn.write("activations", store.activation_table(stimuli.ids, captured[seed][:, layer]),
                          {"run_id": run_id, "layer": layer})
            manifest = build_manifest(run_id, settings, loaded, stimuli, len(emotions))
            manifest.update(status="complete", source=source, seed=seed, emotions=",".join(emotions),
                            finished_at=now, created_at=now)
            row = {k: v for k, v in manifest.items() if k != "run_id"}
            txn.write("runs", pa.Table.from_pylist([row], schema=TABLES["runs"].schema), {"run_id": run_id})
    return {"inference_id": inference_id, "run_set": run_set, "dataset": dataset, "runs": len(seeds),
            "seeds": seeds, "emotions": len(emotions), "position": position, "n_layers": loaded.n_layers,
            "d_ff": loaded.d_ff, "n_neurons": loaded.n_layers * loaded.d_ff, "model": loaded.name,
            "neuron": loaded.neuron}
