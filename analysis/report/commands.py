"""CLI command `report`: the study's figures from the lake as one HTML page with PNGs beside it."""

from __future__ import annotations

import click

from emolake.warehouse.lake import Lake

pass_lake = click.make_pass_decorator(Lake)


@click.command()
@click.option("--out", "out_dir", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Output path: the folder for index.html, the PNGs and report.json.")
@click.option("--study", default=None, help="Study id: the human study shown (default: li2024 if loaded, else the first).")
@click.option("--run-set", default=None, help="Run set: the model run set shown (default: the first with a model RDM).")
@click.option("--k", type=int, default=None, help="Neuron-set size k: shown by the overlap and drop plots (default: largest).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: of the MDS map (recorded in the page).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_lake
def report(lake: Lake, out_dir: str, study: str | None, run_set: str | None, k: int | None, seed: int,
           as_json: bool) -> None:
    """Draw the study's figures from the lake into an HTML report (reads the lake, never writes it).

    Model and human RDMs (clustered), an MDS map, searchlight counts by layer and attribute,
    overlap of attribute neuron sets, ablation accuracy vs k with control bands, and accuracy drop
    vs human importance. A section whose analysis has not run yet says which command computes it.

    \b
    Example:
      emolake --lake lake report --out report
      emolake --lake lake report --out report --study li2024 --k 500 --json
    """
    import json

    from .page import build_report
    from emolake.warehouse.console import print_summary

    page = build_report(lake, out_dir, study=study, run_set=run_set, k=k, seed=seed)
    summary = json.loads((page.parent / "report.json").read_text())
    drawn = [title for title, s in summary["sections"].items() if s["images"] or s["tables"]]
    missing = [title for title, s in summary["sections"].items() if not (s["images"] or s["tables"])]
    if as_json:
        print_summary("report", {**summary, "drawn": drawn, "not_computed": missing}, as_json=True)
        return
    print_summary("Report", {"page": str(page), "figures drawn": len(drawn),
                             "not computed yet": ", ".join(missing) or "none"})
