"""`emolake demo`: the whole study on the embedded default, as the same commands a user would type.

Each step is one emolake command invoked with the demo's settings (so the demo exercises exactly
the user's code path), skipped when the lake already holds its result; a second run therefore
reuses what is done. The embedded default: 432 situations written by the project (27 emotions x
16, split 10/2/4), the study's published 27 x 14 attribute table and 351 mean human pair
distances (study `li2024`), and the bundled all-MiniLM-L6-v2 (6 layers x 1,536 FFN neurons).
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

RUN_ID = "demo-minilm"  # run id and run set of the demo's extraction
K_VALUES = "250,500,1000"  # neuron-set sizes (of 9,216 MiniLM neurons)
CONTROLS = 10
SEED = 0
PERMUTATIONS = 1000


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


def steps(out_dir: Path) -> list[Step]:
    from emolake.analysis.commands import neurons, rsa, searchlight
    from emolake.analysis.report.commands import report
    from emolake.extract.commands import extract
    from emolake.extract.inference.commands import ablate
    from emolake.ingest import embedded
    from emolake.ingest.commands import attributes, similarity, stimuli

    dataset, study = embedded.DATASET, embedded.STUDY
    return [
        Step("ingest the embedded situations", _has("stimuli", "dataset = ?", dataset),
             lambda ctx: ctx.invoke(stimuli, paths=(embedded.situations_path(),), layout="table", text_col="text",
                                    label_cols=("emotion",), split_col="split", id_col="stimulus_id",
                                    dataset=dataset)),
        Step("ingest the published attribute table", _has("emotion_attributes", "study = ?", study),
             lambda ctx: ctx.invoke(attributes, path=embedded.attributes_path(), study=study)),
        Step("ingest the published human distances", _has("human_rdm", "study = ?", study),
             lambda ctx: ctx.invoke(similarity, path=embedded.similarity_path(), study=study)),
        Step("extract FFN activations (MiniLM)", _has("runs", "run_id = ? AND status = 'complete'", RUN_ID),
             lambda ctx: ctx.invoke(extract, dataset=dataset, run_id=RUN_ID, run_set=RUN_ID)),
        Step("RSA: human attribute importance, model vs human",
             _has("model_rsa", "run_set = ? AND study = ?", RUN_ID, study),
             lambda ctx: ctx.invoke(rsa, study=study, run_set=RUN_ID, n_perm=PERMUTATIONS, n_boot=200, seed=SEED)),
        Step("searchlight: every neuron x attribute", _has("searchlight", "run_set = ? AND study = ?", RUN_ID, study),
             lambda ctx: ctx.invoke(searchlight, run_set=RUN_ID, study=study)),
        Step("attribute neurons: top-k sets", _has("attribute_neurons", "run_set = ? AND study = ?", RUN_ID, study),
             lambda ctx: ctx.invoke(neurons, run_set=RUN_ID, study=study, k_text=K_VALUES)),
        Step("probe + ablation with random controls",
             _has("ablation_results", "run_set = ?", RUN_ID),
             lambda ctx: ctx.invoke(ablate, run_set=RUN_ID, study=study, ks=K_VALUES, controls=CONTROLS,
                                    dataset=dataset, seed=SEED)),
        Step("report", lambda lake: False,
             lambda ctx: ctx.invoke(report, out_dir=str(out_dir), study=study, run_set=RUN_ID, seed=SEED)),
    ]


def key_numbers(lake: Lake) -> dict:
    """The few figures the demo ends with, read back from the views."""
    from emolake.ingest import embedded
    from emolake.warehouse.database import connect

    study = embedded.STUDY
    with connect(lake) as con:
        def one(sql: str, *params):
            row = con.execute(sql, list(params)).fetchone()
            return None if row is None else (row[0] if len(row) == 1 else row)

        rsa_row = one("SELECT tau, p_perm FROM model_rsa WHERE run_set = ? AND study = ? AND target = 'human' "
                      "AND method = 'tau_b' AND layer IS NULL LIMIT 1", RUN_ID, study) or (None, None)
        best = one("SELECT layer, tau, ci_emotions_low, ci_emotions_high FROM model_rsa WHERE run_set = ? AND study = ? "
                   "AND target = 'human' AND method = 'tau_b' AND metric = 'correlation' AND layer IS NOT NULL "
                   "ORDER BY tau DESC, layer LIMIT 1", RUN_ID, study) or (None, None, None, None)
        k = int(K_VALUES.split(",")[-1])
        link = one("SELECT mean_r, p FROM importance_link WHERE run_set = ? AND k = ? LIMIT 1", RUN_ID, k) or (None, None)
        return {
            "stimuli": one("SELECT count(DISTINCT stimulus_id) FROM stimuli WHERE dataset = ?", embedded.DATASET),
            "neurons": one("SELECT n_layers * d_ff FROM runs WHERE run_id = ?", RUN_ID),
            "model vs human RDM, Kendall tau-b": _round(rsa_row[0]),
            "model vs human RDM, permutation p": _round(rsa_row[1]),
            "most human-like layer (chosen on these data)": best[0],
            "most human-like layer, Kendall tau-b": _round(best[1]),
            "most human-like layer, 95% CI over emotions": None if best[2] is None else [_round(best[2]), _round(best[3])],
            "neurons significant for an attribute (searchlight q < 0.01)": one(
                "SELECT count(DISTINCT neuron) FROM searchlight WHERE run_set = ? AND study = ? AND q < 0.01",
                RUN_ID, study),
            f"accuracy drop vs human importance at k={k}, mean r": _round(link[0]),
            f"accuracy drop vs human importance at k={k}, p": _round(link[1]),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


@click.command()
@click.option("--out", "out_dir", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Output path: the folder of the HTML report.")
@click.option("--force", is_flag=True, help="Redo every step, even those the lake already holds.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON: the key numbers.")
@click.pass_context
def demo(ctx: click.Context, out_dir: str, force: bool, as_json: bool) -> None:
    """Run the whole study on the embedded default: ingest, extract, RSA, searchlight, neurons, ablation, report.

    Uses the bundled all-MiniLM-L6-v2, 432 situations written by the project and the study's
    published attribute table and human distances. Steps already in the lake are skipped, so a
    second run only redraws the report. About a minute on 2 idle CPU cores (0.8 min measured
    on the development VM; several minutes when the cores are shared).

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
        with contextlib.redirect_stdout(sys.stderr):  # each step's summary is progress; stdout gets the result
            step.run(ctx)
    numbers = key_numbers(lake)
    numbers["report"] = str(Path(out_dir).resolve() / "index.html")
    numbers["minutes"] = round((time.perf_counter() - started) / 60, 2)
    print_summary("emolake demo: key numbers", numbers, as_json=as_json)
