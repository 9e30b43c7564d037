"""The study's whole protocol from one config file: `emolake protocol --config protocol.toml`.

Steps, each calling the library function of its CLI command (no subprocesses):

1. prompts      `infer --readout soft-prompt --seeds ...`: one soft prompt per emotion and seed
2. activations  `extract --prompts INFERENCE_ID`: each prompt alone, one run per seed in run set `name`
3. rsa          `rsa --study S --run-set name`: human attribute importance, model vs human
4. searchlight  `searchlight --run-set name --study S`
5. neurons      `neurons --run-set name --study S --k ...`
6. ablate       `ablate --readout soft-prompt --prompts INFERENCE_ID`: every prompt under every neuron set
7. statistics   `ablation-stats --run-set name --study S --drop ...`

A step is skipped when the lake already holds its result for these settings: the prompts of the
inference (its id is a hash of every prompt setting) and its final commit; a complete run per seed
in the run set; an `analyses` record of rsa / searchlight / neurons with the config's parameters
and no changed input (`stale_results`); an ablation sweep of these prompts with the same neuron sets,
controls and edit; an importance link with the config's drop. Anything else runs again (and steps
resume where their command resumes: prompts per (emotion, seed), extraction per chunk).

The config is TOML (stdlib `tomllib`). Every key is checked: an unknown section or key, a wrong type
or value, or a missing required key is a `BadInputError` naming the file, the key, what was
expected and what was found. `PROTOCOL_KEYS` is the schema; docs/protocols/ holds two configs.
"""

from __future__ import annotations

import contextlib
import math
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emolake.warehouse.errors import BadInputError, NotFoundError
from emolake.warehouse.lake import Lake
from emolake.warehouse.names import check_name

REQUIRED = object()


@dataclass(frozen=True)
class Key:
    kind: str  # name | str | int | float | bool | ints | strs | choice
    default: object = REQUIRED
    choices: tuple = ()
    minimum: float | None = None
    meaning: str = ""


def _choice(choices: tuple, default: object, meaning: str) -> Key:
    return Key("choice", default, choices=choices, meaning=meaning)


# section -> key -> Key: the whole config language (docs/protocols/*.toml show every key).
PROTOCOL_KEYS: dict[str, dict[str, Key]] = {
    "protocol": {
        "name": Key("name", meaning="run set of the prompt activations (and of the searchlight, neurons, ablation)"),
        "study": Key("name", meaning="study whose attributes and similarity judgments are used (ingested)"),
    },
    "model": {
        "name": Key("str", meaning="model: local folder, hub name, .gguf file or a bundled name"),
        "device": _choice(("auto", "cpu", "cuda"), "auto", "where the model runs"),
        "neuron": _choice(("mlp_post", "mlp_gate"), "mlp_post", "neuron definition"),
    },
    "stimuli": {
        "dataset": Key("name", "goemotions", meaning="dataset whose stimuli make the binary tasks"),
        "emotions": Key("strs", "all", meaning="emotions: a list, or \"all\" (the dataset's 27 GoEmotions emotions)"),
        "fit_split": Key("str", "train", meaning="split the prompts are trained on"),
        "select_split": Key("str", "dev", meaning="split that selects each prompt's best epoch"),
        "report_split": Key("str", "dev", meaning="split accuracy is reported and ablated on (the study: dev)"),
        "max_per_emotion": Key("int", None, minimum=1, meaning="cap on positives per emotion in every split"),
    },
    "prompt": {
        "seeds": Key("ints", minimum=0, meaning="one prompt per emotion and seed; the seeds are the replicates"),
        "label_words": Key("strs", ["no", "yes"], meaning="verbalizer words: negative, positive"),
        "length": Key("int", 20, minimum=1, meaning="prompt vectors"),
        "epochs": Key("int", 10, minimum=1, meaning="training epochs"),
        "lr": Key("float", 3e-2, minimum=0.0, meaning="AdamW learning rate"),
        "batch_size": Key("int", 16, minimum=1, meaning="texts per training step"),
    },
    "extract": {
        "batch_size": Key("int", 32, minimum=1, meaning="prompts per forward pass of the activation read-out"),
    },
    "rsa": {
        "permutations": Key("int", 10_000, minimum=0, meaning="emotion-label permutations per test"),
        "bootstrap": Key("int", 1_000, minimum=0, meaning="bootstrap resamples for the CIs"),
        "seed": Key("int", 0, minimum=0, meaning="seed of permutations and bootstrap"),
        "layers": Key("bool", True, meaning="also compare each layer's RDM with the human RDM"),
    },
    "searchlight": {
        "inference": _choice(("permutation", "asymptotic"), "permutation", "p valid under label permutation, or "
                             "the study's asymptotic p"),
        "permutations": Key("int", 500, minimum=2, meaning="label permutations of the attribute RDMs"),
        "seed": Key("int", 0, minimum=0, meaning="seed of the permutations"),
        "fdr": _choice(("monotone", "study"), "monotone", "q of the searchlight view"),
        "alpha": Key("float", 0.01, minimum=0.0, meaning="q threshold of searchlight_counts"),
        "precision": _choice(("float64", "float32"), "float64", "neuron RDM precision"),
    },
    "neurons": {
        "k": Key("ints", minimum=1, meaning="top-k set sizes, one set per attribute and k"),
        "scope": _choice(("global", "per_layer"), "global", "top k over all layers (the study) or within each"),
    },
    "ablation": {
        "controls": Key("int", 10, minimum=1, meaning="random control sets per k"),
        "layer_matched": Key("bool", False, meaning="controls match each attribute set's neurons per layer"),
        "mode": _choice(("zero", "mean", "scale", "noise"), "zero", "how ablated neurons are edited (the study: "
                        "zero)"),
        "value": Key("float", 0.0, meaning="scale factor or noise sd"),
        "seed": Key("int", 0, minimum=0, meaning="seed of the control draws"),
        "conditions_per_pass": Key("int", 12, minimum=1, meaning="conditions stacked in one forward pass"),
        "batch_size": Key("int", 32, minimum=1, meaning="texts per forward pass"),
        "drop": _choice(("vs-control", "vs-unablated"), "vs-control", "accuracy drop of the importance link"),
    },
}


def _type_problem(key: Key, value: object) -> str | None:
    """What is wrong with `value` for `key` (None when it fits)."""
    if key.kind in ("name", "str", "choice"):
        if not isinstance(value, str):
            return "a string"
        if key.kind == "choice" and value not in key.choices:
            return f"one of {', '.join(key.choices)}"
        return None
    if key.kind == "bool":
        return None if isinstance(value, bool) else "true or false"
    if key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "an integer" + (f" >= {key.minimum:g}" if key.minimum is not None else "")
    elif key.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return "a number"
    elif key.kind == "ints":
        if not isinstance(value, list) or not value or any(isinstance(v, bool) or not isinstance(v, int)
                                                          for v in value):
            return "a non-empty list of integers"
        if len(set(value)) != len(value):
            return "a list of distinct integers"
        if key.minimum is not None and min(value) < key.minimum:
            return f"a list of integers >= {key.minimum:g}"
        return None
    elif key.kind == "strs":
        if value == "all" and key.default == "all":
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            return "a non-empty list of strings" + (' (or "all")' if key.default == "all" else "")
        return None
    if key.minimum is not None and value < key.minimum:
        return f"{'an integer' if key.kind == 'int' else 'a number'} >= {key.minimum:g}"
    return None


def parse_protocol(text: str, file: str) -> dict[str, dict[str, object]]:
    """The config as {section: {key: value}}, defaults filled in; every key checked against PROTOCOL_KEYS."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"not valid TOML: {exc}", file=file, expected="a TOML file (docs/protocols/*.toml)") \
            from None
    sections = ", ".join(f"[{s}]" for s in PROTOCOL_KEYS)
    config: dict[str, dict[str, object]] = {}
    for section, value in raw.items():
        if section not in PROTOCOL_KEYS:
            raise BadInputError(f"unknown section [{section}]", file=file, column=section, expected=f"one of {sections}",
                                found=section)
        if not isinstance(value, dict):
            raise BadInputError(f"{section} must be a section", file=file, column=section,
                                expected=f"[{section}] with keys", found=value)
    for section, keys in PROTOCOL_KEYS.items():
        given = raw.get(section, {})
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise BadInputError(f"unknown key {section}.{unknown[0]}", file=file, column=f"{section}.{unknown[0]}",
                                expected=f"one of {', '.join(keys)}", found=unknown[0])
        values = {}
        for name, key in keys.items():
            where = f"{section}.{name}"
            if name not in given:
                if key.default is REQUIRED:
                    raise BadInputError(f"missing key {where}", file=file, column=where, expected=key.meaning, found="nothing")
                values[name] = key.default
                continue
            value = given[name]
            problem = _type_problem(key, value)
            if problem is not None:
                raise BadInputError(f"wrong value of {where}", file=file, column=where, expected=problem, found=value)
            if key.kind == "name":
                check_name(value, where, file=file)
            values[name] = float(value) if key.kind == "float" else value
        config[section] = values
    _check_together(config, file)
    return config


def _check_together(config: dict, file: str) -> None:
    from emolake.ingest.emotions import normalise_emotion

    emotions = config["stimuli"]["emotions"]
    if emotions != "all":
        normal = [normalise_emotion(e) for e in emotions]
        if len(set(normal)) != len(normal):
            raise BadInputError("an emotion is named twice", file=file, column="stimuli.emotions",
                                expected="distinct emotions", found=emotions)
        config["stimuli"]["emotions"] = normal
    if len(config["prompt"]["label_words"]) != 2:
        raise BadInputError("the binary task has two label words", file=file, column="prompt.label_words",
                            expected="[negative, positive], e.g. [\"no\", \"yes\"]", found=config["prompt"]["label_words"])
    config["neurons"]["k"] = sorted(config["neurons"]["k"])
    config["prompt"]["seeds"] = sorted(config["prompt"]["seeds"])


def load_protocol(path: str | Path) -> dict[str, dict[str, object]]:
    """Read and check a protocol config file (see `parse_protocol`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError("no such config file", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise BadInputError("the config is not UTF-8 text", file=str(path), expected="UTF-8",
                            found=f"byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start}") from None
    return parse_protocol(text, str(path))


# --- Running -------------------------------------------------------------------------------------

STEPS = ("prompts", "activations", "rsa", "searchlight", "neurons", "ablate", "statistics")


@dataclass
class StepResult:
    step: str
    status: str  # 'ran' | 'skipped'
    seconds: float  # wall clock
    detail: str = ""
    cpu_seconds: float = 0.0  # CPU time of this process (all threads): what the step costs on an idle machine
    summary: dict = field(default_factory=dict)


class ProtocolRun:
    """One run of the protocol over a lake; `run()` does every step in order and returns their results.

    `echo(line)` gets one line per step (started, skipped and why, finished and its time); with
    `progress`, every step shows its own progress bar (on stderr).
    """

    def __init__(self, lake: Lake, config: dict, echo: Callable[[str], None] = print, progress: bool = True) -> None:
        self.lake, self.config, self.echo, self.progress = lake, config, echo, progress
        self.run_set, self.study = config["protocol"]["name"], config["protocol"]["study"]
        self.loaded = None  # LoadedModel, once `model()` loaded it
        self.device: str | None = None
        self._stimuli = None  # the dataset's stimulus rows, read once
        self.inference_id: str | None = None
        self.results: list[StepResult] = []

    # -- shared pieces

    def model(self):
        """The model, loaded once (with the config's neuron definition and device)."""
        if self.loaded is None:
            from emolake.extract.models.loading import load_model, resolve_device

            self.device = resolve_device(self.config["model"]["device"])
            self.loaded = load_model(self.config["model"]["name"], device=self.device,
                                     neuron=self.config["model"]["neuron"])
        return self.loaded

    def inference_config(self):
        from emolake.extract.inference.run import InferenceConfig

        c, s, p = self.config, self.config["stimuli"], self.config["prompt"]
        loaded = self.model()
        emotions = None if s["emotions"] == "all" else list(s["emotions"])
        config = InferenceConfig(
            model=loaded.name, dataset=s["dataset"], readout="soft-prompt", task="binary", emotions=emotions,
            seed=p["seeds"][0], seeds=list(p["seeds"]), fit_split=s["fit_split"], select_split=s["select_split"],
            report_split=s["report_split"], max_per_emotion=s["max_per_emotion"], label_words=list(p["label_words"]),
            batch_size=c["ablation"]["batch_size"], device=self.device,  # texts per scoring pass (not in the id)
            soft_prompt={"n_prompt": p["length"], "epochs": p["epochs"], "lr": p["lr"], "batch_size": p["batch_size"]})
        return config

    def stimuli(self):
        from emolake.extract.inference.run import load_stimuli

        if self._stimuli is None:
            self._stimuli = load_stimuli(self.lake, self.config["stimuli"]["dataset"])
        return self._stimuli

    @contextlib.contextmanager
    def _bar(self, description: str):
        """(start(total, done, label), advance(n)) on a progress bar of its own (no-ops without progress)."""
        if not self.progress:
            yield (lambda total, done=0, label=None: None), (lambda n: None)
            return
        from emolake.warehouse.console import progress_bar

        with progress_bar("items") as bar:
            task = bar.add_task(description, total=None)

            def start(total: int, done: int = 0, label: str | None = None) -> None:
                bar.reset(task, total=total, completed=done, description=label or description)

            yield start, lambda n: bar.advance(task, n)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        from emolake.warehouse.database import connect

        with connect(self.lake) as con:
            return con.execute(sql, params or []).fetchall()

    def _analysis_current(self, analysis: str, run_set: str, params: dict, seed: int | None) -> str | None:
        """Why the stored `analysis` of (run_set, study) is current (None: it is absent, differs or is stale)."""
        import json

        rows = self.query("SELECT params, seed FROM analyses WHERE analysis = ? AND run_set = ? AND study = ?",
                          [analysis, run_set, self.study])
        if not rows:
            return None
        stored, stored_seed = json.loads(rows[0][0]), rows[0][1]
        if any(stored.get(k) != v for k, v in params.items()) or (seed is not None and stored_seed != seed):
            return None
        stale = self.query("SELECT count(*) FROM stale_results WHERE analysis = ? AND run_set = ? AND study = ?",
                           [analysis, run_set, self.study])[0][0]
        return None if stale else f"the lake holds {analysis} of {run_set} / {self.study} with these settings"

    # -- the steps: each returns (skip reason or None) from check_*, and a summary from do_*

    def check_prompts(self) -> str | None:
        from emolake.extract.inference.tasks import default_emotions

        config = self.inference_config()
        config.emotions = config.emotions or default_emotions(self.stimuli())
        config.resolve_defaults(self.model().model)
        self.inference_id = config.inference_id()
        finished = self.query("SELECT count(*) FROM inferences WHERE inference_id = ?", [self.inference_id])[0][0]
        stored = self.query("SELECT count(DISTINCT (emotion, seed)) FROM prompts WHERE inference_id = ?",
                            [self.inference_id])[0][0]
        expected = len(config.emotions) * len(config.replicate_seeds)
        if finished and stored == expected:
            return f"the lake holds all {expected} prompts of inference {self.inference_id}"
        return None

    def do_prompts(self) -> dict:
        from emolake.extract.inference.run import run_inference

        with self._bar("training prompts") as (start, advance):
            fitted = run_inference(self.lake, self.model(), self.stimuli(), self.inference_config(), progress=advance,
                                   start=lambda label, total: start(total, 0, label))
        self.inference_id = fitted.inference_id
        report = fitted.accuracy[fitted.accuracy["split"] == self.config["stimuli"]["report_split"]]
        return {"inference_id": fitted.inference_id, "prompts": len(fitted.prompts),
                "mean report accuracy": round(float(report["accuracy"].mean()), 4)}

    def check_activations(self) -> str | None:
        seeds = len(self.config["prompt"]["seeds"])
        rows = self.query("SELECT count(*) FILTER (WHERE status = 'complete' AND source = ?), count(*) FROM runs "
                          "WHERE run_set = ?", [f"emolake extract --prompts {self.inference_id}", self.run_set])
        complete, total = rows[0]
        if complete == total == seeds:
            return f"run set {self.run_set} holds the {seeds} prompt-activation runs of these prompts"
        return None

    def do_activations(self) -> dict:
        from emolake.extract.run import extract_prompt_runs

        with self._bar("prompt activations") as (start, advance):
            summary = extract_prompt_runs(self.lake, self.inference_id, self.run_set, loaded=self.model(),
                                          batch_size=self.config["extract"]["batch_size"],
                                          on_start=lambda total, done: start(total, done), on_progress=advance)
        return {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}

    def check_rsa(self) -> str | None:
        r = self.config["rsa"]
        params = {"metric": "correlation", "method": "tau_b", "n_perm": r["permutations"], "n_boot": r["bootstrap"],
                  "layers": r["layers"]}
        return self._analysis_current("rsa", self.run_set, params, r["seed"])

    def do_rsa(self) -> dict:
        from emolake.analysis.rsa import run_rsa

        r = self.config["rsa"]
        summary = run_rsa(self.lake, self.study, self.run_set, n_perm=r["permutations"], n_boot=r["bootstrap"],
                          seed=r["seed"], progress=self.progress, layers=r["layers"])
        return {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}

    def check_searchlight(self) -> str | None:
        s = self.config["searchlight"]
        params = {"inference": s["inference"], "fdr": s["fdr"], "alpha": s["alpha"], "precision": s["precision"]}
        if s["inference"] == "permutation":
            params["n_perm"] = s["permutations"]
        return self._analysis_current("searchlight", self.run_set, params,
                                      s["seed"] if s["inference"] == "permutation" else None)

    def do_searchlight(self) -> dict:
        from emolake.analysis.searchlight import run_searchlight

        s = self.config["searchlight"]
        summary = run_searchlight(self.lake, self.run_set, self.study, s["fdr"], s["alpha"], s["precision"],
                                  progress=self.progress, inference=s["inference"], n_perm=s["permutations"],
                                  seed=s["seed"])
        return {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}

    def check_neurons(self) -> str | None:
        n = self.config["neurons"]
        stored = {(k, scope) for k, scope in self.query(
            "SELECT k, scope FROM neuron_set_sizes WHERE run_set = ? AND study = ?", [self.run_set, self.study])}
        if not {(k, n["scope"]) for k in n["k"]} <= stored:
            return None
        stale = self.query("SELECT count(*) FROM stale_results WHERE analysis = 'neurons' AND run_set = ? "
                           "AND study = ?", [self.run_set, self.study])[0][0]
        return None if stale else f"the lake holds the top-k sets k = {n['k']} ({n['scope']})"

    def do_neurons(self) -> dict:
        from emolake.analysis.neurons import run_neurons

        n = self.config["neurons"]
        summary = run_neurons(self.lake, self.run_set, self.study, list(n["k"]), n["scope"])
        return {"sets": len(summary["sets"]), "k": list(n["k"]), "scope": n["scope"]}

    def _sweep_config(self):
        from emolake.extract.ablation.sweep import SweepConfig

        a, n = self.config["ablation"], self.config["neurons"]
        return SweepConfig(self.run_set, self.study, list(n["k"]), None, a["controls"], a["layer_matched"], a["mode"],
                           a["value"], n["scope"], a["seed"], a["conditions_per_pass"], a["batch_size"],
                           neuron=self.config["model"]["neuron"])

    def check_ablate(self) -> str | None:
        from emolake.extract.ablation.sweep import read_attribute_neurons

        sweep = self._sweep_config()
        try:
            sets = read_attribute_neurons(self.lake, self.run_set, self.study, sweep.ks, None, sweep.scope)
        except BadInputError:
            return None
        stored = self.query(
            "SELECT k, kind, attribute, draw, layer_matched, mode, mode_value, scope, neurons FROM ablations "
            "WHERE run_set = ? AND study = ?", [self.run_set, self.study])
        for k in sweep.ks:
            rows = [r for r in stored if r[0] == k]
            attribute = {(r[2], k): sorted(r[8]) for r in rows if r[1] == "attribute"}
            draws = [r for r in rows if r[1] == "random"]
            if attribute != {key: sorted(v.tolist()) for key, v in sets.items() if key[1] == k}:
                return None
            if any(r[4] != sweep.layer_matched or r[5] != sweep.mode or r[6] != sweep.value or r[7] != sweep.scope
                   for r in rows if r[1] != "unablated"):
                return None
            expected = sweep.controls * (len(attribute) if sweep.layer_matched else 1)
            if len(draws) != expected:
                return None
        replicates = self.query("SELECT DISTINCT inference_id, replicate FROM ablation_accuracy WHERE run_set = ? "
                                "AND study = ? AND k IN (SELECT unnest(?))", [self.run_set, self.study, sweep.ks])
        if {r[0] for r in replicates} != {self.inference_id} or \
                sorted({r[1] for r in replicates}) != list(self.config["prompt"]["seeds"]):
            return None
        return f"the lake holds the ablation of prompts {self.inference_id} with these neuron sets and controls"

    def do_ablate(self) -> dict:
        from emolake.extract.ablation.prompted import run_prompt_sweep
        from emolake.extract.inference.prompt_store import read_prompts

        s = self.config["stimuli"]
        prompts = read_prompts(self.lake, self.inference_id)
        loaded = self.model()
        with self._bar("ablating (condition x stimulus, every prompt)") as (start, advance):
            def progress(total: int):
                start(total)
                return advance

            return run_prompt_sweep(self.lake, loaded, prompts, self.stimuli(), self._sweep_config(),
                                    {"model": loaded.name, "dataset": s["dataset"]}, s["report_split"],
                                    s["max_per_emotion"], s["fit_split"], self.device, progress=progress)

    def check_statistics(self) -> str | None:
        drop = self.config["ablation"]["drop"]
        rows = self.query('SELECT DISTINCT k FROM importance_link WHERE run_set = ? AND study = ? AND "drop" = ?',
                          [self.run_set, self.study, drop])
        if sorted(r[0] for r in rows) == list(self.config["neurons"]["k"]):
            return f"the lake holds the importance link ({drop}) of every k"
        return None

    def do_statistics(self) -> dict:
        from emolake.analysis.ablation_stats import refresh_ablation_statistics

        summary = refresh_ablation_statistics(self.lake, self.run_set, self.study,
                                              drop=self.config["ablation"]["drop"])
        return {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}

    # -- driver

    def preflight(self) -> None:
        """Refuse, before any training, a protocol whose inputs are not in the lake."""
        from emolake.extract.inference.tasks import check_splits

        s = self.config["stimuli"]
        stimuli = self.stimuli()
        check_splits(stimuli, s["dataset"], list(dict.fromkeys([s["fit_split"], s["select_split"], s["report_split"]])))
        if s["emotions"] != "all":
            present = set(stimuli["emotion"])
            missing = [e for e in s["emotions"] if e not in present]
            if missing:
                raise BadInputError(f"emotions without stimuli in dataset {s['dataset']!r}", column="stimuli.emotions",
                                    expected=f"emotions of the dataset ({len(present)} labels)", found=missing)
        for view, what in (("emotion_attributes", "attributes (`ingest attributes` or `ingest model-emotion`)"),
                           ("human_rdm", "similarity judgments (`ingest similarity` or `ingest model-emotion`)")):
            if not self.query(f"SELECT count(*) FROM {view} WHERE study = ?", [self.study])[0][0]:
                raise NotFoundError(f"study {self.study!r} has no {view} in the lake", expected=f"its {what}")

    def run(self) -> list[StepResult]:
        self.lake.require()
        self.preflight()
        self.model()
        for index, step in enumerate(STEPS, 1):
            began, cpu = time.perf_counter(), time.process_time()
            reason = getattr(self, f"check_{step}")()
            if reason:
                self.results.append(StepResult(step, "skipped", time.perf_counter() - began, reason,
                                               cpu_seconds=time.process_time() - cpu))
                self.echo(f"[{index}/{len(STEPS)}] {step}: skipped ({reason})")
                continue
            self.echo(f"[{index}/{len(STEPS)}] {step}: running")
            summary = getattr(self, f"do_{step}")()
            seconds = time.perf_counter() - began
            self.results.append(StepResult(step, "ran", seconds, summary=summary,
                                           cpu_seconds=time.process_time() - cpu))
            self.echo(f"[{index}/{len(STEPS)}] {step}: done in {seconds:.1f} s")
        return self.results

    def final_summary(self) -> dict:
        """What the protocol produced, from the lake's views (the same numbers whether steps ran or skipped)."""
        where = [self.run_set, self.study]
        link = self.query("SELECT k, mean_r, ci_low, ci_high, p, n_emotions FROM importance_link "
                          "WHERE run_set = ? AND study = ? ORDER BY k", where)
        ablation = self.query("SELECT k, avg(acc_unablated), avg(acc_attribute), avg(acc_control_mean), "
                              "min(n_replicates), count(*) FILTER (WHERE q < 0.05) FROM ablation_summary "
                              "WHERE run_set = ? AND study = ? GROUP BY k ORDER BY k", where)
        prompts = self.query("SELECT count(*), avg(report_accuracy) FROM prompts WHERE inference_id = ?",
                             [self.inference_id])[0]
        significant = self.query("SELECT count(*) FROM searchlight WHERE run_set = ? AND study = ? AND q < ?",
                                 [*where, self.config["searchlight"]["alpha"]])[0][0]
        return {
            "run_set": self.run_set, "study": self.study, "inference_id": self.inference_id,
            "steps": {r.step: f"{r.status} ({r.seconds:.1f} s)" for r in self.results},
            "total seconds": round(sum(r.seconds for r in self.results), 1),
            "prompts": prompts[0], "mean report accuracy of the prompts": _round(prompts[1]),
            f"searchlight tests with q < {self.config['searchlight']['alpha']}": significant,
            "ablation per k (unablated / attribute / control accuracy, replicates, sets with q < 0.05)": {
                str(r[0]): f"{_round(r[1])} / {_round(r[2])} / {_round(r[3])}, n = {r[4]}, {r[5]}" for r in ablation},
            "importance link per k (mean r [95% CI], p, emotions)": {
                str(r[0]): f"{_round(r[1])} [{_round(r[2])}, {_round(r[3])}], p = {_round(r[4])}, {r[5]}"
                for r in link},
        }


def _round(value) -> object:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def run_protocol(lake: Lake, config: dict, echo: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Run (or resume) the protocol of `config` (from `load_protocol`); returns the final summary."""
    runner = ProtocolRun(lake, config, echo, progress)
    runner.run()
    return runner.final_summary()
