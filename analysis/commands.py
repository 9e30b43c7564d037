"""CLI commands of the analyses: `rsa`, `searchlight`, `neurons` (registered in cli.py)."""

from __future__ import annotations

import click

from emolake.warehouse.lake import Lake

# `neurons` records these top-k sets and `ablate` ablates them: one default, so both run with defaults.
NEURON_SET_SIZES = "500,1000,4000"


def _lake(ctx: click.Context) -> Lake:
    return ctx.find_object(Lake).require()


allow_incomplete_option = click.option(
    "--allow-incomplete", is_flag=True,
    help="Analyse a run set even if some of its runs are not complete (an interrupted extract).")


def _complete(lake: Lake, run_set: str | None, allow_incomplete: bool) -> Lake:
    """`lake`, after refusing a run set with incomplete runs (unless --allow-incomplete)."""
    from .lake_inputs import require_complete_runs

    if run_set is not None:
        require_complete_runs(lake, run_set, allow_incomplete)
    return lake


def _print(title: str, summary: dict, as_json: bool) -> None:
    from emolake.warehouse.console import print_summary

    if as_json:
        print_summary(title, summary, as_json=True)
        return
    flat = {k: v for k, v in summary.items() if not isinstance(v, (dict, list)) or k in ("k", "noise_ceiling")}
    print_summary(title, flat)
    for key, value in summary.items():
        if isinstance(value, dict):
            print_summary(f"  {key}", value)


@click.command()
@click.option("--study", required=True, help="Study id: whose attributes and similarity judgments to use.")
@click.option("--run-set", default=None, help="Run set: whose model RDM to compare (omit: human analyses only).")
@click.option("--metric", type=click.Choice(["correlation", "euclidean", "cosine"]), default="correlation",
              show_default=True, help="Model RDM distance (correlation = 1 - Pearson).")
@click.option("--method", type=click.Choice(["tau_b", "tau_a", "spearman", "pearson"]), default="tau_b",
              show_default=True, help="RDM comparison (tau_b is the study's).")
@click.option("--permutations", "n_perm", type=int, default=10_000, show_default=True,
              help="Emotion-label permutations: per test (0: none).")
@click.option("--bootstrap", "n_boot", type=int, default=1_000, show_default=True,
              help="Bootstrap resamples: for the CIs over raters and emotions (0: none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: of permutations and bootstrap (recorded).")
@click.option("--attributes-study", default=None, help="Study whose attribute table to use (default: --study).")
@click.option("--layers/--no-layers", default=True, show_default=True,
              help="Also compare each layer's RDM (its neurons alone) with the human RDM (model_rsa.layer).")
@allow_incomplete_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def rsa(ctx, study, run_set, metric, method, n_perm, n_boot, seed, attributes_study, layers, allow_incomplete,
        as_json) -> None:
    """Representational similarity: human attribute importance, noise ceiling, model vs human and attributes.

    Computes every part the study's inputs allow (a study with attribute values but no similarity
    judgments gets the model-vs-attribute parts) and lists the skipped parts and why.

    Writes attribute_importance, noise_ceiling and (with --run-set) model_rsa (rows over all
    neurons, layer NULL, and per layer) and model_variance_partition; earlier results of the
    same study / run set, metric and method are replaced, those of other metrics and methods
    kept. Takes about a minute or two with the default 10,000 permutations per test on the 27
    emotions; each layer adds about as much as the model-vs-human comparison over all neurons
    (docs/BENCHMARKS.md; `--no-layers` skips them).

    \b
    Example:
      emolake --lake lake rsa --study li2024
      emolake --lake lake rsa --study li2024 --run-set li2024-roberta --permutations 1000 --seed 1 --json
    """
    from .rsa import run_rsa

    summary = run_rsa(_complete(_lake(ctx), run_set, allow_incomplete), study, run_set, metric, method, n_perm, n_boot,
                      seed, progress=not as_json, attributes_study=attributes_study, layers=layers)
    if run_set is not None:  # the model_rdm view reads the materialised mart: make sure it is fresh
        from emolake.warehouse.marts import refresh

        refresh(_lake(ctx), [run_set], progress=not as_json, command="rsa")
    _print("RSA", summary, as_json)


@click.command()
@click.option("--run-set", required=True, help="Run set: its runs are averaged (e.g. the 12 seeds of li2024-roberta).")
@click.option("--study", required=True, help="Study id: whose emotion attributes to test.")
@click.option("--inference", type=click.Choice(["permutation", "asymptotic"]), default="permutation", show_default=True,
              help="p valid under emotion-label permutation (each test's permutation variance and skewness), or the "
                   "study's asymptotic Kendall p (too small: the 351 pairs are not independent).")
@click.option("--permutations", "n_perm", type=int, default=500, show_default=True,
              help="Emotion-label permutations: of the attribute RDMs, shared by all neurons (--inference permutation).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: of the permutations (recorded).")
@click.option("--fdr", type=click.Choice(["monotone", "study"]), default="monotone", show_default=True,
              help="q in the `searchlight` view: Benjamini-Hochberg, or the study's p*N/rank(p). Both are stored.")
@click.option("--alpha", type=float, default=0.01, show_default=True, help="q threshold of searchlight_counts.")
@click.option("--precision", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="Neuron RDM precision: float64 equals scipy exactly; float32 is faster.")
@allow_incomplete_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def searchlight(ctx, run_set, study, inference, n_perm, seed, fdr, alpha, precision, allow_incomplete,
                as_json) -> None:
    """Searchlight RSA: Kendall tau-b of every neuron's RDM with every attribute RDM, one-sided p, FDR q.

    The default p is valid under permutation of the emotion labels (the study's asymptotic p is
    not: `--inference asymptotic --fdr study` reproduces the study). The permutations cost about 90
    asymptotic passes (36,864 neurons: an estimated 7 minutes on 2 idle cores, docs/BENCHMARKS.md). Then e.g.
    `emolake query "SELECT attribute, count(*) FROM searchlight WHERE q < 0.01 GROUP BY 1"`.

    \b
    Example:
      emolake --lake lake searchlight --run-set li2024-roberta --study li2024
      emolake --lake lake searchlight --run-set li2024-roberta --study li2024 --inference asymptotic --fdr study --json
    """
    from .searchlight import run_searchlight

    summary = run_searchlight(_complete(_lake(ctx), run_set, allow_incomplete), run_set, study, fdr, alpha, precision,
                              progress=not as_json, inference=inference, n_perm=n_perm, seed=seed)
    _print("Searchlight", summary, as_json)


@click.command()
@click.option("--run-set", required=True, help="Run set: whose stored searchlight ranks the neurons.")
@click.option("--study", required=True, help="Study id: whose stored searchlight ranks the neurons.")
@click.option("--k", "k_text", default=NEURON_SET_SIZES, show_default=True,
              help="Neuron-set size k: comma-separated values, one top-k set per attribute and k.")
@click.option("--scope", type=click.Choice(["global", "per_layer"]), default="global", show_default=True,
              help="Neuron-set scope: top k over all layers (the study), or top k within every layer.")
@allow_incomplete_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def neurons(ctx, run_set, study, k_text, scope, allow_incomplete, as_json) -> None:
    """Attribute-specific neurons: record top-k sets by searchlight tau, listed by `attribute_neurons`.

    Then e.g. `emolake query "SELECT attribute, count(*) FROM attribute_neurons WHERE k = 4000 GROUP BY 1"`.

    \b
    Example:
      emolake --lake lake neurons --run-set li2024-roberta --study li2024 --k 500,1000,4000
      emolake --lake lake neurons --run-set li2024-roberta --study li2024 --k 100 --scope per_layer
    """
    from emolake.warehouse.console import print_json, print_table

    from .neurons import parse_ks, run_neurons

    summary = run_neurons(_complete(_lake(ctx), run_set, allow_incomplete), run_set, study, parse_ks(k_text), scope)
    if as_json:
        print_json(summary)
        return
    import pyarrow as pa

    print_table(pa.Table.from_pylist(summary["sets"]), title=f"top-k sets ({scope}) of {run_set} / {study}")
    if summary["overlap"]:
        print_table(pa.Table.from_pylist(summary["overlap"]), title="overlap between attributes (Jaccard)")


@click.command()
@click.option("--study", required=True, help="Study id: whose raw appraisal item ratings (instrument 'appraisal') are used.")
@click.option("--published-study", default=None, help="Study holding the published attribute table (default: --study).")
@click.option("--draws", "n_draws", type=int, default=100, show_default=True, help="Random data sets of the parallel analysis.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: of the parallel analysis (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def appraisal(ctx, study, published_study, n_draws, seed, as_json) -> None:
    """Recompute the appraisal components (PCA + varimax, parallel analysis) and compare with the published table.

    Writes appraisal_components: per emotion, the six components matched to the published
    names, the rated attributes as means, and each one's correlation with the published values.

    \b
    Example:
      emolake --lake lake appraisal --study li2024
    """
    from .appraisal import run_appraisal

    _print("Appraisal components", run_appraisal(_lake(ctx), study, published_study, n_draws, seed), as_json)


@click.command()
@click.option("--run-sets", "run_sets_text", required=True,
              help="Run sets to compare, comma-separated (each needs `emolake rsa` on --study first).")
@click.option("--study", required=True, help="Study id: whose human RDM every run set is compared with.")
@click.option("--metric", type=click.Choice(["correlation", "euclidean", "cosine"]), default="correlation",
              show_default=True, help="Model RDM distance: that of the stored RSA to compare.")
@click.option("--method", type=click.Choice(["tau_b", "tau_a", "spearman", "pearson"]), default="tau_b",
              show_default=True, help="RDM comparison: that of the stored RSA to compare.")
@click.option("--bootstrap", "n_boot", type=int, default=1_000, show_default=True,
              help="Bootstrap resamples: of the emotions, for the paired test between two run sets (0: no test).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: of the paired bootstrap (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON: the comparison's rows.")
@click.pass_context
def compare(ctx, run_sets_text, study, metric, method, n_boot, seed, as_json) -> None:
    """Compare run sets (models, read-outs, neuron definitions) on one study, per model and best layer.

    Prints and stores model_comparison (tau over all layers and at the best layer, CIs, tau over
    single raters / noise ceiling) and model_comparison_tests (paired bootstrap over the shared
    emotions for every pair of run sets). Reads the per-layer RSA that `emolake rsa` stored.

    \b
    Example:
      emolake --lake lake compare --run-sets demo-minilm,demo-smollm2 --study li2024
      emolake --lake lake compare --run-sets a,b,c --study li2024 --bootstrap 2000 --seed 1 --json
    """
    from emolake.warehouse.console import print_json, print_table

    from .cross_model import compare_run_sets

    run_sets = [r.strip() for r in run_sets_text.split(",")]
    result = compare_run_sets(_lake(ctx), run_sets, study, metric, method, n_boot, seed, progress=not as_json)
    if as_json:
        print_json(result)
        return
    import pyarrow as pa

    def rounded(row: dict, keys: tuple[str, ...]) -> dict:
        return {k: (None if row[k] != row[k] else round(row[k], 3)) if isinstance(row[k], float) else row[k]
                for k in keys}  # NaN (x != x) prints as NULL

    shown = ("run_set", "model", "neuron", "position", "n_emotions", "tau", "ci_low", "ci_high", "p_perm", "best_layer",
             "best_tau", "tau_normalised")
    print_table(pa.Table.from_pylist([rounded(r, shown) for r in result["run_sets"]]),
                title=f"run sets vs human RDM of {study} ({metric}, {method}; view model_comparison)")
    if result["tests"]:
        tested = ("run_set_a", "run_set_b", "n_emotions", "difference", "ci_low", "ci_high", "p", "n_boot", "seed")
        print_table(pa.Table.from_pylist([rounded(t, tested) for t in result["tests"]]),
                    title="paired bootstrap over emotions: tau(a) - tau(b) (view model_comparison_tests)")
