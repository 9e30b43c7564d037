"""Trained soft prompts as lake rows: one `StoredPrompt` per (inference, emotion, seed).

The study's protocol keeps, per emotion and seed, a prompt trained on the frozen model; its
activations (`extract --prompts`) and its re-evaluation under ablation (`ablate`) both start from
these vectors. Writers and readers of the `prompts` table exchange this record: `write_prompts`
stages rows in a transaction, `read_prompts` returns them bit for bit (float32 vectors, stored
row-major as `[n_prompt * hidden]` with both sizes in their own columns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake, LakeTransaction

TABLE = "prompts"


@dataclass(frozen=True)
class StoredPrompt:
    inference_id: str
    emotion: str  # the binary task's emotion ('all' for the multiclass task)
    seed: int  # seeds the prompt's initialisation, the batch order and the task's negative draw
    vectors: np.ndarray  # [n_prompt, hidden] float32: the prompt kept on the select split
    words: list[str]  # verbalizer words, label index order ('no', 'yes' for the binary task)
    settings: dict = field(default_factory=dict)  # n_prompt, epochs, lr, batch_size, template, ...
    best_epoch: int = -1
    select_accuracy: float = float("nan")
    report_accuracy: float = float("nan")
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    model: str = ""
    weights_sha256: str = ""
    tokenizer_sha256: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return self.emotion, self.seed


def prompt_rows(inference_id: str, prompts: list[StoredPrompt]) -> pa.Table:
    """The `prompts` table rows of `prompts` (all of inference `inference_id`)."""
    now = datetime.now(timezone.utc)
    rows = []
    for prompt in prompts:
        if prompt.inference_id != inference_id:
            raise BadInputError("a prompt of another inference run", column="inference_id", expected=inference_id,
                                found=prompt.inference_id)
        vectors = np.asarray(prompt.vectors)
        if vectors.ndim != 2 or vectors.dtype != np.float32:
            raise BadInputError(f"prompt {prompt.key}: vectors must be a float32 [n_prompt, hidden] array",
                                column="vectors", expected="float32, 2 dimensions",
                                found=f"{vectors.dtype}, shape {vectors.shape}")
        rows.append({
            "emotion": prompt.emotion, "seed": int(prompt.seed), "n_prompt": vectors.shape[0],
            "hidden": vectors.shape[1], "vectors": vectors.reshape(-1), "words": list(prompt.words),
            "settings": json.dumps(prompt.settings, sort_keys=True), "best_epoch": int(prompt.best_epoch),
            "select_accuracy": float(prompt.select_accuracy), "report_accuracy": float(prompt.report_accuracy),
            "losses": [float(x) for x in prompt.losses], "model": prompt.model,
            "weights_sha256": prompt.weights_sha256, "tokenizer_sha256": prompt.tokenizer_sha256, "created_at": now,
        })
    keys = [p.key for p in prompts]
    if len(set(keys)) != len(keys):
        raise BadInputError("two prompts for the same (emotion, seed)", column="seed",
                            expected="one prompt per emotion and seed",
                            found=sorted({k for k in keys if keys.count(k) > 1}))
    return pa.Table.from_pylist(rows, schema=_file_schema())


def _file_schema() -> pa.Schema:
    from emolake.warehouse.tables import TABLES

    return TABLES[TABLE].schema


def write_prompts(transaction_or_lake: LakeTransaction | Lake, inference_id: str, prompts: list[StoredPrompt], *,
                  replace: bool = True) -> None:
    """Stage `prompts` as the `prompts` partition of `inference_id`.

    With a `Lake`, in a transaction of its own. `replace`: the partition's stored prompts are replaced
    (the final, complete set of an inference); without, the rows are added to them (one finished
    (emotion, seed) of a run that is still training, see `extract/inference/run.py`).
    """
    table = prompt_rows(inference_id, prompts)
    if isinstance(transaction_or_lake, Lake):
        with transaction_or_lake.transaction(f"prompts {inference_id}") as txn:
            txn.write(TABLE, table, {"inference_id": inference_id}, replace=replace)
        return
    transaction_or_lake.write(TABLE, table, {"inference_id": inference_id}, replace=replace)


def read_prompts(lake: Lake, inference_id: str, emotions: list[str] | None = None,
                 seeds: list[int] | None = None) -> list[StoredPrompt]:
    """The stored prompts of `inference_id` (optionally only these emotions / seeds), by emotion then seed.

    Raises NotFoundError naming the inference id when it has none (or none of the emotions / seeds asked for).
    """
    from emolake.warehouse.database import connect

    query = ("SELECT emotion, seed, n_prompt, hidden, vectors, words, settings, best_epoch, select_accuracy, "
             "report_accuracy, losses, model, weights_sha256, tokenizer_sha256 FROM prompts WHERE inference_id = ?")
    params: list = [inference_id]
    if emotions is not None:
        query += " AND list_contains(?, emotion)"
        params.append(list(emotions))
    if seeds is not None:
        query += " AND list_contains(?, seed)"
        params.append([int(s) for s in seeds])
    with connect(lake) as con:
        table = con.sql(query + " ORDER BY emotion, seed", params=params).to_arrow_table()
    if table.num_rows == 0:
        wanted = "" if emotions is None and seeds is None else f" (emotions {emotions}, seeds {seeds})"
        raise NotFoundError(f"no prompts stored for inference {inference_id!r}{wanted}",
                            expected="an inference run with --readout soft-prompt (see the prompt_summary view)")
    prompts = []
    for row in table.to_pylist():
        vectors = np.asarray(row["vectors"], dtype=np.float32).reshape(row["n_prompt"], row["hidden"])
        prompts.append(StoredPrompt(
            inference_id, row["emotion"], int(row["seed"]), vectors, list(row["words"]), json.loads(row["settings"]),
            int(row["best_epoch"]), float(row["select_accuracy"]), float(row["report_accuracy"]),
            list(row["losses"]), row["model"] or "", row["weights_sha256"] or "", row["tokenizer_sha256"] or ""))
    return prompts
