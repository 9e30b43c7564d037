"""`emolake infer`, `emolake ablate`, `emolake ablation-stats`: emotion inference and neuron ablation (one file: the
commands share their split and device options; the ablation library is in `extract/ablation/`)."""

from __future__ import annotations

import click

from emolake.analysis.commands import NEURON_SET_SIZES, allow_incomplete_option
from emolake.extract.choices import DEVICE_HELP, DEVICES, MODES, POOLINGS, READOUTS
from emolake.extract.models.families import NEURONS
from emolake.warehouse.names import NameParam

SPLIT_OPTIONS = [
    click.option("--fit-on", "fit_split", default="train", show_default=True, help="Split the read-out is fitted on."),
    click.option("--select-on", "select_split", default="dev", show_default=True,
                 help="Split that selects the probe's C / the best soft-prompt epoch."),
    click.option("--report-on", "report_split", default="test", show_default=True,
                 help="Split accuracy is reported on (`--select-on dev --report-on dev` reproduces the study)."),
]


def split_options(fn):
    for option in reversed(SPLIT_OPTIONS):
        fn = option(fn)
    return fn


def _emotions(value: str | None) -> list[str] | None:
    from emolake.ingest.emotions import normalise_emotion

    return [normalise_emotion(e) for e in value.split(",") if e.strip()] if value else None


def _seeds(value: str | None, seed: int, ctx: click.Context) -> list[int] | None:
    """--seeds as integers (None when not given); --seed given too must be one of them."""
    from emolake.warehouse.errors import BadInputError

    if value is None:
        return None
    try:
        seeds = [int(s) for s in value.split(",")]
    except ValueError as exc:
        raise BadInputError("--seeds takes comma-separated integers", column="seeds", expected="e.g. 1,3,5",
                            found=value) from exc
    if len(set(seeds)) != len(seeds):
        raise BadInputError("--seeds names a seed twice", column="seeds", expected="distinct seeds", found=value)
    if ctx.get_parameter_source("seed") is not click.core.ParameterSource.DEFAULT and seed not in seeds:
        raise BadInputError("--seed is not one of --seeds", column="seed", expected=f"one of {value} (or no --seed)",
                            found=seed)
    return seeds


@click.command("infer")
@click.option("--model", default=None, metavar="NAME_OR_PATH",
              help="Model: a local folder, Hugging Face hub name, .gguf file, or all-minilm-l6-v2 (default) / "
                   "smollm2-135m-instruct.")
@click.option("--dataset", default="goemotions", show_default=True, help="Dataset name: whose stimuli (in `stimuli`) make the tasks.")
@click.option("--readout", type=click.Choice(READOUTS), default="probe", show_default=True,
              help="Read-out: probe = logistic regression on frozen pooled features (any model); verbalizer = "
                   "label-word log-probs at {mask} (MLM head) or as the next token (causal LM); soft-prompt = "
                   "trained prompt vectors, frozen model (MLM or causal LM head).")
@click.option("--task", type=click.Choice(["binary", "multiclass"]), default="binary", show_default=True,
              help="binary: one task per emotion (its stimuli + as many others, seeded); multiclass: 27-way "
                   "over single-label stimuli.")
@click.option("--emotions", default=None, help="Emotion set: one task per emotion, comma-separated "
              "[default: the 27 GoEmotions emotions].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: of the negative draws and the fitting.")
@click.option("--seeds", "seeds", default=None, metavar="S1,S2,...",
              help="Soft-prompt replicates: comma-separated distinct seeds, one prompt per emotion and seed (the "
                   "study: 12), each seeding its negative draw, initialisation and batch order [default: --seed].")
@split_options
@click.option("--max-per-emotion", type=click.IntRange(1), default=None,
              help="Cap positives per emotion (binary) or stimuli per class (multiclass) in every split.")
@click.option("--template", default=None,
              help="Prompt template: {text} (and {mask} for a masked-LM verbalizer) [default: '{text}' for an "
                   "encoder's probe, '{text} I feel {mask}.' for its verbalizer, '{text}\\nThe emotion expressed "
                   "here is' for a causal LM].")
@click.option("--pooling", type=click.Choice(POOLINGS), default=None,
              help="Probe features: attention-masked mean of the last hidden state, the first token, or the last "
                   "token [default: mean for encoders, last for causal LMs].")
@click.option("--label-words", default=None,
              help="Comma-separated label words (verbalizer: one per emotion; soft-prompt binary: negative,positive).")
@click.option("--prompt-length", type=click.IntRange(1), default=20, show_default=True, help="Soft-prompt vectors.")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True, help="Soft-prompt epochs.")
@click.option("--lr", type=float, default=3e-2, show_default=True, help="Soft-prompt learning rate (AdamW).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Texts per forward pass.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def infer(lake, model, dataset, readout, task, emotions, seed, seeds, fit_split, select_split, report_split,
          max_per_emotion, template, pooling, label_words, prompt_length, epochs, lr, batch_size, device,
          as_json) -> None:
    """Fit and score an emotion-inference read-out on a dataset's splits; store accuracy, probes, predictions.

    With --readout soft-prompt, one prompt per emotion and seed is trained and stored in `prompts`
    (each as soon as it is trained: the same command again resumes, training only what is missing).

    \b
    Example:
      emolake --lake lake infer --dataset goemotions --readout probe --max-per-emotion 200
      emolake --lake lake infer --task multiclass --emotions joy,anger,fear --json
      emolake --lake lake infer --model smollm2-135m-instruct --readout soft-prompt --emotions joy,anger --seeds 1,2 --max-per-emotion 2 --epochs 1
    """
    from emolake.extract.inference.run import InferenceConfig, load_stimuli, run_inference
    from emolake.extract.models.loading import load_model, resolve_device
    from emolake.warehouse.console import print_summary, progress_bar

    lake.require()
    seed_list = _seeds(seeds, seed, click.get_current_context())
    device = resolve_device(device)
    with progress_bar("texts") as bar:
        bar_task = bar.add_task("loading model", total=None)
        loaded = load_model(model, device=device)
        stimuli = load_stimuli(lake, dataset)
        config = InferenceConfig(
            model=loaded.name, dataset=dataset, readout=readout, task=task, emotions=_emotions(emotions), seed=seed,
            seeds=seed_list,
            fit_split=fit_split, select_split=select_split, report_split=report_split,
            max_per_emotion=max_per_emotion, template=template, pooling=pooling,
            label_words=[w.strip() for w in label_words.split(",")] if label_words else None,
            batch_size=batch_size, device=device,
            soft_prompt={"n_prompt": prompt_length, "epochs": epochs, "lr": lr} if readout == "soft-prompt" else {})
        bar.update(bar_task, description=f"{readout} read-out")

        def start(label: str, total: int) -> None:  # one bar per trained (emotion, seed) prompt
            bar.reset(bar_task, total=total, description=label)

        fitted = run_inference(lake, loaded, stimuli, config, progress=lambda n: bar.advance(bar_task, n),
                               start=start)
    report = fitted.accuracy[fitted.accuracy["split"] == report_split]
    per_task = report.groupby("emotion", sort=False)["accuracy"].mean()
    summary = {"inference_id": fitted.inference_id, "model": loaded.name, "dataset": dataset, "readout": readout,
               "task": task, "tasks": len(per_task), "seeds": config.replicate_seeds,
               f"mean {report_split} accuracy": round(float(report["accuracy"].mean()), 4),
               "accuracy per task": {e: round(float(a), 4) for e, a in per_task.items()}}
    if fitted.prompts:
        summary["prompts"] = len(fitted.prompts)
    print_summary(f"Inference {fitted.inference_id}", summary, as_json=as_json)


@click.command("ablate")
@click.option("--run-set", required=True, help="Run set: whose attribute neurons are ablated (see `neurons`).")
@click.option("--study", required=True, help="Study id: whose attributes chose the neurons.")
@click.option("--attributes", default="all", show_default=True, help="'all' or comma-separated attributes.")
@click.option("--k", "ks", default=NEURON_SET_SIZES, show_default=True,
              help="Neuron-set size k: comma-separated values, each recorded by `neurons`.")
@click.option("--controls", type=click.IntRange(0), default=10, show_default=True,
              help="Random control sets per k (the study drew 1; one draw is noisy).")
@click.option("--layer-matched", is_flag=True, help="Controls match each attribute set's neurons per layer.")
@click.option("--scope", type=click.Choice(["global", "per_layer"]), default="global", show_default=True,
              help="Neuron-set scope: top k over all layers (the study) or top k of every layer (see `neurons`).")
@click.option("--mode", type=click.Choice(MODES), default="zero", show_default=True,
              help="zero (the study), mean over a reference set (fit split), scale by --value, or add noise "
                   "(sd = --value x the neuron's reference sd).")
@click.option("--value", type=float, default=0.0, show_default=True, help="Scale factor or noise sd (in sds).")
@click.option("--model", default=None, metavar="NAME_OR_PATH",
              help="Model: a local folder, Hugging Face hub name or .gguf file [default: the run set's model].")
@click.option("--neuron", type=click.Choice(NEURONS), default=None,
              help="Neuron definition: the one the sets were found at [default: the run set's, else mlp_post].")
@click.option("--dataset", default=None, help="Dataset name: whose stimuli make the tasks [default: the run set's dataset].")
@click.option("--readout", type=click.Choice(READOUTS), default="probe", show_default=True,
              help="Read-out: probe or verbalizer (fitted here, see `infer`), or soft-prompt: the stored prompts "
                   "of --prompts, each re-evaluated (the seed is the replicate).")
@click.option("--prompts", "prompts_id", type=NameParam(), default=None, metavar="INFERENCE_ID",
              help="Inference id: the `infer --readout soft-prompt --seeds ...` run whose stored prompts are "
                   "ablated, each re-evaluated (see the prompt_summary view).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: of the tasks, the probe and the control draws.")
@split_options
@click.option("--max-per-emotion", type=click.IntRange(1), default=None,
              help="Cap positives per emotion (in every split; cost grows with stimuli x conditions).")
@click.option("--conditions-per-pass", type=click.IntRange(1), default=12, show_default=True,
              help="Ablation conditions stacked along the batch in one forward pass.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Texts per forward pass.")
@click.option("--save-predictions", is_flag=True,
              help="Store every condition's predictions (one row per stimulus, task and condition).")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help=DEVICE_HELP)
@allow_incomplete_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def ablate(lake, run_set, study, attributes, ks, controls, layer_matched, scope, mode, value, model, neuron, dataset,
           readout, prompts_id, seed, fit_split, select_split, report_split, max_per_emotion, conditions_per_pass, batch_size,
           save_predictions, device, allow_incomplete, as_json) -> None:
    """Ablate attribute-specific neurons and random controls; score emotion inference under each.

    Fits (or reuses) the read-out on the fit split, evaluates unablated, attribute and control
    conditions on the report split's binary tasks, stores `ablations` / `ablation_accuracy`, and
    computes `ablation_summary` and `importance_link` (the latter once `rsa` gave human importance).
    With `--readout soft-prompt --prompts INFERENCE_ID` (the study's masking) every stored prompt is
    scored on its emotion's task under each condition, and its seed is the replicate.

    \b
    Example:
      emolake --lake lake ablate --run-set minilm-goemotions --study li2024 --k 500,1000,2000 --controls 10
      emolake --lake lake ablate --run-set minilm-goemotions --study li2024 --attributes valence,arousal --k 500 --layer-matched
      emolake --lake lake ablate --run-set prompts-smollm2 --study li2024 --readout soft-prompt --prompts INFERENCE_ID --report-on dev --k 100
    """
    from emolake.analysis.lake_inputs import require_complete_runs
    from emolake.extract.ablation.sweep import SweepConfig, read_attribute_neurons, run_sweep
    from emolake.extract.inference.run import InferenceConfig, fit_or_load_inference, load_stimuli
    from emolake.extract.models.loading import load_model, resolve_device
    from emolake.warehouse.console import print_summary, progress_bar
    from emolake.warehouse.errors import BadInputError

    lake.require()
    require_complete_runs(lake, run_set, allow_incomplete)
    try:
        k_values = sorted({int(k) for k in ks.split(",") if k.strip()})
    except ValueError as exc:
        raise BadInputError("--k takes comma-separated integers", column="k", found=ks) from exc
    model_name, run_dataset, run_neuron = _run_set_defaults(lake, run_set)
    neuron = neuron or run_neuron or "mlp_post"
    chosen = None if attributes == "all" else [a.strip() for a in attributes.split(",") if a.strip()]
    sweep = SweepConfig(run_set, study, k_values, chosen, controls, layer_matched, mode, value, scope, seed,
                        conditions_per_pass, batch_size, save_predictions=save_predictions, neuron=neuron)
    if (readout == "soft-prompt") != (prompts_id is not None):
        raise BadInputError("--prompts goes with --readout soft-prompt (and it with --prompts)", column="prompts",
                            expected="both or neither", found=f"--readout {readout}, --prompts {prompts_id}")
    neuron_sets = read_attribute_neurons(lake, run_set, study, k_values, chosen, scope)  # fail before loading
    device = resolve_device(device)
    if readout == "soft-prompt":
        summary = _ablate_prompts(lake, prompts_id, sweep, neuron_sets, model or model_name, dataset or run_dataset,
                                  fit_split, report_split, max_per_emotion, neuron, device)
        print_summary(f"Ablation sweep {run_set} / {study} (prompts {prompts_id})", summary, as_json=as_json)
        return
    with progress_bar("evals") as bar:
        task = bar.add_task("loading model", total=None)
        loaded = load_model(model or model_name, device=device, neuron=neuron)
        dataset = dataset or run_dataset
        stimuli = load_stimuli(lake, dataset)
        config = InferenceConfig(model=loaded.name, dataset=dataset, readout=readout, seed=seed, fit_split=fit_split,
                                 select_split=select_split, report_split=report_split,
                                 max_per_emotion=max_per_emotion, batch_size=batch_size, device=device)
        bar.update(task, description="fitting read-out")
        fitted, reused = fit_or_load_inference(lake, loaded, stimuli, config, lambda n: bar.advance(task, n))

        def start(total: int):
            bar.reset(task, total=total, description="ablating (condition x stimulus)")
            return lambda n: bar.advance(task, n)

        summary = run_sweep(lake, loaded, fitted, stimuli, sweep, neuron_sets, progress=start)
    summary["read-out reused"] = reused
    print_summary(f"Ablation sweep {run_set} / {study}", summary, as_json=as_json)


def _ablate_prompts(lake, prompts_id: str, sweep, neuron_sets: dict, model: str | None, dataset: str | None,
                    fit_split: str, report_split: str, max_per_emotion: int | None, neuron: str, device: str) -> dict:
    """`ablate --readout soft-prompt`: every stored prompt of `prompts_id` under every condition."""
    from emolake.extract.ablation.prompted import run_prompt_sweep
    from emolake.warehouse.errors import BadInputError
    from emolake.extract.inference.prompt_store import read_prompts
    from emolake.extract.inference.run import load_stimuli
    from emolake.extract.models.loading import load_model
    from emolake.warehouse.console import progress_bar
    from emolake.warehouse.database import connect

    prompts = read_prompts(lake, prompts_id)  # fail before loading
    with connect(lake) as con:
        stored = con.execute("SELECT model, dataset, max_per_emotion FROM inferences WHERE inference_id = ?",
                             [prompts_id]).fetchall()
    inference_model, inference_dataset, inference_cap = stored[0] if stored else (prompts[0].model, None, None)
    dataset = dataset or inference_dataset
    if dataset is None:
        raise BadInputError(f"no dataset known for prompts {prompts_id!r}", column="dataset",
                            expected="--dataset NAME")
    with progress_bar("evals") as bar:
        task = bar.add_task("loading model", total=None)
        loaded = load_model(model or inference_model, device=device, neuron=neuron)
        stimuli = load_stimuli(lake, dataset)

        def start(total: int):
            bar.reset(task, total=total, description="ablating (condition x stimulus, every prompt)")
            return lambda n: bar.advance(task, n)

        return run_prompt_sweep(lake, loaded, prompts, stimuli, sweep, {"model": loaded.name, "dataset": dataset},
                                report_split, max_per_emotion or inference_cap, fit_split, device, neuron_sets,
                                progress=start)


def _run_set_defaults(lake, run_set: str) -> tuple[str | None, str | None, str | None]:
    """(model, dataset, neuron definition) of the run set's runs, when they agree."""
    from emolake.warehouse.database import connect

    with connect(lake) as con:
        rows = con.execute("SELECT DISTINCT model, dataset, neuron FROM runs WHERE run_set = ?", [run_set]).fetchall()
    return rows[0] if len(rows) == 1 else (None, None, None)


@click.command("ablation-stats")
@click.option("--run-set", required=True, help="Run set: whose ablation results are tested.")
@click.option("--study", required=True, help="Study id: whose human attribute importance the drops are linked to.")
@click.option("--importance-method", default=None, help="attribute_importance method [default: tau_b].")
@click.option("--drop", type=click.Choice(["vs-control", "vs-unablated"]), default="vs-control", show_default=True,
              help="Accuracy drop of the importance link: random-control accuracy (the study's) or unablated "
                   "accuracy, minus attribute-ablated accuracy. Stored with the link.")
@click.option("--ablation-study", default=None,
              help="Study of the run set's ablation sweep [default: --study if it has one, else the run set's only one].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def ablation_stats(lake, run_set, study, importance_method, drop, ablation_study, as_json) -> None:
    """Recompute the paired tests and the importance link of a sweep (e.g. after `rsa` or a release load).

    The human importance comes from --study, the ablation results from --ablation-study, so a
    study's human data combines with any run set's sweep.

    \b
    Example:
      emolake --lake lake ablation-stats --run-set li2024-roberta --study li2024
      emolake --lake lake ablation-stats --run-set li2024-roberta --study li2024-preprocessed --drop vs-unablated
    """
    from emolake.analysis.ablation_stats import refresh_ablation_statistics
    from emolake.warehouse.console import print_summary

    summary = refresh_ablation_statistics(lake.require(), run_set, study, importance_method, drop=drop,
                                          ablation_study=ablation_study)
    print_summary(f"Ablation statistics {run_set} / {study}", summary, as_json=as_json)
