-- Emotion profiles and RDMs over emotion pairs (27 GoEmotions emotions: 351 pairs).
-- Multi-label policy: a profile averages only the stimuli labelled with exactly one emotion
-- (stimuli.n_labels = 1); multi-label stimuli are left out of every profile, so no stimulus
-- counts towards two emotions. Neutral is kept in emotion_profile and dropped from the RDMs.

-- A run keeps either every stimulus's vector (`activations`) or, with `extract --store profiles`, only
-- the per-emotion count, sum and sum of squares (`profile_parts`, whose rows were counted with this
-- same policy at extraction); the views below read both forms and give the same profiles.

-- profile_sums: one row per profiles run, emotion and neuron: count, sum and sum of squares (DOUBLE) of the activation over
-- the emotion's single-label stimuli, added up over the run's parts (each part covers other stimuli: profile_stimuli).
CREATE OR REPLACE VIEW profile_sums AS
SELECT run_id, emotion, layer * d_ff + unit AS neuron, layer, unit, CAST(sum(n_rows) AS BIGINT) AS n_rows,
       sum(part_sum) AS value_sum, sum(part_sumsq) AS value_sumsq
FROM (
    SELECT run_id, emotion, layer, n_rows, len(value_sum) AS d_ff, unnest(range(len(value_sum))) AS unit,
           unnest(value_sum) AS part_sum, unnest(value_sumsq) AS part_sumsq
    FROM profile_parts
)
GROUP BY run_id, emotion, layer, d_ff, unit;

-- emotion_profile_spread: one row per run, emotion and neuron: the mean activation over the emotion's single-label stimuli,
-- its sample standard deviation (NULL for one stimulus) and the count: from the vectors, or from the sums of a profiles run.
CREATE OR REPLACE VIEW emotion_profile_spread AS
SELECT a.run_id, s.emotion, a.neuron, a.layer, a.unit, avg(a.value) AS value, stddev_samp(a.value) AS std,
       count(*) AS n_stimuli
FROM activations a
JOIN runs r ON r.run_id = a.run_id
JOIN stimuli s ON s.dataset = r.dataset AND s.stimulus_id = a.stimulus_id AND s.n_labels = 1
GROUP BY a.run_id, s.emotion, a.neuron, a.layer, a.unit
UNION ALL
SELECT run_id, emotion, neuron, layer, unit, value_sum / n_rows AS value,
       CASE WHEN n_rows > 1 THEN sqrt(greatest(value_sumsq - value_sum * value_sum / n_rows, 0) / (n_rows - 1)) END AS std,
       n_rows AS n_stimuli
FROM profile_sums;

-- emotion_profile: one row per run, emotion and neuron: the mean activation over the emotion's single-label stimuli in the run's dataset.
CREATE OR REPLACE VIEW emotion_profile AS
SELECT run_id, emotion, neuron, layer, unit, value, n_stimuli
FROM emotion_profile_spread;

-- model_rdm_computed: one row per run set, emotion pair (emotion_a < emotion_b) and metric: each run's RDM of profiles, averaged over the run set, computed from the profiles on every query (the view model_rdm, sql/35_marts.sql, reads these rows materialised).
-- Profiles become one list per run and emotion (ordered by neuron); correlation distance is
-- 1 - cosine similarity of the mean-centred lists (= 1 - Pearson r).
CREATE OR REPLACE VIEW model_rdm_computed AS
WITH profile AS (
    SELECT r.run_set, p.run_id, p.emotion, list(p.value ORDER BY p.neuron) AS v
    FROM emotion_profile p JOIN runs r ON r.run_id = p.run_id
    WHERE p.emotion <> 'neutral'
    GROUP BY r.run_set, p.run_id, p.emotion
), centred AS (
    SELECT run_set, run_id, emotion, v, list_transform(v, lambda x: x - m) AS c
    FROM (SELECT *, list_avg(v) AS m FROM profile)
), per_run AS (
    SELECT a.run_set, a.run_id, a.emotion AS emotion_a, b.emotion AS emotion_b,
           1 - list_cosine_similarity(a.c, b.c) AS correlation,
           list_distance(a.v, b.v) AS euclidean,
           1 - list_cosine_similarity(a.v, b.v) AS cosine
    FROM centred a JOIN centred b ON a.run_id = b.run_id AND a.emotion < b.emotion
), per_run_set AS (
    SELECT run_set, emotion_a, emotion_b, avg(correlation) AS correlation, avg(euclidean) AS euclidean,
           avg(cosine) AS cosine, count(*) AS n_runs
    FROM per_run GROUP BY run_set, emotion_a, emotion_b
)
SELECT run_set, emotion_a, emotion_b, distance, metric, n_runs
FROM (UNPIVOT per_run_set ON correlation, euclidean, cosine INTO NAME metric VALUE distance);

-- attribute_rdm: one row per study, attribute and emotion pair (emotion_a < emotion_b): |difference| of the per-emotion values.
CREATE OR REPLACE VIEW attribute_rdm AS
SELECT a.study, a.attribute, a.emotion AS emotion_a, b.emotion AS emotion_b, abs(a.value - b.value) AS distance
FROM emotion_attributes a
JOIN emotion_attributes b ON a.study = b.study AND a.attribute = b.attribute AND a.emotion < b.emotion
WHERE a.emotion <> 'neutral' AND b.emotion <> 'neutral';
