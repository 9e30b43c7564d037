-- Staging for emotion inference and ablation: one view per lake table, partition keys typed.

-- inferences: one row per emotion-inference run (model, dataset, read-out, task, splits, seed, settings).
CREATE OR REPLACE VIEW inferences AS
SELECT inference_id, model, dataset, readout, task, fit_split, select_split, report_split, template, pooling,
       seed, max_per_emotion, params_json, created_at, code_version
FROM read_parquet('inferences/*/*.parquet', hive_partitioning = true, hive_types = {'inference_id': VARCHAR})
WHERE inference_id <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'inferences');

-- inference_accuracy: one row per inference run, emotion ('all' for the 27-way task), seed (the replicate) and split.
CREATE OR REPLACE VIEW inference_accuracy AS
SELECT inference_id, emotion, split, n_stimuli, accuracy, selected, seed
FROM read_parquet('inference_accuracy/*/*.parquet', hive_partitioning = true, union_by_name = true,
                  hive_types = {'inference_id': VARCHAR})
WHERE inference_id <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'inference_accuracy');

-- task_stimuli: one row per inference run, task (emotion), seed (the replicate), split and stimulus, with its label.
CREATE OR REPLACE VIEW task_stimuli AS
SELECT inference_id, emotion, split, stimulus_id, label, draw_seed, seed
FROM read_parquet('task_stimuli/*/*.parquet', hive_partitioning = true, union_by_name = true,
                  hive_types = {'inference_id': VARCHAR})
WHERE inference_id <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'task_stimuli');

-- probes: one row per inference run and binary emotion task (or 27-way class): linear probe weights.
CREATE OR REPLACE VIEW probes AS
SELECT inference_id, emotion, class_index, weights, bias, c
FROM read_parquet('probes/*/*.parquet', hive_partitioning = true, hive_types = {'inference_id': VARCHAR})
WHERE inference_id <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'probes');

-- prompts: one row per inference run, emotion and seed: a trained soft prompt ([n_prompt * hidden] float32, row-major).
CREATE OR REPLACE VIEW prompts AS
SELECT inference_id, emotion, seed, n_prompt, hidden, vectors, words, settings, best_epoch, select_accuracy,
       report_accuracy, losses, model, weights_sha256, tokenizer_sha256, created_at
FROM read_parquet('prompts/*/*.parquet', hive_partitioning = true, hive_types = {'inference_id': VARCHAR})
WHERE inference_id <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'prompts');

-- prompt_summary: one row per inference run, emotion and seed: a stored prompt without its vectors.
CREATE OR REPLACE VIEW prompt_summary AS
SELECT inference_id, emotion, seed, n_prompt, hidden, words, best_epoch, select_accuracy, report_accuracy,
       len(losses) AS epochs, losses[len(losses)] AS final_loss, model, settings, created_at
FROM prompts;

-- ablations: one row per ablation condition (run set, study, k): kind, attribute, draw, seed, neuron ids.
CREATE OR REPLACE VIEW ablations AS
SELECT run_set, study, k, condition_id, kind, attribute, draw, seed, layer_matched, scope, mode, mode_value,
       neurons, source
FROM read_parquet('ablations/*/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR, 'k': BIGINT})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 5) IN (SELECT path FROM _live_files WHERE table_name = 'ablations');

-- ablation_accuracy: one row per ablation condition, emotion and replicate: accuracy of the read-out.
CREATE OR REPLACE VIEW ablation_accuracy AS
SELECT run_set, study, k, condition_id, emotion, replicate, inference_id, model, dataset, split, n_stimuli, accuracy
FROM read_parquet('ablation_accuracy/*/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR, 'k': BIGINT})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 5) IN (SELECT path FROM _live_files WHERE table_name = 'ablation_accuracy');

-- predictions: one row per inference run, run set ('inference' for `infer`), condition, task and stimulus.
CREATE OR REPLACE VIEW predictions AS
SELECT inference_id, run_set, condition_id, emotion, split, stimulus_id, label, predicted, score
FROM read_parquet('predictions/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'inference_id': VARCHAR, 'run_set': VARCHAR})
WHERE inference_id <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'predictions');

-- ablation_tests: one row per paired test of attribute vs random-control ablation (level attribute or emotion).
CREATE OR REPLACE VIEW ablation_tests AS
SELECT run_set, study, level, emotion, attribute, k, unit, n, t, p, q, alternative
FROM read_parquet('ablation_tests/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'ablation_tests');

-- importance_correlations: one row per run set, study, emotion and k: r(accuracy drop, human importance); drop = its definition (vs-control, the study's, or vs-unablated).
CREATE OR REPLACE VIEW importance_correlations AS
SELECT run_set, study, emotion, k, n_attributes, r, "drop"
FROM read_parquet('importance_correlations/*/*/*.parquet', hive_partitioning = true, union_by_name = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'importance_correlations');

-- importance_tests: one row per run set, study and k: Fisher-z mean r over emotions (r = +-1 and NaN counted, not averaged), CI, one-sample t-test.
CREATE OR REPLACE VIEW importance_tests AS
SELECT run_set, study, k, n_emotions, mean_r, ci_low, ci_high, t, p, n_emotions_positive, n_emotions_r_one,
       n_emotions_r_nan, importance_method, "drop", ablation_study
FROM read_parquet('importance_tests/*/*/*.parquet', hive_partitioning = true, union_by_name = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'importance_tests');
