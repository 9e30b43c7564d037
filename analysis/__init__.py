"""Analyses over the lake, ordered like the workflow; the figures, the report page and the demo
are the product surface beside them in `analysis.report`.

`rdm` (condensed RDM vectors), `compare` (one dispatcher over Kendall tau-b/tau-a, Spearman,
Pearson; the Kendall kernel lives in `kendall`), `inference` (permutation, bootstrap, noise
ceiling, variance partitioning), `rsa` (with `layers`: each layer's RDM alone), `cross_model`
(run sets compared on one study), `fdr`, `searchlight`, `neurons`, `appraisal`,
`ablation_stats`; `lake_inputs` reads the lake views they need; `commands` is the CLI layer.
"""
