"""Ablation of prompted models (the study's masking): every stored soft prompt re-evaluated under each condition.

A prompted model is the frozen LM with one trained prompt (`StoredPrompt`: one per emotion and
seed). Each is scored on its emotion's binary task in the report split (the study: dev), the task
redrawn from the prompt's seed exactly as training drew it, with the label words' logits at the mask
(masked LM) or as the next token (causal LM), as `extract/inference/soft_prompt.py` scores it. Under
each condition the condition's neurons are edited at every position (prompt positions included)
through the same hooks as the probe sweep (`extract/ablation/edits.py`), `conditions_per_pass`
conditions stacked along the batch in one forward pass. The replicate of every accuracy row is the
prompt's seed, so `ablation_summary` has n_replicates = number of seeds and the paired tests of
`analysis/ablation_stats.py` pair over seeds, as the study's over its 12 trained prompts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from emolake.extract.ablation.edits import AblationEdit, Condition, condition_masks, stacked_hook_factory
from emolake.extract.ablation.sweep import SweepConfig, read_attribute_neurons, reference_edit, sweep_conditions, write_sweep
from emolake.extract.hooks import ffn_hook_points, ffn_width, hooked
from emolake.extract.inference.prompt_store import StoredPrompt
from emolake.extract.models.families import DEFAULT_NEURON
from emolake.extract.inference.readouts import label_word_ids, length_order
from emolake.extract.inference.soft_prompt import word_logits
from emolake.extract.inference.tasks import Task, binary_tasks, check_splits, derive_seed, task_texts
from emolake.warehouse.errors import BadInputError
from emolake.warehouse.lake import Lake


def prompt_task(stimuli: pd.DataFrame, prompt: StoredPrompt, split: str, max_per_emotion: int | None) -> Task:
    """The binary task of the prompt's emotion in `split`, drawn with the prompt's seed (as in training)."""
    return binary_tasks(stimuli, [prompt.emotion], split, prompt.seed, max_per_emotion)[0]


def prompted_correct(model, tokenizer, texts: list[str], labels: np.ndarray, prompt: StoredPrompt,
                     masks: torch.Tensor, edit: AblationEdit, *, device: str = "cpu", batch_size: int = 32,
                     neuron: str = DEFAULT_NEURON, seed: int = 0, on_batch=None) -> np.ndarray:
    """[n_conditions, n_texts] bool: whether the prompted model labels each text right under each condition.

    masks: [n_conditions, n_layers, d_ff] bool, all conditions stacked in every forward pass (copy-major rows).
    """
    word_ids = label_word_ids(tokenizer, prompt.words)
    vectors = torch.as_tensor(np.asarray(prompt.vectors, dtype=np.float32))
    embeddings = model.get_input_embeddings().weight
    if vectors.ndim != 2 or vectors.shape[1] != embeddings.shape[1]:
        raise BadInputError(f"prompt {prompt.inference_id} / {prompt.emotion} / seed {prompt.seed} does not fit "
                            "the model", column="vectors", expected=f"[n_prompt, {embeddings.shape[1]}]",
                            found=list(vectors.shape))
    vectors = vectors.to(device=embeddings.device, dtype=embeddings.dtype)
    copies = masks.shape[0]
    make_hook = stacked_hook_factory(masks, edit, seed)
    correct = np.zeros((copies, len(texts)), dtype=bool)
    order = length_order(texts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            rows = [texts[i] for _ in range(copies) for i in index]  # copy-major: row = copy * b + i
            with hooked(model, make_hook(len(rows)), neuron=neuron):
                logits = word_logits(model, tokenizer, rows, vectors, word_ids, device)  # [copies * b, n_words]
            predicted = logits.float().argmax(1).cpu().numpy().reshape(copies, len(index))
            correct[:, index] = predicted == labels[index][None, :]
            if on_batch:
                on_batch(len(index) * copies)
    return correct


def evaluate_prompts(loaded, prompts: list[StoredPrompt], stimuli: pd.DataFrame, conditions: list[Condition],
                     config: SweepConfig, edit: AblationEdit, split: str, max_per_emotion: int | None,
                     device: str = "cpu", progress=None) -> pd.DataFrame:
    """Accuracy of every prompt under every condition: one row per condition, emotion and seed (replicate)."""
    model, tokenizer = loaded.model, loaded.tokenizer
    masks = condition_masks(conditions, len(ffn_hook_points(model, config.neuron)), ffn_width(model))
    rows = []
    for prompt in prompts:
        task = prompt_task(stimuli, prompt, split, max_per_emotion)
        texts = task_texts(stimuli, task.stimulus_ids)
        for start in range(0, len(conditions), config.conditions_per_pass):
            group = conditions[start:start + config.conditions_per_pass]
            correct = prompted_correct(model, tokenizer, texts, task.labels, prompt, masks[start:start + len(group)],
                                       edit, device=device, batch_size=config.batch_size, neuron=config.neuron,
                                       seed=derive_seed(edit.seed, "noise", prompt.emotion, prompt.seed, start),
                                       on_batch=progress)
            for condition, hits in zip(group, correct):
                rows.append({"condition_id": condition.condition_id, "k": condition.k, "emotion": prompt.emotion,
                             "replicate": prompt.seed, "inference_id": prompt.inference_id,
                             "n_stimuli": len(task.labels), "accuracy": float(hits.mean())})
    return pd.DataFrame(rows)


def check_prompts(prompts: list[StoredPrompt]) -> None:
    """One inference, binary tasks, every (emotion, seed) once."""
    if not prompts:
        raise BadInputError("no stored prompts to ablate", column="prompts", expected="prompts of `infer --readout "
                            "soft-prompt`", found=0)
    ids = sorted({p.inference_id for p in prompts})
    if len(ids) > 1:
        raise BadInputError("prompts of several inferences", column="inference_id", expected="one", found=ids)
    if any(p.emotion == "all" for p in prompts):
        raise BadInputError("ablation sweeps use the binary task (as the study)", column="task", found="multiclass")
    keys = [(p.emotion, p.seed) for p in prompts]
    if len(set(keys)) != len(keys):
        raise BadInputError("a prompt is given twice", column="emotion, seed", expected="each (emotion, seed) once",
                            found=sorted({k for k in keys if keys.count(k) > 1}))


def run_prompt_sweep(lake: Lake, loaded, prompts: list[StoredPrompt], stimuli: pd.DataFrame, config: SweepConfig,
                     source: dict, split: str, max_per_emotion: int | None = None, fit_split: str = "train",
                     device: str = "cpu",
                     neuron_sets: dict[tuple[str, int], np.ndarray] | None = None, progress=None) -> dict:
    """Evaluate every prompt under unablated, attribute and control conditions, store, recompute statistics.

    `source`: model and dataset names stored with the accuracies. Modes mean/noise take their reference
    statistics over the prompts' tasks in `fit_split` (no prompt in front), as the probe sweep does.
    `neuron_sets` defaults to the `attribute_neurons` of (run_set, study, scope) for `config.ks`. `progress(total)` is called once with
    the number of condition x stimulus evaluations and returns the per-batch callback (or None).
    """
    from emolake.analysis.ablation_stats import refresh_ablation_statistics

    check_prompts(prompts)
    check_splits(stimuli, source["dataset"], [split, fit_split])
    if neuron_sets is None:
        neuron_sets = read_attribute_neurons(lake, config.run_set, config.study, config.ks, config.attributes,
                                             config.scope)
    model = loaded.model
    conditions = sweep_conditions(config, neuron_sets, len(ffn_hook_points(model, config.neuron)), ffn_width(model))
    tasks = [prompt_task(stimuli, p, split, max_per_emotion) for p in prompts]
    if config.mode in ("mean", "noise"):
        reference = [prompt_task(stimuli, p, fit_split, max_per_emotion).stimulus_ids for p in prompts]
        edit = reference_edit(loaded, stimuli, np.unique(np.concatenate(reference).astype(str)), config, device)
    else:
        edit = AblationEdit(config.mode, config.value, seed=config.seed)
    n_evaluations = len(conditions) * sum(len(t.labels) for t in tasks)
    callback = progress(n_evaluations) if progress else None
    accuracy = evaluate_prompts(loaded, prompts, stimuli, conditions, config, edit, split, max_per_emotion, device,
                                callback)
    inference_id = prompts[0].inference_id
    with lake.transaction(f"ablate {config.run_set} {config.study} prompts {inference_id}") as txn:
        write_sweep(txn, config, conditions, accuracy, {**source, "split": split, "inference_id": inference_id})
    statistics = refresh_ablation_statistics(lake, config.run_set, config.study)
    return {
        "run_set": config.run_set, "study": config.study, "inference_id": inference_id, "read-out": "soft-prompt",
        "prompts": len(prompts), "replicates (seeds)": len({p.seed for p in prompts}),
        "conditions": len(conditions), "attribute_sets": len(neuron_sets), "controls_per_k": config.controls,
        "evaluations": n_evaluations, "importance_link": statistics.get("importance_link", "stored"),
    }
