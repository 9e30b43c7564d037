-- Searchlight marts (`emolake searchlight`, `emolake neurons`).

-- searchlight: one row per run set, study, neuron and attribute: tau-b, one-sided p (by `inference`: permutation or the study's asymptotic; p_asymptotic beside it), q (the FDR mode chosen at run time).
CREATE OR REPLACE VIEW searchlight AS
SELECT run_set, study, neuron, layer, unit, attribute, tau, p, q, q_monotone, q_study, inference, p_asymptotic
FROM searchlight_results;

-- searchlight_counts: one row per run set, study, FDR mode, alpha (the run's --alpha and 0.05, 0.01, 0.001), attribute and layer (NULL = all): significant neurons (q < alpha), selective ones (significant for exactly one attribute), significant tests.
CREATE OR REPLACE VIEW searchlight_counts AS
WITH alphas AS (
    SELECT run_set, study, alpha FROM analyses WHERE analysis = 'searchlight'
    UNION
    SELECT a.run_set, a.study, t.alpha FROM analyses a CROSS JOIN (VALUES (0.05), (0.01), (0.001)) AS t(alpha)
    WHERE a.analysis = 'searchlight'
), tests AS (
    SELECT s.run_set, s.study, m.fdr, a.alpha, s.neuron, s.layer, s.attribute,
           coalesce(CASE m.fdr WHEN 'monotone' THEN s.q_monotone ELSE s.q_study END < a.alpha, false) AS significant
    FROM searchlight_results s
    JOIN alphas a ON a.run_set = s.run_set AND a.study = s.study
    CROSS JOIN (VALUES ('monotone'), ('study')) AS m(fdr)
), flagged AS (
    SELECT *, count(*) FILTER (WHERE significant)
              OVER (PARTITION BY run_set, study, fdr, alpha, neuron) AS n_attributes
    FROM tests
)
SELECT run_set, study, fdr, alpha, attribute, layer,
       count(DISTINCT neuron) FILTER (WHERE significant) AS n_significant,
       count(*) FILTER (WHERE significant AND n_attributes = 1) AS n_selective,
       count(*) FILTER (WHERE significant) AS n_significant_tests,
       count(*) AS n_tests
FROM flagged
GROUP BY GROUPING SETS ((run_set, study, fdr, alpha), (run_set, study, fdr, alpha, attribute),
                        (run_set, study, fdr, alpha, layer), (run_set, study, fdr, alpha, attribute, layer));

-- attribute_neuron_ranks: one row per run set, study, attribute and neuron: rank by tau (descending, ties by neuron id) over all layers and within the layer.
CREATE OR REPLACE VIEW attribute_neuron_ranks AS
SELECT run_set, study, attribute, neuron, layer, unit, tau, p, q,
       row_number() OVER (PARTITION BY run_set, study, attribute ORDER BY tau DESC NULLS LAST, neuron) AS rank_global,
       row_number() OVER (PARTITION BY run_set, study, attribute, layer ORDER BY tau DESC NULLS LAST, neuron) AS rank_per_layer
FROM searchlight_results;

-- attribute_neurons: one row per run set, study, attribute, k, scope and neuron in that attribute's top-k set; k values come from neuron_set_sizes (`emolake neurons --k`); scope 'per_layer' takes the top k of every layer.
CREATE OR REPLACE VIEW attribute_neurons AS
SELECT r.run_set, r.study, r.attribute, k.k, r.neuron, r.layer, r.unit,
       CASE k.scope WHEN 'global' THEN r.rank_global ELSE r.rank_per_layer END AS rank, k.scope, r.tau, r.p, r.q
FROM attribute_neuron_ranks r
JOIN neuron_set_sizes k ON k.run_set = r.run_set AND k.study = r.study
WHERE (k.scope = 'global' AND r.rank_global <= k.k) OR (k.scope = 'per_layer' AND r.rank_per_layer <= k.k);

-- attribute_neuron_overlap: one row per run set, study, scope, k and attribute pair (attribute_a < attribute_b): neurons in both top-k sets.
CREATE OR REPLACE VIEW attribute_neuron_overlap AS
WITH sizes AS (
    SELECT run_set, study, scope, k, attribute, count(*) AS n
    FROM attribute_neurons GROUP BY run_set, study, scope, k, attribute
), shared AS (
    SELECT a.run_set, a.study, a.scope, a.k, a.attribute AS attribute_a, b.attribute AS attribute_b, count(*) AS n_shared
    FROM attribute_neurons a
    JOIN attribute_neurons b ON a.run_set = b.run_set AND a.study = b.study AND a.scope = b.scope AND a.k = b.k
                             AND a.neuron = b.neuron AND a.attribute < b.attribute
    GROUP BY a.run_set, a.study, a.scope, a.k, a.attribute, b.attribute
)
SELECT x.run_set, x.study, x.scope, x.k, x.attribute AS attribute_a, y.attribute AS attribute_b,
       coalesce(s.n_shared, 0) AS n_shared,
       coalesce(s.n_shared, 0) / (x.n + y.n - coalesce(s.n_shared, 0)) AS jaccard
FROM sizes x
JOIN sizes y ON x.run_set = y.run_set AND x.study = y.study AND x.scope = y.scope AND x.k = y.k
             AND x.attribute < y.attribute
LEFT JOIN shared s ON s.run_set = x.run_set AND s.study = x.study AND s.scope = x.scope AND s.k = x.k
                  AND s.attribute_a = x.attribute AND s.attribute_b = y.attribute;
