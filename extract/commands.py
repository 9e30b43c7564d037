"""`emolake extract`: capture a model's MLP neurons over a dataset's stimuli into the lake."""

from __future__ import annotations

import click

from emolake.extract.choices import DEVICE_HELP, DEVICES, STORES
from emolake.extract.models.families import DEFAULT_NEURON, NEURONS
from emolake.extract.prompts import POSITIONS
from emolake.warehouse.names import NameParam

# What `--prompts` decides itself (the stimuli are the prompts, the read-out their mask / last position).
PROMPT_EXCLUSIVE = ("dataset", "split", "template", "position", "chat", "run_id", "limit", "emotions", "chunk_size",
                    "store", "shard", "use_ray", "workers", "num_gpus", "num_cpus")


@click.command("extract")
@click.option("--model", "model", default=None, metavar="NAME_OR_PATH",
              help="Model: a local folder, Hugging Face hub name, .gguf file, or a bundled name: all-minilm-l6-v2 "
                   "(default), smollm2-135m-instruct.")
@click.option("--dataset", default="goemotions", show_default=True, help="Dataset name: whose stimuli (in `stimuli`) are run.")
@click.option("--split", default=None, help="Split: only the dataset's stimuli of this split [default: all splits].")
@click.option("--template", default=None,
              help="Prompt template: {text} is the stimulus, {mask} the tokenizer's mask token [default: "
                   "'{text} I feel {mask}.' at position mask, '{text}\\nThe emotion expressed here is' at last, "
                   "'{text}' otherwise].")
@click.option("--position", type=click.Choice(POSITIONS), default=None,
              help="Read-out: the last token (causal LMs), the mask token (on a causal LM: where {mask} would be "
                   "predicted), the first token, the mean, or every token [default: last for a causal LM, mask "
                   "with an MLM head, mean for a sentence encoder].")
@click.option("--neuron", type=click.Choice(NEURONS), default=DEFAULT_NEURON, show_default=True,
              help="Neuron definition: mlp_post = the input of the down projection (act(gate(x)) * up(x) in gated "
                   "MLPs, the activation output in ungated ones); mlp_gate = act(gate(x)) (gated MLPs only).")
@click.option("--chat", is_flag=True, help="Wrap each prompt in the tokenizer's chat template (a user turn).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True,
              help="Compute dtype (activations are stored as float32); bfloat16/float16 only on cuda.")
@click.option("--run-id", default=None, help="Run id [default: derived from model, data and settings, so the "
              "same command resumes the same run].")
@click.option("--run-set", default=None, help="Run set: the group of runs analysed together (e.g. seeds) "
              "[default: the run id].")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Texts per forward pass.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N: stimuli, in source order.")
@click.option("--emotions", default=None, help="Emotion set: only stimuli labelled with one of them, comma-separated.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help=DEVICE_HELP + " cuda spreads a model too large for one GPU with accelerate (device_map='auto').")
@click.option("--chunk-size", type=click.IntRange(1), default=None,
              help="Stimuli per written chunk (resume granularity) [default: ~8 MB per layer file].")
@click.option("--store", "store", type=click.Choice(STORES), default="vectors", show_default=True,
              help="What is kept: vectors = every stimulus's activations (table activations); profiles = per "
                   "emotion and neuron only the count, sum and sum of squares (table profile_parts), enough for "
                   "emotion_profile and every analysis above it but not for per-stimulus ones.")
@click.option("--shard", default=None, metavar="I/N",
              help="Shard: write only shard I of N (0-based) of the run, chunks I, I+N, ...; N shards of one run "
                   "(any order, concurrently, on any machines sharing the lake) hold what the unsharded run holds.")
@click.option("--ray", "use_ray", is_flag=True,
              help="Run the shards as Ray tasks: on the cluster at $RAY_ADDRESS, else on a local Ray instance.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Ray workers: shards run at once with --ray, one model each [default: 2].")
@click.option("--num-gpus", type=click.FloatRange(0), default=None,
              help="GPUs per Ray worker (with --ray) [default: 0].")
@click.option("--num-cpus", type=click.FloatRange(0.01), default=None,
              help="CPUs per Ray worker (with --ray; also its torch threads) [default: 1].")
@click.option("--prompts", "prompts", default=None, metavar="INFERENCE_ID", type=NameParam(),
              help="Inference id: read each stored soft prompt of this `infer --readout soft-prompt` run with no "
                   "text instead of a dataset (one run per seed, one stimulus per emotion, in --run-set).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def extract(ctx, model, dataset, split, template, position, neuron, chat, dtype, run_id, run_set, batch_size, limit,
            emotions, device, chunk_size, store, shard, use_ray, workers, num_gpus, num_cpus, prompts,
            as_json) -> None:
    """Capture every layer's FFN activations at the read-out position for a dataset's stimuli.

    Writes activations/run_id=.../layer=.../part-*.parquet and a `runs` manifest row. Interrupted
    runs (Ctrl-C, kill -9) resume when the same command is run again; a finished run is not redone.
    With --prompts, the stimuli are the stored soft prompts of an inference run, alone (the study's
    emotion representations): masked LM `<s> P <mask> </s>` read at the mask, causal LM `P` read at
    its last position.

    \b
    Example:
      emolake --lake lake extract --dataset goemotions --split test --limit 200
      emolake --lake lake extract --position cls --template "{text}" --json
      emolake --lake lake extract --model smollm2-135m-instruct --dataset goemotions --split test --limit 200
      emolake --lake lake extract --dataset goemotions --split test --store profiles
      emolake --lake lake extract --dataset goemotions --split test --shard 0/2
      emolake --lake lake extract --dataset goemotions --split test --ray --workers 2
      emolake --lake lake extract --prompts smollm2-135m-instruct-goemotions-soft-prompt-binary-2seeds-0123abcd --run-set smol-prompts
    """
    from emolake.extract.run import ExtractSettings, Shard, extract_run, parse_shard
    from emolake.ingest.emotions import normalise_emotion
    from emolake.warehouse.console import progress_bar
    from emolake.warehouse.errors import BadInputError

    lake = ctx.obj
    if prompts is not None:
        given = [f"--{name.replace('_', '-')}" for name in PROMPT_EXCLUSIVE
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise BadInputError("--prompts reads the stored prompts alone", column="prompts",
                                expected="no dataset or template options with --prompts", found=", ".join(given))
        _extract_prompts(lake, prompts, run_set, model, device, dtype, neuron, batch_size, as_json)
        return

    wanted = tuple(sorted({normalise_emotion(e) for e in emotions.split(",") if e.strip()})) if emotions else None
    settings = ExtractSettings(model=model, dataset=dataset, split=split, template=template, position=position,
                               run_id=run_id, run_set=run_set, batch_size=batch_size, limit=limit, emotions=wanted,
                               device=device, chunk_size=chunk_size, neuron=neuron, dtype=dtype, chat=chat,
                               store=store, shard=parse_shard(shard) if shard is not None else Shard())
    if use_ray:
        _extract_on_ray(lake.require(), settings, workers or 2, num_gpus or 0, num_cpus or 1, as_json)
        return
    given = [flag for flag, value in (("--workers", workers), ("--num-gpus", num_gpus), ("--num-cpus", num_cpus))
             if value is not None]
    if given:
        raise BadInputError(f"{given[0]} is an option of --ray", column=given[0].lstrip("-"),
                            expected="--ray with it, or neither", found=f"{given[0]} without --ray")
    with progress_bar("prompts") as bar:
        task = bar.add_task("loading model", total=None)

        def on_start(total: int, done: int) -> None:
            # reset, so that prompts/s and the ETA count only this session's work on a resume
            bar.reset(task, total=total, completed=done, description="extracting")

        summary = extract_run(lake.require(), settings, on_start=on_start,
                              on_progress=lambda n: bar.advance(task, n), command="extract")
        if summary["status"] == "already complete":
            bar.update(task, visible=False)
    _print_run_summary(summary, as_json)


def _print_run_summary(summary: dict, as_json: bool) -> None:
    from emolake.warehouse.console import print_summary

    if as_json:
        print_summary("extract", summary, as_json=True)
    else:
        print_summary(summary.pop("message", f"Run {summary['run_id']}: {summary['status']}"), summary)


def _extract_on_ray(lake, settings, workers: int, num_gpus: float, num_cpus: float, as_json: bool) -> None:
    from emolake.extract.distributed import extract_ray
    from emolake.warehouse.console import progress_bar

    with progress_bar("prompts") as bar:
        task = bar.add_task(f"starting {workers} Ray workers", total=None)

        def on_progress(total: int, done: int) -> None:
            if total:
                bar.update(task, total=total, completed=done, description=f"extracting ({workers} workers)")

        summary = extract_ray(lake, settings, workers, num_gpus=num_gpus, num_cpus=num_cpus, on_progress=on_progress)
        if summary["status"] == "already complete":
            bar.update(task, visible=False)
    _print_run_summary(summary, as_json)


def _extract_prompts(lake, inference_id: str, run_set, model, device, dtype, neuron, batch_size, as_json) -> None:
    from emolake.extract.models.loading import resolve_device
    from emolake.extract.run import extract_prompt_runs
    from emolake.warehouse.console import print_summary, progress_bar

    with progress_bar("prompts") as bar:
        task = bar.add_task("loading model", total=None)
        summary = extract_prompt_runs(
            lake.require(), inference_id, run_set, model=model, device=resolve_device(device), dtype=dtype,
            neuron=neuron, batch_size=batch_size,
            on_start=lambda total, done: bar.reset(task, total=total, completed=done, description="prompt activations"),
            on_progress=lambda n: bar.advance(task, n))
    print_summary(f"Prompt activations of {inference_id}: run set {summary['run_set']}", summary, as_json=as_json)
