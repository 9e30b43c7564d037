"""`emolake demo`: the whole study on both bundled models and real text, as the commands a user would type.

Each step is one emolake command invoked with the demo's settings (so the demo exercises exactly
the user's code path), skipped when the lake already holds its result; a second run therefore
reuses what is done. The data: a seeded sample of real GoEmotions comments shipped in the package
(`ingest/embedded/goemotions_sample/`, Apache-2.0, Demszky et al. 2020: 10 train / 2 dev / 4 test
single-label comments per emotion, 430 in all), the study's published 27 x 14 attribute table and
351 mean human pair distances (study `li2024`). The models: the two bundled with emolake,
all-MiniLM-L6-v2 (BERT encoder, 6 layers x 1,536 FFN neurons) and SmolLM2-135M-Instruct (decoder
LLM, 30 layers x 1,536).

Read-outs are chosen on principle, before seeing any result, and never tuned to one: each model is
read where its training objective puts the information. MiniLM is a sentence-embedding model
trained on the mean of its token states, so it is read as the mean over tokens of the bare text.
SmolLM2 is a causal LM whose next-token prediction is computed at the last token, so it is read at
the last token of emolake's default causal template (`{text}\\nThe emotion expressed here is`,
the position that predicts the emotion word). Both are `emolake extract`'s defaults for their kind
of model. Inference and ablation use the probe read-out (a logistic regression on the unablated
activations; cheaper than soft prompts).

The summary ends with the per-model, per-layer comparison (`emolake compare`): the most human-like
model and layer with its tau-b, 95% CI over emotions and the noise ceiling, all read back from the
lake. The embedded human data are the 351 mean distances (one averaged rater), so the noise
ceiling, which needs single raters, is reported as absent rather than invented.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from emolake.warehouse.lake import Lake

SEED = 0
PERMUTATIONS = 1000  # rsa: permutations of the emotions (all neurons and each layer)
BOOTSTRAP = 200  # rsa: bootstrap resamples of the emotions for the CIs
COMPARE_BOOTSTRAP = 1000  # compare: paired bootstrap over emotions (the command's default)
# ablate: conditions stacked in one forward pass, times its 32 texts. A bare SmolLM2 forward on 2 CPU cores runs
# 400 tokens/s at 64-128 rows but 320 at the command's default 384 (12 x 32), so the demo passes 4 x 32; the
# demo's SmolLM2 ablation step took 231 s with it and 235 s without (docs/BENCHMARKS.md): within noise.
ABLATION_CONDITIONS_PER_PASS = 4
METHOD, METRIC = "tau_b", "correlation"  # the study's RDM comparison and model RDM distance


@dataclass(frozen=True)
class DemoModel:
    """One bundled model's run set in the demo and the settings it runs with."""

    run_set: str  # run id and run set of its extraction
    model: str  # bundled model name (`emolake extract --model`)
    position: str  # read-out position, chosen on principle (see the module docstring)
    k_values: str  # neuron-set sizes: the same shares of each model's neurons (2.7%, 5.4%, 10.9%)
    searchlight_permutations: int
    why: str  # the read-out's principle, printed with the run
    ablation_k: str  # the k values ablated (a subset of k_values)
    controls: int  # random neuron sets per ablated k


MODELS = (
    # Both models are ablated at one k, the largest share (10.9% of the neurons: the k the summary reports),
    # against random controls of the same size: 14 attribute sets + controls + the unablated model.
    DemoModel("demo-minilm", "all-minilm-l6-v2", "mean", "250,500,1000", 500,
              "sentence encoder trained on mean pooling: mean over tokens of the text", "1000", 10),
    # 46,080 neurons: 100 searchlight permutations instead of the default 500, so that its null costs what
    # MiniLM's 9,216 neurons x 500 do (the cost is neurons x permutations), towards the demo's budget of 10
    # minutes on 2 cores; the p values' tail is then less exact (analysis/searchlight.py's calibration is
    # for 300-500). The demo says so in its step names and summary.
    # Its ablation has 5 random controls (20 conditions x the test split through a 30-layer decoder): the
    # sweep's cost is conditions x texts x the model's forward pass; 73 took over 10 minutes on 2 cores alone.
    DemoModel("demo-smollm2", "smollm2-135m-instruct", "last", "1250,2500,5000", 100,
              "causal LM: the last token of the default template, where the next token is predicted", "5000", 5),
)


@dataclass
class Step:
    name: str
    done: Callable[[Lake], bool]
    run: Callable[[click.Context], None]


def _count(lake: Lake, sql: str, *params) -> int:
    from emolake.warehouse.database import connect

    with connect(lake) as con:
        return int(con.execute(sql, list(params)).fetchone()[0])


def _has(view: str, where: str, *params) -> Callable[[Lake], bool]:
    return lambda lake: _count(lake, f"SELECT count(*) FROM {view} WHERE {where}", *params) > 0


def _model_steps(m: DemoModel) -> list[Step]:
    from emolake.analysis.commands import neurons, rsa, searchlight
    from emolake.extract.commands import extract
    from emolake.extract.inference.commands import ablate
    from emolake.ingest import embedded

    study, dataset = embedded.STUDY, embedded.SAMPLE_DATASET
    return [
        Step(f"extract FFN activations ({m.model}, read-out {m.position}: {m.why})",
             _has("runs", "run_id = ? AND status = 'complete'", m.run_set),
             lambda ctx: ctx.invoke(extract, model=m.model, dataset=dataset, position=m.position, run_id=m.run_set,
                                    run_set=m.run_set)),
        Step(f"RSA ({m.run_set}): human attribute importance, model vs human, all neurons and per layer",
             _has("model_rsa", "run_set = ? AND study = ?", m.run_set, study),
             lambda ctx: ctx.invoke(rsa, study=study, run_set=m.run_set, n_perm=PERMUTATIONS, n_boot=BOOTSTRAP,
                                    seed=SEED)),
        Step(f"searchlight ({m.run_set}, {m.searchlight_permutations} permutations): every neuron x attribute",
             _has("searchlight", "run_set = ? AND study = ?", m.run_set, study),
             lambda ctx: ctx.invoke(searchlight, run_set=m.run_set, study=study, n_perm=m.searchlight_permutations,
                                    seed=SEED)),
        Step(f"attribute neurons ({m.run_set}): top-k sets, k = {m.k_values}",
             _has("attribute_neurons", "run_set = ? AND study = ?", m.run_set, study),
             lambda ctx: ctx.invoke(neurons, run_set=m.run_set, study=study, k_text=m.k_values)),
        Step(f"probe + ablation ({m.run_set}) at k = {m.ablation_k} with {m.controls} random controls per k",
             _has("ablation_results", "run_set = ?", m.run_set),
             lambda ctx: ctx.invoke(ablate, run_set=m.run_set, study=study, ks=m.ablation_k, controls=m.controls,
                                    dataset=dataset, seed=SEED, conditions_per_pass=ABLATION_CONDITIONS_PER_PASS)),
    ]


def steps(out_dir: Path) -> list[Step]:
    from emolake.analysis.commands import compare
    from emolake.analysis.report.commands import report
    from emolake.ingest import embedded
    from emolake.ingest.commands import attributes, similarity, stimuli

    study = embedded.STUDY
    run_sets = ",".join(m.run_set for m in MODELS)
    return [
        Step("ingest the GoEmotions sample (real comments, Apache-2.0)",
             _has("stimuli", "dataset = ?", embedded.SAMPLE_DATASET),
             lambda ctx: ctx.invoke(stimuli, paths=(embedded.goemotions_sample_path(),), layout="goemotions-tsv",
                                    dataset=embedded.SAMPLE_DATASET)),
        Step("ingest the published attribute table", _has("emotion_attributes", "study = ?", study),
             lambda ctx: ctx.invoke(attributes, path=embedded.attributes_path(), study=study)),
        Step("ingest the published human distances", _has("human_rdm", "study = ?", study),
             lambda ctx: ctx.invoke(similarity, path=embedded.similarity_path(), study=study)),
        *[step for m in MODELS for step in _model_steps(m)],
        Step(f"compare the models, all layers and per layer ({run_sets})",
             lambda lake: _count(lake, "SELECT count(DISTINCT run_set) FROM model_comparison WHERE study = ? AND "
                                       f"metric = ? AND method = ? AND run_set IN ({', '.join('?' * len(MODELS))})",
                                 study, METRIC, METHOD, *(m.run_set for m in MODELS)) == len(MODELS),
             lambda ctx: ctx.invoke(compare, run_sets_text=run_sets, study=study, metric=METRIC, method=METHOD,
                                    n_boot=COMPARE_BOOTSTRAP, seed=SEED)),
        Step("report", lambda lake: False,
             lambda ctx: ctx.invoke(report, out_dir=str(out_dir), study=study, run_set=most_human_like(ctx.obj)[0],
                                    seed=SEED)),
    ]


def most_human_like(lake: Lake) -> tuple[str, int]:
    """(run set, layer) with the highest per-layer tau-b with the human RDM among the demo's run sets."""
    row = _comparison_rows(lake)[0]
    return row["run_set"], row["best_layer"]


def _comparison_rows(lake: Lake) -> list[dict]:
    """The demo's run sets in `model_comparison`, most human-like layer first."""
    from emolake.ingest import embedded
    from emolake.warehouse.database import query

    names = ", ".join(f"'{m.run_set}'" for m in MODELS)  # fixed names of this module, not user input
    rows = query(lake, f"SELECT * FROM model_comparison WHERE study = $study AND metric = $metric AND method = $method "
                       f"AND run_set IN ({names}) ORDER BY best_tau DESC, run_set",
                 {"study": embedded.STUDY, "metric": METRIC, "method": METHOD}).to_pylist()
    if not rows:
        from emolake.warehouse.errors import NotFoundError

        raise NotFoundError("the demo's model comparison is not in the lake", expected="emolake demo")
    return rows


def key_numbers(lake: Lake) -> dict:
    """The figures the demo ends with, read back from the views: per model, then the comparison."""
    from emolake.ingest import embedded
    from emolake.warehouse.database import connect

    study = embedded.STUDY
    comparison = {r["run_set"]: r for r in _comparison_rows(lake)}
    numbers: dict = {}
    with connect(lake) as con:
        def one(sql: str, *params):
            row = con.execute(sql, list(params)).fetchone()
            return None if row is None else (row[0] if len(row) == 1 else row)

        numbers["stimuli"] = one("SELECT count(DISTINCT stimulus_id) FROM stimuli WHERE dataset = ?",
                                 embedded.SAMPLE_DATASET)
        for m in MODELS:
            row = comparison[m.run_set]
            k = int(m.ablation_k.split(",")[-1])
            link = one("SELECT mean_r, p FROM importance_link WHERE run_set = ? AND k = ? LIMIT 1", m.run_set, k)
            link = link or (None, None)
            numbers[m.run_set] = {
                "model": row["model"],
                "read-out": f"{row['position']} ({m.why})",
                "neurons": one("SELECT max(n_layers * d_ff) FROM runs WHERE run_set = ?", m.run_set),
                "all layers: Kendall tau-b": _round(row["tau"]),
                "all layers: 95% CI over emotions": _interval(row["ci_low"], row["ci_high"]),
                "all layers: permutation p": _round(row["p_perm"]),
                "all layers: permutations (p floor 1 / (P + 1))": row["n_perm"],
                "best layer (chosen on these data)": row["best_layer"],
                "best layer: Kendall tau-b": _round(row["best_tau"]),
                "best layer: 95% CI over emotions": _interval(row["best_ci_low"], row["best_ci_high"]),
                f"searchlight permutations (demo: {m.searchlight_permutations}, default 500)":
                    m.searchlight_permutations,
                "neurons significant for an attribute (searchlight q < 0.01)": one(
                    "SELECT count(DISTINCT neuron) FROM searchlight WHERE run_set = ? AND study = ? AND q < 0.01",
                    m.run_set, study),
                f"accuracy drop vs human importance at k={k}, mean r": _round(link[0]),
                f"accuracy drop vs human importance at k={k}, p": _round(link[1]),
            }
        test = one("SELECT difference, ci_low, ci_high, p FROM model_comparison_tests WHERE study = ? AND metric = ? "
                   "AND method = ? AND run_set_a = ? AND run_set_b = ?", study, METRIC, METHOD,
                   MODELS[0].run_set, MODELS[1].run_set)
    best = _comparison_rows(lake)[0]
    numbers["most human-like model"] = best["model"]
    numbers["most human-like run set and layer"] = f"{best['run_set']} layer {best['best_layer']}"
    numbers["most human-like layer: Kendall tau-b"] = _round(best["best_tau"])
    numbers["most human-like layer: 95% CI over emotions"] = _interval(best["best_ci_low"], best["best_ci_high"])
    numbers["noise ceiling (lower, upper)"] = (
        "not available: needs single raters; the embedded human data are the 351 mean distances"
        if _missing(best["ceiling_upper"]) else _interval(best["ceiling_lower"], best["ceiling_upper"]))
    if test is not None:
        numbers[f"paired bootstrap, all layers: tau({MODELS[0].run_set}) - tau({MODELS[1].run_set})"] = _round(test[0])
        numbers["paired bootstrap: 95% CI, p"] = [*_interval(test[1], test[2]), _round(test[3])]
    return numbers


def _missing(value: float | None) -> bool:
    return value is None or value != value  # NULL or NaN


def _round(value: float | None) -> float | None:
    return None if _missing(value) else round(float(value), 4)


def _interval(low: float | None, high: float | None) -> list[float | None] | None:
    return None if _missing(low) and _missing(high) else [_round(low), _round(high)]


@click.command()
@click.option("--out", "out_dir", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Output path: the folder of the HTML report.")
@click.option("--force", is_flag=True, help="Redo every step, even those the lake already holds.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON: the key numbers.")
@click.pass_context
def demo(ctx: click.Context, out_dir: str, force: bool, as_json: bool) -> None:
    """Run the whole study on both bundled models: ingest, extract, RSA, searchlight, neurons, ablation, compare, report.

    Uses all-MiniLM-L6-v2 (read at the mean over tokens) and SmolLM2-135M-Instruct (read at the
    last token of the default template), a seeded sample of 430 real GoEmotions comments shipped in
    the package, and the study's published attribute table and human distances. SmolLM2's
    searchlight runs 100 permutations (default 500) to fit the time budget. Steps already in the
    lake are skipped, so a second run only redraws the report. Meant to take under 10 minutes on
    2 idle CPU cores; the README says what has been measured so far.

    \b
    Example:
      emolake --lake lake demo --out report
    """
    from emolake.warehouse.console import err, print_summary
    from emolake.warehouse.database import rebuild_views

    lake: Lake = ctx.obj
    lake.init()
    rebuild_views(lake)
    plan = steps(Path(out_dir))
    started = time.perf_counter()
    for number, step in enumerate(plan, 1):
        if not force and step.done(lake):
            err.print(f"[dim]step {number}/{len(plan)}: {step.name}: already in the lake, skipped[/dim]", soft_wrap=True)
            continue
        err.rule(f"step {number}/{len(plan)}: {step.name}")
        begun = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # each step's summary is progress; stdout gets the result
            step.run(ctx)
        err.print(f"[dim]step {number}/{len(plan)} took {time.perf_counter() - begun:.0f} s[/dim]")
    numbers = key_numbers(lake)
    numbers["report"] = str(Path(out_dir).resolve() / "index.html")
    numbers["minutes"] = round((time.perf_counter() - started) / 60, 2)
    if not as_json:  # one `key: value` line each, a model's numbers prefixed with its run set
        numbers = {(f"{group} / {key}" if isinstance(inner, dict) else group): value
                   for group, inner in numbers.items()
                   for key, value in (inner.items() if isinstance(inner, dict) else [(None, inner)])}
    print_summary("emolake demo: key numbers", numbers, as_json=as_json)
