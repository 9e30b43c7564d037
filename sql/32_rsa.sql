-- Representational similarity marts over stored results (`emolake rsa`).

-- attribute_importance: one row per study, attribute and method: the human similarity RDM compared with the attribute RDM.
CREATE OR REPLACE VIEW attribute_importance AS
SELECT study, attribute, method, tau, p, p_perm, n_perm, ci_raters_low, ci_raters_high, n_boot, n_pairs, n_raters,
       rank() OVER (PARTITION BY study, method ORDER BY tau DESC) AS importance_rank
FROM attribute_importance_results;

-- noise_ceiling: one row per study and method: lower and upper bound of any RDM's similarity with the human RDM.
CREATE OR REPLACE VIEW noise_ceiling AS
SELECT study, method, lower, upper, n_raters FROM noise_ceiling_results;

-- layer_rsa_results (staging): one row per run set, study, layer, target, model RDM metric and method.
CREATE OR REPLACE VIEW layer_rsa_results AS
SELECT run_set, study, layer, target, metric, method, tau, p, p_perm, n_perm, ci_emotions_low, ci_emotions_high,
       ci_raters_low, ci_raters_high, n_boot, n_pairs, n_neurons
FROM read_parquet('layer_rsa_results/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_set': VARCHAR, 'study': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'layer_rsa_results');

-- model_rsa: one row per run set, study, layer (NULL = all neurons; else that layer's neurons alone), target ('human' = group-mean RDM, 'human_raters' = mean over single raters, beside its noise ceiling, or an attribute), model RDM metric and method.
CREATE OR REPLACE VIEW model_rsa AS
WITH rows AS (
    SELECT run_set, study, CAST(NULL AS INTEGER) AS layer, target, metric, method, tau, p, p_perm, n_perm,
           ci_emotions_low, ci_emotions_high, ci_raters_low, ci_raters_high, n_boot, n_pairs
    FROM rsa_results
    UNION ALL
    SELECT run_set, study, layer, target, metric, method, tau, p, p_perm, n_perm,
           ci_emotions_low, ci_emotions_high, ci_raters_low, ci_raters_high, n_boot, n_pairs
    FROM layer_rsa_results
)
SELECT r.run_set, r.study, r.layer, r.target, r.metric, r.method, r.tau, r.p, r.p_perm, r.n_perm,
       r.ci_emotions_low, r.ci_emotions_high, r.ci_raters_low, r.ci_raters_high, r.n_boot, r.n_pairs,
       n.lower AS ceiling_lower, n.upper AS ceiling_upper
FROM rows r
LEFT JOIN noise_ceiling_results n ON n.study = r.study AND n.method = r.method AND r.target = 'human_raters';

-- model_variance_partition: one row per run set, study, metric and term ('all', 'shared' or an attribute): R^2 and unique R^2.
CREATE OR REPLACE VIEW model_variance_partition AS
SELECT run_set, study, metric, term, r2, unique_r2, beta FROM variance_partition_results;
