-- Layers and models: run sets compared on one study (`emolake compare`).

-- model_comparison_results (staging): one row per study, run set, model RDM metric and method.
CREATE OR REPLACE VIEW model_comparison_results AS
SELECT study, run_set, model, neuron, hook_point, position, metric, method, n_runs, n_layers, n_emotions, n_pairs,
       tau, ci_low, ci_high, p_perm, n_perm, best_layer, best_tau, best_ci_low, best_ci_high, best_p_perm,
       tau_raters, best_tau_raters, ceiling_lower, ceiling_upper, tau_normalised, best_tau_normalised, n_boot
FROM read_parquet('model_comparison_results/*/*.parquet', hive_partitioning = true, hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'model_comparison_results');

-- model_comparison_test_results (staging): one row per study, pair of run sets, metric and method.
CREATE OR REPLACE VIEW model_comparison_test_results AS
SELECT study, run_set_a, run_set_b, metric, method, n_emotions, tau_a, tau_b, difference, ci_low, ci_high, p,
       n_boot, seed, test
FROM read_parquet('model_comparison_test_results/*/*.parquet', hive_partitioning = true,
                  hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'model_comparison_test_results');

-- model_comparison: one row per study, run set, metric and method: model, neuron definition, read-out, tau over all layers and at the best layer (chosen on these data), CIs over emotions, and tau over single raters / the noise ceiling's upper bound; rank 1 = most human-like over all layers.
CREATE OR REPLACE VIEW model_comparison AS
SELECT study, run_set, model, neuron, hook_point, position, metric, method, n_runs, n_layers, n_emotions, n_pairs,
       tau, ci_low, ci_high, p_perm, n_perm, best_layer, best_tau, best_ci_low, best_ci_high, best_p_perm,
       tau_raters, best_tau_raters, ceiling_lower, ceiling_upper, tau_normalised, best_tau_normalised, n_boot,
       rank() OVER (PARTITION BY study, metric, method ORDER BY tau DESC) AS rank
FROM model_comparison_results;

-- model_comparison_tests: one row per study, pair of run sets (a, b), metric and method: paired bootstrap over the shared emotions of tau(human, a) - tau(human, b), percentile CI, two-sided p, seed.
CREATE OR REPLACE VIEW model_comparison_tests AS
SELECT study, run_set_a, run_set_b, metric, method, n_emotions, tau_a, tau_b, difference, ci_low, ci_high, p,
       n_boot, seed, test
FROM model_comparison_test_results;
