"""One emotion-inference run: build the tasks, read out features, fit on one split, select on another,
report on a third, and store everything (`inferences`, `inference_accuracy`, `task_stimuli`, `probes`,
`predictions`) under a deterministic `inference_id` (re-running the same settings replaces it).

GoEmotions is used as intended: fit on train, select (probe C, best soft-prompt epoch) on dev, report
on test. `select_split = report_split = 'dev'` reproduces the study, which selected and scored on dev.
Every read-out ends as a `Probe` over its features (for the verbalizer a fixed contrast of label-word
log-probabilities), so ablation applies all read-outs the same way, to all conditions at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from emolake.extract.inference.readouts import (
    Probe, ProbeReadout, default_pooling, default_template, fit_probe, fit_threshold, is_causal, readout_features,
    verbalizer_readout,
)
from emolake.extract.inference.prompt_store import StoredPrompt, read_prompts, write_prompts
from emolake.extract.inference.soft_prompt import DEFAULTS as SOFT_PROMPT_DEFAULTS, fit_soft_prompt_tasks
from emolake.extract.inference.tasks import (
    MULTICLASS, Task, build_tasks, check_splits, default_emotions, score_task, task_texts,
)
from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake, LakeTransaction
from emolake.warehouse.locks import LOCK_DIR, FileLock, lock_file_name
from emolake.warehouse.version import code_version


INFERENCE_PREDICTIONS = "inference"  # the predictions partition of `infer` (sweeps use their run set)


@dataclass
class InferenceConfig:
    model: str
    dataset: str
    readout: str = "probe"
    task: str = "binary"
    emotions: list[str] | None = None
    seed: int = 0
    fit_split: str = "train"
    select_split: str = "dev"
    report_split: str = "test"
    max_per_emotion: int | None = None
    template: str | None = None  # None: the read-out's default for the model (resolve_defaults)
    pooling: str | None = None  # None: mean (encoders) or last (causal LMs)
    label_words: list[str] | None = None  # verbalizer / soft-prompt; default: the emotion names
    batch_size: int = 32
    device: str = "cpu"
    soft_prompt: dict = field(default_factory=dict)  # n_prompt, epochs, lr, batch_size
    seeds: list[int] | None = None  # soft-prompt replicates (--seeds): one prompt per emotion and seed

    def __post_init__(self) -> None:
        if self.seeds is not None:
            seeds = [int(s) for s in self.seeds]
            if not seeds or len(set(seeds)) != len(seeds):
                raise BadInputError("--seeds takes distinct integers", column="seeds",
                                    expected="e.g. 1,3,5 (each once)", found=",".join(map(str, seeds)))
            if len(seeds) > 1 and self.readout != "soft-prompt":
                raise BadInputError("several seeds are replicates of the soft-prompt read-out", column="seeds",
                                    expected="--readout soft-prompt, or one --seed", found=self.readout)
            seeds = sorted(seeds)
            # one seed is the single-seed case: the same inference as --seed
            self.seed, self.seeds = seeds[0], (seeds if len(seeds) > 1 else None)

    @property
    def replicate_seeds(self) -> list[int]:
        """The seeds of the replicates: --seeds, else the one --seed."""
        return list(self.seeds) if self.seeds else [self.seed]

    @property
    def splits(self) -> list[str]:
        return list(dict.fromkeys([self.fit_split, self.select_split, self.report_split]))

    def resolved_template(self) -> str:
        if self.template is None:
            raise ValueError("resolve_defaults(config, model) first")
        return self.template

    def resolve_defaults(self, model) -> None:
        """Fill in the template and pooling the model's kind calls for (before `inference_id`)."""
        causal = is_causal(model)
        self.template = self.template or default_template(self.readout, causal)
        self.pooling = self.pooling or default_pooling(causal)
        if self.readout == "soft-prompt":
            self.soft_prompt = {**SOFT_PROMPT_DEFAULTS, **(self.soft_prompt or {})}
        if causal and self.pooling == "cls":
            raise BadInputError("--pooling cls reads the first token, which a causal LM computes before the text",
                                column="pooling", expected="last or mean for a causal LM", found="cls")

    def inference_id(self) -> str:
        """Readable and deterministic: model-dataset-readout-task-seed-hash of every setting."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("batch_size", "device")}
        if self.seeds is None:
            del settings["seeds"]  # the ids of single-seed runs stay as they were before --seeds
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        model = re.sub(r"[^A-Za-z0-9.]+", "-", self.model.rstrip("/").split("/")[-1]).strip("-")
        seeds = f"s{self.seed}" if self.seeds is None else f"{len(self.seeds)}seeds"
        return f"{model}-{self.dataset}-{self.readout}-{self.task}-{seeds}-{digest}"


@dataclass
class FittedInference:
    config: InferenceConfig
    inference_id: str
    readout: object
    tasks: dict[str, list[Task]]  # split -> tasks
    probes: dict[str, Probe]  # task emotion -> probe
    accuracy: pd.DataFrame  # emotion, split, n_stimuli, accuracy, selected, seed
    predictions: pd.DataFrame  # emotion, split, stimulus_id, label, predicted, score (soft-prompt: and seed)
    prompts: list[StoredPrompt] = field(default_factory=list)  # soft-prompt: one per emotion and seed
    seed_tasks: dict[int, dict[str, list[Task]]] = field(default_factory=dict)  # seed -> split -> tasks


def load_stimuli(lake: Lake, dataset: str) -> pd.DataFrame:
    """Stimulus rows (one per stimulus and label) of `dataset` from the lake."""
    from emolake.warehouse.database import connect

    with connect(lake) as con:
        frame = con.execute("SELECT split, stimulus_id, text, emotion, n_labels FROM stimuli WHERE dataset = ?",
                            [dataset]).df()
    if frame.empty:
        raise NotFoundError(f"no stimuli for dataset {dataset!r}", expected="a dataset loaded with `ingest`")
    return frame



def split_union(tasks: list[Task]) -> np.ndarray:
    """Every stimulus any task of a split needs, once (sorted)."""
    return np.unique(np.concatenate([t.stimulus_ids for t in tasks]).astype(str))


def make_readout(model, tokenizer, config: InferenceConfig, emotions: list[str]):
    if config.readout == "probe":
        return ProbeReadout(config.pooling, config.resolved_template())
    if config.readout == "verbalizer":
        words = config.label_words or [e.replace("_", " ") for e in emotions]
        if len(words) != len(emotions):
            raise BadInputError("one label word per emotion is needed", column="label_words",
                                expected=len(emotions), found=len(words))
        return verbalizer_readout(model, tokenizer, words, config.resolved_template())
    raise BadInputError("unknown read-out", expected="probe or verbalizer here", found=config.readout)


def verbalizer_probe(features_fit: np.ndarray, task: Task, emotions: list[str]) -> Probe:
    """Binary: score = log p(word e) - mean log p(words), threshold fitted; 27-way: argmax of the words."""
    n = len(emotions)
    if task.emotion == MULTICLASS:
        return Probe(np.eye(n), np.zeros(n), c=float("nan"), classes=list(range(n)))
    contrast = np.full(n, -1.0 / n)
    contrast[emotions.index(task.emotion)] += 1.0
    threshold = fit_threshold(features_fit @ contrast, task.labels)
    return Probe(contrast[None, :], np.array([-threshold]), c=float("nan"), classes=[0, 1])


def fit_inference(loaded, stimuli: pd.DataFrame, config: InferenceConfig, progress=None, *,
                  stored_prompts: dict | None = None, on_prompt=None, start=None) -> FittedInference:
    """Fit the read-out on the fit split, select on the select split, score every split of the config.

    `loaded`: an object with `.model` and `.tokenizer` (extract.models.loading.LoadedModel). `progress(n)` is
    called with the number of texts of each finished batch. Soft-prompt only: `stored_prompts`, `on_prompt`
    and `start` as in `fit_soft_prompt_tasks` (resuming; `run_inference` passes them).
    """
    check_splits(stimuli, config.dataset, config.splits)
    emotions = config.emotions or default_emotions(stimuli)
    config.emotions = emotions
    config.resolve_defaults(loaded.model)
    if config.readout == "soft-prompt":
        seed_tasks = {seed: {split: build_tasks(stimuli, config.task, emotions, split, seed, config.max_per_emotion)
                             for split in config.splits} for seed in config.replicate_seeds}
        prompts, accuracy, predictions = fit_soft_prompt_tasks(loaded, stimuli, config, seed_tasks, progress,
                                                               stored=stored_prompts, on_prompt=on_prompt, start=start)
        tasks = {split: [t for seed in seed_tasks for t in seed_tasks[seed][split]] for split in config.splits}
        return FittedInference(config, config.inference_id(), None, tasks, {}, accuracy, predictions, prompts,
                               seed_tasks)
    tasks = {split: build_tasks(stimuli, config.task, emotions, split, config.seed, config.max_per_emotion)
             for split in config.splits}
    readout = make_readout(loaded.model, loaded.tokenizer, config, emotions)
    features: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
    for split in config.splits:
        ids = split_union(tasks[split])
        values = readout_features(loaded.model, loaded.tokenizer, task_texts(stimuli, ids), readout,
                                  batch_size=config.batch_size, device=config.device, on_batch=progress)[0]
        features[split] = (values, {s: i for i, s in enumerate(ids)})

    def task_features(task: Task) -> np.ndarray:  # [n, F]
        values, position = features[task.split]
        return values[[position[s] for s in task.stimulus_ids]]

    probes: dict[str, Probe] = {}
    by_emotion = {split: {t.emotion: t for t in tasks[split]} for split in config.splits}
    for task in tasks[config.fit_split]:
        select = by_emotion[config.select_split][task.emotion]
        if config.readout == "probe":
            probes[task.emotion] = fit_probe(task_features(task), task.labels, task_features(select), select.labels,
                                             seed=config.seed)
        else:
            probes[task.emotion] = verbalizer_probe(task_features(task), task, emotions)
    accuracy, predictions = [], []
    for split in config.splits:
        for task in tasks[split]:
            probe = probes[task.emotion]
            x = task_features(task)
            predicted = probe.predict(x)
            scores = probe.scores(x)
            score = scores[:, 0] if scores.shape[1] == 1 else scores.max(1)
            row, rows = score_task(config, task, predicted, score)
            accuracy.append(row)
            predictions.append(rows)
    return FittedInference(config, config.inference_id(), readout, tasks, probes,
                           pd.DataFrame(accuracy).assign(seed=config.seed), pd.concat(predictions, ignore_index=True),
                           seed_tasks={config.seed: tasks})



def write_inference(txn: LakeTransaction, fitted: FittedInference) -> None:
    """Stage every table of one inference run (its partitions are replaced)."""
    config, part = fitted.config, {"inference_id": fitted.inference_id}
    params = {k: v for k, v in asdict(config).items()
              if k in ("emotions", "label_words", "soft_prompt", "batch_size", "device")}
    params["seeds"] = config.replicate_seeds
    txn.write("inferences", pa.Table.from_pylist([{
        "model": config.model, "dataset": config.dataset, "readout": config.readout, "task": config.task,
        "fit_split": config.fit_split, "select_split": config.select_split, "report_split": config.report_split,
        "template": config.resolved_template(), "pooling": config.pooling if config.readout == "probe" else None,
        "seed": config.seed, "max_per_emotion": config.max_per_emotion, "params_json": json.dumps(params),
        "created_at": datetime.now(timezone.utc), "code_version": code_version(),
    }]), part)
    txn.write("inference_accuracy", pa.Table.from_pandas(fitted.accuracy, preserve_index=False), part)
    task_rows = pd.concat([
        pd.DataFrame({"emotion": t.emotion, "split": t.split, "stimulus_id": t.stimulus_ids.astype(str),
                      "label": t.labels, "draw_seed": t.draw_seed, "seed": seed})
        for seed, split_tasks in fitted.seed_tasks.items() for tasks in split_tasks.values() for t in tasks],
        ignore_index=True)
    txn.write("task_stimuli", pa.Table.from_pandas(task_rows, preserve_index=False), part)
    if fitted.probes:
        rows = []
        for emotion, probe in fitted.probes.items():
            for index, (weights, bias) in enumerate(zip(probe.weights, probe.bias)):
                rows.append({"emotion": emotion, "class_index": probe.classes[index] if len(probe.weights) > 1 else 1,
                             "weights": weights.tolist(), "bias": float(bias), "c": probe.c})
        txn.write("probes", pa.Table.from_pylist(rows), part)
    if fitted.prompts:
        write_prompts(txn, fitted.inference_id, fitted.prompts)  # the complete set replaces the resumed rows
    predictions = fitted.predictions.assign(condition_id="unablated")
    if "seed" in predictions:  # soft-prompt replicates: the seed names the prompt that predicted
        predictions = predictions.assign(condition_id="unablated:seed=" + predictions.pop("seed").astype(str))
    txn.write("predictions", pa.Table.from_pandas(predictions, preserve_index=False),
              {**part, "run_set": INFERENCE_PREDICTIONS})


def load_probes(lake: Lake, inference_id: str) -> dict[str, Probe]:
    """The stored probes of an inference run (emotion -> Probe), exactly as fitted."""
    from emolake.warehouse.database import connect

    with connect(lake) as con:
        frame = con.execute("SELECT emotion, class_index, weights, bias, c FROM probes WHERE inference_id = ? "
                            "ORDER BY emotion, class_index", [inference_id]).df()
    if frame.empty:
        raise NotFoundError(f"no probes stored for inference {inference_id!r}")
    probes = {}
    for emotion, group in frame.groupby("emotion", sort=False):
        weights = np.stack([np.asarray(w, dtype=np.float64) for w in group["weights"]])
        classes = group["class_index"].tolist() if len(group) > 1 else [0, 1]
        probes[emotion] = Probe(weights, group["bias"].to_numpy(float), float(group["c"].iloc[0]), classes=classes)
    return probes


def rebuild_inference(lake: Lake, loaded, stimuli: pd.DataFrame, config: InferenceConfig) -> FittedInference | None:
    """A stored probe/verbalizer inference with these settings, without recomputing features (None if absent).

    Tasks are redrawn from the seed (deterministic) and checked against the stored `task_stimuli`.
    """
    from emolake.warehouse.database import connect

    if config.readout == "soft-prompt":
        return None
    check_splits(stimuli, config.dataset, config.splits)
    emotions = config.emotions = config.emotions or default_emotions(stimuli)
    config.resolve_defaults(loaded.model)
    inference_id = config.inference_id()  # names the resolved emotion list, as fit_inference stores it
    if not any(p.get("inference_id") == inference_id for p in lake.partitions("probes")):
        return None
    tasks = {split: build_tasks(stimuli, config.task, emotions, split, config.seed, config.max_per_emotion)
             for split in config.splits}
    with connect(lake) as con:
        stored = con.execute("SELECT emotion, split, count(*) AS n FROM task_stimuli WHERE inference_id = ? "
                             "GROUP BY ALL", [inference_id]).df()
        accuracy = con.execute("SELECT emotion, split, n_stimuli, accuracy, selected, seed FROM inference_accuracy "
                               "WHERE inference_id = ?", [inference_id]).df()
    expected = {(t.emotion, t.split): len(t.labels) for ts in tasks.values() for t in ts}
    if dict(zip(zip(stored["emotion"], stored["split"]), stored["n"])) != expected:
        return None  # the stimuli changed since: fit again
    return FittedInference(config, inference_id, make_readout(loaded.model, loaded.tokenizer, config, emotions),
                           tasks, load_probes(lake, inference_id), accuracy, pd.DataFrame())


def fit_or_load_inference(lake: Lake, loaded, stimuli: pd.DataFrame, config: InferenceConfig,
                          progress=None) -> tuple[FittedInference, bool]:
    """(inference, reused): the stored inference with these settings, or a new one fitted and stored."""
    fitted = rebuild_inference(lake, loaded, stimuli, config)
    if fitted is not None:
        return fitted, True
    return run_inference(lake, loaded, stimuli, config, progress), False


def inference_lock(lake: Lake, inference_id: str, command: str = "") -> FileLock:
    """Held for a whole `infer` run: two runs of the same settings would train the same prompts."""
    return FileLock(lake.root / LOCK_DIR / lock_file_name("inference", inference_id), f"inference {inference_id!r}",
                    command)


def run_inference(lake: Lake, loaded, stimuli: pd.DataFrame, config: InferenceConfig, progress=None,
                  start=None) -> FittedInference:
    """Fit (see `fit_inference`) and store an inference run; a soft-prompt run resumes where it stopped.

    Soft-prompt: each trained (emotion, seed) prompt is committed to `prompts` as soon as it is trained
    (a commit of its own, added to the inference's partition); a run interrupted and started again with
    the same settings scores those again and trains only the missing ones. Stored prompts trained on
    other tasks or weights (the stimuli or the model changed) are dropped first. The final commit writes
    every table of the run, the complete prompt set replacing the rows committed on the way.
    """
    check_splits(stimuli, config.dataset, config.splits)
    config.emotions = config.emotions or default_emotions(stimuli)
    config.resolve_defaults(loaded.model)
    inference_id = config.inference_id()
    with inference_lock(lake, inference_id, f"infer {inference_id}").held():
        stored, on_prompt = {}, None
        if config.readout == "soft-prompt":
            stored, in_lake = _resumable_prompts(lake, inference_id)
            kept = dict(stored)

            def on_prompt(prompt: StoredPrompt) -> None:
                kept[prompt.key] = prompt
                if prompt.key in in_lake:  # retrained (the task or weights changed): the old row goes
                    write_prompts(lake, inference_id, list(kept.values()))
                    in_lake.update(kept)
                else:
                    write_prompts(lake, inference_id, [prompt], replace=False)
                    in_lake.add(prompt.key)

        fitted = fit_inference(loaded, stimuli, config, progress, stored_prompts=stored, on_prompt=on_prompt,
                               start=start)
        with lake.transaction(f"infer {fitted.inference_id}") as txn:
            write_inference(txn, fitted)
    return fitted


def _resumable_prompts(lake: Lake, inference_id: str) -> tuple[dict[tuple[str, int], StoredPrompt], set]:
    """((emotion, seed) -> the prompt stored for it, every key in the lake); a key stored twice is not resumed."""
    if not any(p.get("inference_id") == inference_id for p in lake.partitions("prompts")):
        return {}, set()
    try:
        prompts = read_prompts(lake, inference_id)
    except NotFoundError:
        return {}, set()
    keys = [p.key for p in prompts]
    return {p.key: p for p in prompts if keys.count(p.key) == 1}, set(keys)
