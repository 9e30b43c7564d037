-- Ablation marts: accuracies per condition, attribute vs random-control summaries, link to human importance.

-- ablation_results: one row per run set, study, emotion, condition (unablated/attribute/random), k, draw and
-- replicate. Random controls shared by all attributes have attribute NULL; the study's have its attribute.
CREATE OR REPLACE VIEW ablation_results AS
SELECT acc.run_set, acc.study, acc.emotion, ab.attribute, acc.k, ab.kind AS condition, ab.draw, acc.replicate,
       acc.accuracy, acc.condition_id, acc.n_stimuli, ab.mode, ab.scope, ab.layer_matched, ab.source,
       acc.inference_id, acc.model, acc.dataset, acc.split
FROM ablation_accuracy AS acc
JOIN ablations AS ab USING (run_set, study, k, condition_id);

-- ablation_summary: one row per run set, study, emotion, attribute and k: mean accuracy unablated, with the
-- attribute's neurons ablated and with random controls (mean, sd over replicates x draws), delta = attribute -
-- control, and the paired test (t, p, BH q over emotions) computed by analysis/ablation_stats.py.
CREATE OR REPLACE VIEW ablation_summary AS
WITH unablated AS (
    SELECT run_set, study, emotion, avg(accuracy) AS acc_unablated
    FROM ablation_results WHERE condition = 'unablated'
    GROUP BY run_set, study, emotion
), attribute AS (
    SELECT run_set, study, emotion, attribute, k, avg(accuracy) AS acc_attribute, count(*) AS n_replicates
    FROM ablation_results WHERE condition = 'attribute'
    GROUP BY run_set, study, emotion, attribute, k
), control AS (
    SELECT a.run_set, a.study, a.emotion, a.attribute, a.k, avg(r.accuracy) AS acc_control_mean,
           stddev_samp(r.accuracy) AS acc_control_sd, count(*) AS n_controls
    FROM attribute AS a
    JOIN ablation_results AS r
      ON r.condition = 'random' AND r.run_set = a.run_set AND r.study = a.study AND r.emotion = a.emotion
     AND r.k = a.k AND (r.attribute = a.attribute OR r.attribute IS NULL)
    GROUP BY a.run_set, a.study, a.emotion, a.attribute, a.k
)
SELECT a.run_set, a.study, a.emotion, a.attribute, a.k, u.acc_unablated, a.acc_attribute,
       c.acc_control_mean, c.acc_control_sd, a.acc_attribute - c.acc_control_mean AS delta,
       t.t, t.p, t.q, a.acc_attribute - u.acc_unablated AS delta_unablated, a.n_replicates, c.n_controls, t.unit
FROM attribute AS a
LEFT JOIN unablated AS u USING (run_set, study, emotion)
LEFT JOIN control AS c USING (run_set, study, emotion, attribute, k)
LEFT JOIN ablation_tests AS t
  ON t.level = 'attribute' AND t.run_set = a.run_set AND t.study = a.study AND t.emotion = a.emotion
 AND t.attribute = a.attribute AND t.k = a.k;

-- ablation_emotion_summary: one row per run set, study, emotion and k: attribute ablations (all attributes)
-- vs their random controls, paired over attributes x replicates; BH q over emotions.
CREATE OR REPLACE VIEW ablation_emotion_summary AS
SELECT s.run_set, s.study, s.emotion, s.k, avg(s.acc_unablated) AS acc_unablated,
       avg(s.acc_attribute) AS acc_attribute, avg(s.acc_control_mean) AS acc_control_mean,
       avg(s.delta) AS delta, any_value(t.t) AS t, any_value(t.p) AS p, any_value(t.q) AS q,
       any_value(t.n) AS n_pairs
FROM ablation_summary AS s
LEFT JOIN ablation_tests AS t
  ON t.level = 'emotion' AND t.run_set = s.run_set AND t.study = s.study AND t.emotion = s.emotion AND t.k = s.k
GROUP BY s.run_set, s.study, s.emotion, s.k;

-- importance_link: one row per run set, study and k: Fisher-z mean over emotions of r(accuracy drop, human
-- attribute importance) across attributes, its 95% CI back-transformed, one-sample t-test (two-sided);
-- drop = the drop's definition, n_emotions_r_one / _nan = emotions left out (r = +-1 or undefined).
CREATE OR REPLACE VIEW importance_link AS
SELECT run_set, study, k, mean_r, ci_low, ci_high, t, p, n_emotions_positive, n_emotions, n_emotions_r_one,
       n_emotions_r_nan, importance_method, "drop", ablation_study
FROM importance_tests;
