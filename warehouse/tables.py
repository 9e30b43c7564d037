"""The lake's tables: name, hive partition keys and Arrow schema of each, in one registry.

Each table is a directory of hive-partitioned zstd Parquet. The schema here is the contract:
writers are checked against it, and every table is seeded with a zero-row file so that its
view in `sql/` resolves before the first load. Partition values never appear inside the files.
To add a table, add one `TableSpec` to `TABLES` (and its view to `sql/`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_by: tuple[tuple[str, pa.DataType], ...]
    schema: pa.Schema  # columns stored in the files (partition keys excluded)
    doc: str
    write_options: dict = field(default_factory=dict)  # Parquet writer options beyond the lake default

    @property
    def partition_names(self) -> list[str]:
        return [key for key, _ in self.partition_by]

    def full_schema(self) -> pa.Schema:
        """Schema as a query sees it: file columns plus partition keys."""
        fields = list(self.schema)
        fields += [pa.field(k, t) for k, t in self.partition_by]
        return pa.schema(fields)

    def empty_partition_values(self) -> list[str]:
        """Valid, never-used partition values for the zero-row seed file."""
        return ["-1" if pa.types.is_integer(t) else "_empty" for _, t in self.partition_by]


def _spec(
    name: str, partition_by: dict[str, pa.DataType], columns: dict[str, pa.DataType], doc: str,
    write_options: dict | None = None,
) -> TableSpec:
    return TableSpec(name, tuple(partition_by.items()), pa.schema(list(columns.items())), doc, write_options or {})


TABLES: dict[str, TableSpec] = {}


def register(spec: TableSpec) -> TableSpec:
    TABLES[spec.name] = spec
    return spec


register(_spec(
    "loads", {}, {
        "load_id": pa.string(), "table_name": pa.string(), "partition": pa.string(),
        "source_path": pa.string(), "source_sha256": pa.string(), "rows": pa.int64(),
        "loaded_at": pa.timestamp("us", tz="UTC"), "code_version": pa.string(), "command": pa.string(),
    },
    "One row per file loaded into a table partition: where it came from and its hash.",
))

register(_spec(
    "stimuli", {"dataset": pa.string()}, {
        "split": pa.string(), "stimulus_id": pa.string(), "text": pa.string(),
        "emotion": pa.string(), "n_labels": pa.int16(), "source_row": pa.int64(),
    },
    "One row per stimulus and label (multi-label stimuli have one row per label).",
))

register(_spec(
    "ratings", {"study": pa.string()}, {
        "rater": pa.string(), "emotion": pa.string(), "attribute": pa.string(), "rating": pa.float64(),
        "scale_min": pa.float64(), "scale_max": pa.float64(), "instrument": pa.string(),
    },
    "One row per rater, emotion and rated attribute or item.",
))

register(_spec(
    "rater_exclusions", {"study": pa.string()}, {
        "instrument": pa.string(), "rater": pa.string(), "reason": pa.string(),
    },
    "Raters excluded at ingest, and why (failed catch item, unfinished, no consent, ...).",
))

register(_spec(
    "emotion_attributes", {"study": pa.string()}, {
        "emotion": pa.string(), "attribute": pa.string(), "value": pa.float64(), "source": pa.string(),
    },
    "One value per emotion and attribute (e.g. the study's published 27 x 14 table).",
))

register(_spec(
    "similarity_judgments", {"study": pa.string()}, {
        "rater": pa.string(), "emotion_a": pa.string(), "emotion_b": pa.string(), "distance": pa.float64(),
        "source": pa.string(),
    },
    "One human distance per rater and emotion pair, emotion_a < emotion_b.",
))

# --- Emotion inference and ablation (extract/inference/, extract/ablation/, analysis/ablation_stats.py)

register(_spec(
    "inferences", {"inference_id": pa.string()}, {
        "model": pa.string(), "dataset": pa.string(), "readout": pa.string(), "task": pa.string(),
        "fit_split": pa.string(), "select_split": pa.string(), "report_split": pa.string(),
        "template": pa.string(), "pooling": pa.string(), "seed": pa.int64(), "max_per_emotion": pa.int64(),
        "params_json": pa.string(), "created_at": pa.timestamp("us", tz="UTC"), "code_version": pa.string(),
    },
    "One row per emotion-inference run: model, dataset, read-out, task, splits, seed and settings.",
))

register(_spec(
    "inference_accuracy", {"inference_id": pa.string()}, {
        "emotion": pa.string(), "split": pa.string(), "n_stimuli": pa.int64(), "accuracy": pa.float64(),
        "selected": pa.string(), "seed": pa.int64(),  # the replicate (soft-prompt --seeds); NULL in older lakes
    },
    "One row per inference run, emotion (or 'all' for the 27-way task), seed and split: accuracy.",
))

register(_spec(
    "task_stimuli", {"inference_id": pa.string()}, {
        "emotion": pa.string(), "split": pa.string(), "stimulus_id": pa.string(), "label": pa.int32(),
        "draw_seed": pa.int64(), "seed": pa.int64(),  # the replicate whose task it is; NULL in older lakes
    },
    "Which stimuli each task holds: label 1/0 for a binary emotion task, class index for the 27-way task.",
))

register(_spec(
    "probes", {"inference_id": pa.string()}, {
        "emotion": pa.string(), "class_index": pa.int32(), "weights": pa.list_(pa.float64()),
        "bias": pa.float64(), "c": pa.float64(),
    },
    "Linear probe weights (standardisation folded in): one row per binary emotion task or 27-way class.",
))

register(_spec(
    "prompts", {"inference_id": pa.string()}, {
        "emotion": pa.string(), "seed": pa.int64(), "n_prompt": pa.int32(), "hidden": pa.int32(),
        "vectors": pa.list_(pa.float32()),  # [n_prompt * hidden] row-major: the prompt kept on the select split
        "words": pa.list_(pa.string()), "settings": pa.string(),  # JSON: n_prompt, epochs, lr, batch_size, ...
        "best_epoch": pa.int64(), "select_accuracy": pa.float64(), "report_accuracy": pa.float64(),
        "losses": pa.list_(pa.float64()), "model": pa.string(), "weights_sha256": pa.string(),
        "tokenizer_sha256": pa.string(), "created_at": pa.timestamp("us", tz="UTC"),
    },
    "One trained soft prompt per inference run, emotion and seed: the vectors, settings, best epoch, accuracy, losses.",
))

register(_spec(
    "ablations", {"run_set": pa.string(), "study": pa.string(), "k": pa.int64()}, {
        "condition_id": pa.string(), "kind": pa.string(), "attribute": pa.string(), "draw": pa.int32(),
        "seed": pa.int64(), "layer_matched": pa.bool_(), "scope": pa.string(), "mode": pa.string(),
        "mode_value": pa.float64(), "neurons": pa.list_(pa.int32()), "source": pa.string(),
    },
    "One row per ablation condition: which neurons (global ids) are ablated, how, and the seed that drew them.",
))

register(_spec(
    "ablation_accuracy", {"run_set": pa.string(), "study": pa.string(), "k": pa.int64()}, {
        "condition_id": pa.string(), "emotion": pa.string(), "replicate": pa.int64(),
        "inference_id": pa.string(), "model": pa.string(), "dataset": pa.string(), "split": pa.string(),
        "n_stimuli": pa.int64(), "accuracy": pa.float64(),
    },
    "One row per ablation condition, emotion and replicate (a trained model/probe seed): accuracy.",
))

register(_spec(
    "predictions", {"inference_id": pa.string(), "run_set": pa.string()}, {
        "condition_id": pa.string(), "emotion": pa.string(), "split": pa.string(),
        "stimulus_id": pa.string(), "label": pa.int32(), "predicted": pa.int32(), "score": pa.float32(),
    },
    "One row per stimulus, task and condition: the prediction (run_set 'inference' for `infer`; a sweep's on request).",
))

register(_spec(
    "ablation_tests", {"run_set": pa.string(), "study": pa.string()}, {
        "level": pa.string(), "emotion": pa.string(), "attribute": pa.string(), "k": pa.int64(),
        "unit": pa.string(), "n": pa.int64(), "t": pa.float64(), "p": pa.float64(), "q": pa.float64(),
        "alternative": pa.string(),
    },
    "Paired tests of attribute vs random-control ablation accuracy (level 'attribute' or 'emotion'), BH q over emotions.",
))

register(_spec(
    "importance_correlations", {"run_set": pa.string(), "study": pa.string()}, {
        "emotion": pa.string(), "k": pa.int64(), "n_attributes": pa.int64(), "r": pa.float64(), "drop": pa.string(),
    },
    "Per emotion and k: Pearson r across attributes between accuracy drop (definition in `drop`) and human "
    "attribute importance.",
))

register(_spec(
    "importance_tests", {"run_set": pa.string(), "study": pa.string()}, {
        "k": pa.int64(), "n_emotions": pa.int64(), "mean_r": pa.float64(), "ci_low": pa.float64(),
        "ci_high": pa.float64(), "t": pa.float64(), "p": pa.float64(), "n_emotions_positive": pa.int64(),
        "n_emotions_r_one": pa.int64(), "n_emotions_r_nan": pa.int64(),
        "importance_method": pa.string(), "drop": pa.string(), "ablation_study": pa.string(),
    },
    "Per k: Fisher-z mean of the per-emotion correlations (r = +-1 and NaN left out and counted), its 95% CI "
    "and a one-sample t-test against 0; the drop definition and the study whose ablations were used.",
))

# Extraction (issue 3). The activations layout was chosen by measurement (docs/BENCHMARKS.md,
# benchmarks/extract_layout.py): one float32 array per stimulus and layer, BYTE_STREAM_SPLIT + zstd.
ACTIVATION_WRITE_OPTIONS = {
    "use_dictionary": ["stimulus_id"],
    "column_encoding": {"activation.list.element": "BYTE_STREAM_SPLIT", "token": "DELTA_BINARY_PACKED"},
    "compression": "zstd",
    "compression_level": 3,
}

register(_spec(
    "activations", {"run_id": pa.string(), "layer": pa.int32()}, {
        "stimulus_id": pa.string(),
        "token": pa.int32(),  # token index in the tokenized prompt for position 'all'; NULL otherwise
        "activation": pa.list_(pa.float32()),  # [d_ff] FFN activations of one layer at the read-out
    },
    "One row per run, layer, stimulus (and token, for position 'all'): the layer's d_ff activations.",
    ACTIVATION_WRITE_OPTIONS,
))

register(_spec(
    "runs", {"run_id": pa.string()}, {
        "run_set": pa.string(), "status": pa.string(), "source": pa.string(),
        "model": pa.string(), "model_class": pa.string(), "weights_sha256": pa.string(),
        "tokenizer": pa.string(), "tokenizer_settings": pa.string(),  # JSON: padding side, max length, special tokens
        "template": pa.string(), "position": pa.string(), "hook_point": pa.string(), "dtype": pa.string(),
        "neuron": pa.string(),  # neuron definition: mlp_post (input of the down projection) or mlp_gate
        "tokenizer_sha256": pa.string(),  # the tokenizer's files (for GGUF: the .gguf file)
        "device": pa.string(), "batch_size": pa.int32(), "chunk_size": pa.int32(), "seed": pa.int64(),
        "dataset": pa.string(), "split": pa.string(), "emotions": pa.string(), "limit": pa.int64(),
        "stimuli_sha256": pa.string(), "n_stimuli": pa.int64(), "n_layers": pa.int32(), "d_ff": pa.int32(),
        "package_versions": pa.string(),  # JSON
        "code_version": pa.string(), "created_at": pa.timestamp("us", tz="UTC"),
        "finished_at": pa.timestamp("us", tz="UTC"),
    },
    "One manifest row per extraction run (or released set of activations): everything needed to redo it.",
))

register(_spec(
    "release_accuracy", {"run_set": pa.string()}, {
        "run_id": pa.string(), "emotion": pa.string(), "seed": pa.int64(), "accuracy": pa.float64(),
        "source": pa.string(),
    },
    "Released unablated emotion-inference accuracy, one row per run (seed) and emotion.",
))

# --- Analysis results (issue 4). Each analysis writes its partition in one transaction, with a
# row in `analyses` recording its parameters and seed.
register(_spec(
    "analyses", {"analysis": pa.string(), "run_set": pa.string(), "study": pa.string()}, {
        "analysis_id": pa.string(), "params": pa.string(), "seed": pa.int64(), "fdr": pa.string(),
        "alpha": pa.float64(), "run_ids": pa.string(),
        "n_emotions": pa.int32(), "emotions": pa.string(), "created_at": pa.timestamp("us", tz="UTC"),
        "code_version": pa.string(),
    },
    "One row per stored analysis result (latest per analysis, run set and study): parameters as JSON, seed.",
))

register(_spec(
    "searchlight_results", {"run_set": pa.string(), "study": pa.string()}, {
        "neuron": pa.int32(), "layer": pa.int32(), "unit": pa.int32(), "attribute": pa.string(),
        "tau": pa.float64(), "p": pa.float64(), "q": pa.float64(), "q_monotone": pa.float64(),
        "q_study": pa.float64(), "inference": pa.string(), "p_asymptotic": pa.float64(),
    },
    "Per neuron and attribute: Kendall tau-b of the neuron RDM with the attribute RDM, one-sided p by the "
    "inference named in `inference` (permutation or asymptotic), the asymptotic p, q in the chosen FDR mode and in both.",
))

register(_spec(
    "attribute_importance_results", {"study": pa.string()}, {
        "attribute": pa.string(), "method": pa.string(), "tau": pa.float64(), "p": pa.float64(),
        "p_perm": pa.float64(), "n_perm": pa.int64(), "ci_raters_low": pa.float64(), "ci_raters_high": pa.float64(),
        "n_boot": pa.int64(), "n_pairs": pa.int32(), "n_raters": pa.int32(),
    },
    "Per study and attribute: similarity of the human similarity RDM with the attribute RDM.",
))

register(_spec(
    "noise_ceiling_results", {"study": pa.string()}, {
        "method": pa.string(), "lower": pa.float64(), "upper": pa.float64(), "n_raters": pa.int32(),
    },
    "Per study and comparison method: the noise ceiling of the human similarity RDM.",
))

register(_spec(
    "rsa_results", {"run_set": pa.string(), "study": pa.string()}, {
        "target": pa.string(), "metric": pa.string(), "method": pa.string(), "tau": pa.float64(),
        "p": pa.float64(), "p_perm": pa.float64(), "n_perm": pa.int64(), "ci_emotions_low": pa.float64(),
        "ci_emotions_high": pa.float64(), "ci_raters_low": pa.float64(), "ci_raters_high": pa.float64(),
        "n_boot": pa.int64(), "n_pairs": pa.int32(),
    },
    "Per run set, study and target ('human' or an attribute): similarity of the model RDM with the target RDM.",
))

register(_spec(
    "variance_partition_results", {"run_set": pa.string(), "study": pa.string()}, {
        "metric": pa.string(), "term": pa.string(), "r2": pa.float64(), "unique_r2": pa.float64(),
        "beta": pa.float64(),
    },
    "Multiple regression of the model RDM on all attribute RDMs: term 'all' (R^2), 'shared', or an attribute.",
))

register(_spec(
    "neuron_set_sizes", {"run_set": pa.string(), "study": pa.string()}, {
        "k": pa.int32(), "scope": pa.string(),
    },
    "The k values (and scope) for which attribute_neurons lists the top-k neurons of each attribute.",
))

register(_spec(
    "appraisal_components", {"study": pa.string()}, {
        "emotion": pa.string(), "attribute": pa.string(), "value": pa.float64(), "component": pa.int32(),
        "r_published": pa.float64(),
    },
    "Recomputed per-emotion attribute values (appraisal components matched to the published six; rated "
    "attributes as means) and each attribute's correlation with the published table.",
))

# --- Layers and models (issue 15): per-layer model RSA and the cross-model mart (analysis/layers.py,
# analysis/models.py). Per-layer rows live in their own table so lakes written before keep their schema.
register(_spec(
    "layer_rsa_results", {"run_set": pa.string(), "study": pa.string()}, {
        "layer": pa.int32(), "target": pa.string(), "metric": pa.string(), "method": pa.string(),
        "tau": pa.float64(), "p": pa.float64(), "p_perm": pa.float64(), "n_perm": pa.int64(),
        "ci_emotions_low": pa.float64(), "ci_emotions_high": pa.float64(), "ci_raters_low": pa.float64(),
        "ci_raters_high": pa.float64(), "n_boot": pa.int64(), "n_pairs": pa.int32(), "n_neurons": pa.int64(),
    },
    "Per run set, study and layer: similarity of the RDM of that layer's neurons alone with the human RDM.",
))

register(_spec(
    "model_comparison_results", {"study": pa.string()}, {
        "run_set": pa.string(), "model": pa.string(), "neuron": pa.string(), "hook_point": pa.string(),
        "position": pa.string(), "metric": pa.string(), "method": pa.string(), "n_runs": pa.int32(),
        "n_layers": pa.int32(), "n_emotions": pa.int32(), "n_pairs": pa.int32(),
        "tau": pa.float64(), "ci_low": pa.float64(), "ci_high": pa.float64(), "p_perm": pa.float64(),
        "n_perm": pa.int64(), "best_layer": pa.int32(), "best_tau": pa.float64(), "best_ci_low": pa.float64(),
        "best_ci_high": pa.float64(), "best_p_perm": pa.float64(), "tau_raters": pa.float64(),
        "best_tau_raters": pa.float64(), "ceiling_lower": pa.float64(), "ceiling_upper": pa.float64(),
        "tau_normalised": pa.float64(), "best_tau_normalised": pa.float64(), "n_boot": pa.int64(),
    },
    "Per study, run set, model RDM metric and method: model vs human tau over all layers and at the best "
    "layer, CIs, and tau over single raters divided by the noise ceiling's upper bound.",
))

register(_spec(
    "model_comparison_test_results", {"study": pa.string()}, {
        "run_set_a": pa.string(), "run_set_b": pa.string(), "metric": pa.string(), "method": pa.string(),
        "n_emotions": pa.int32(), "tau_a": pa.float64(), "tau_b": pa.float64(), "difference": pa.float64(),
        "ci_low": pa.float64(), "ci_high": pa.float64(), "p": pa.float64(), "n_boot": pa.int64(),
        "seed": pa.int64(), "test": pa.string(),
    },
    "Per study and pair of run sets: paired bootstrap over the shared emotions of tau(human, A) - tau(human, B).",
))

# --- Lineage (docs/RELIABILITY.md): what each stored result was computed from. `stale_results`
# (sql/34_result_inputs.sql) compares these versions with the lake's current ones.
register(_spec(
    "result_inputs", {"analysis": pa.string(), "run_set": pa.string(), "study": pa.string()}, {
        "input_table": pa.string(), "input_partition": pa.string(),  # a partition or a prefix ('run_id=r1')
        "input_version": pa.string(),  # sorted distinct sources (sha256, else path, else load id) of its files
        "recorded_at": pa.timestamp("us", tz="UTC"),
    },
    "One row per stored analysis result (analysis, run set, study) and input partition it read, with that input's version.",
))
