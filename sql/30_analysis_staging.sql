-- Staging views of the analysis result tables (written by `emolake rsa|searchlight|neurons`).

-- analyses: one row per stored analysis (analysis, run set, study): parameters, seed, FDR mode, alpha.
CREATE OR REPLACE VIEW analyses AS
SELECT analysis, run_set, study, analysis_id, params, seed, fdr, alpha, run_ids, n_emotions, emotions,
       created_at, code_version
FROM read_parquet('analyses/*/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'analysis': VARCHAR, 'run_set': VARCHAR, 'study': VARCHAR})
WHERE analysis <> '_empty'
  AND _lake_path(filename, 5) IN (SELECT path FROM _live_files WHERE table_name = 'analyses');

-- searchlight_results: one row per run set, study, neuron and attribute (tau-b, one-sided p by `inference`, q).
CREATE OR REPLACE VIEW searchlight_results AS
SELECT run_set, study, neuron, layer, unit, attribute, tau, p, q, q_monotone, q_study, inference, p_asymptotic
FROM read_parquet('searchlight_results/*/*/*.parquet', hive_partitioning = true, union_by_name = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'searchlight_results');

-- attribute_importance_results: one row per study, attribute and comparison method.
CREATE OR REPLACE VIEW attribute_importance_results AS
SELECT study, attribute, method, tau, p, p_perm, n_perm, ci_raters_low, ci_raters_high, n_boot, n_pairs, n_raters
FROM read_parquet('attribute_importance_results/*/*.parquet', hive_partitioning = true,
                  hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'attribute_importance_results');

-- noise_ceiling_results: one row per study and comparison method.
CREATE OR REPLACE VIEW noise_ceiling_results AS
SELECT study, method, lower, upper, n_raters
FROM read_parquet('noise_ceiling_results/*/*.parquet', hive_partitioning = true,
                  hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'noise_ceiling_results');

-- rsa_results: one row per run set, study, target, model RDM metric and comparison method.
CREATE OR REPLACE VIEW rsa_results AS
SELECT run_set, study, target, metric, method, tau, p, p_perm, n_perm, ci_emotions_low, ci_emotions_high,
       ci_raters_low, ci_raters_high, n_boot, n_pairs
FROM read_parquet('rsa_results/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'rsa_results');

-- variance_partition_results: one row per run set, study, model RDM metric and regression term.
CREATE OR REPLACE VIEW variance_partition_results AS
SELECT run_set, study, metric, term, r2, unique_r2, beta
FROM read_parquet('variance_partition_results/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'variance_partition_results');

-- neuron_set_sizes: one row per run set, study, k and scope that attribute_neurons lists.
CREATE OR REPLACE VIEW neuron_set_sizes AS
SELECT run_set, study, k, scope
FROM read_parquet('neuron_set_sizes/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'neuron_set_sizes');

-- appraisal_components: one row per study, emotion and attribute recomputed from raw ratings (`emolake appraisal`).
CREATE OR REPLACE VIEW appraisal_components AS
SELECT study, emotion, attribute, value, component, r_published
FROM read_parquet('appraisal_components/*/*.parquet', hive_partitioning = true, hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'appraisal_components');
