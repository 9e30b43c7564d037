"""`emolake protocol`: the study's whole protocol from one config file (library: `extract/protocol.py`)."""

from __future__ import annotations

import click


@click.command("protocol")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Protocol config: a TOML file naming model, emotions, stimuli, seeds, budgets, k values and "
                   "controls (docs/protocols/*.toml).")
@click.option("--check", is_flag=True, help="Only check the config file and print it with its defaults filled in.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def protocol(lake, config_path, check, as_json) -> None:
    """Run the study's protocol: soft prompts per emotion and seed, their activations, rsa, searchlight,
    attribute neurons, ablation of the prompted models, and the ablation statistics.

    Each step calls the library function of its command (`infer --readout soft-prompt --seeds`,
    `extract --prompts`, `rsa`, `searchlight`, `neurons`, `ablate --readout soft-prompt`,
    `ablation-stats`) and is skipped when the lake already holds its result for these settings, so the
    same command resumes an interrupted protocol. Needs the stimuli and the study's human data
    ingested first.

    \b
    Example:
      emolake --lake lake protocol --config docs/protocols/smollm2-cpu.toml --check
      emolake --lake lake protocol --config docs/protocols/smollm2-cpu.toml
      emolake --lake lake protocol --config docs/protocols/roberta-base-study.toml --json
    """
    from emolake.extract.protocol import load_protocol, run_protocol
    from emolake.warehouse.console import err, print_summary

    config = load_protocol(config_path)
    if check:
        print_summary(f"Protocol {config_path} (valid)", {s: dict(v) for s, v in config.items()}, as_json=as_json)
        return
    lake.require()
    summary = run_protocol(lake, config, echo=lambda line: err.print(line, markup=False, highlight=False),
                           progress=not as_json)
    print_summary(f"Protocol {config['protocol']['name']} / {config['protocol']['study']}", summary, as_json=as_json)
