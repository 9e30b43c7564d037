-- Extraction: runs (manifests) and their FFN activations, stored as one float32 list per
-- stimulus and layer (docs/BENCHMARKS.md says why) and unnested here into long form.

-- runs: one row per extraction run or released set of activations, with its full manifest, and
-- its progress: n_chunks (chunks of chunk_size stimuli) and chunks_done (chunks committed in every
-- layer; each chunk is one commit of all its layers, so committed files / n_layers). Shards
-- (`extract --shard I/N`) write chunks I, I+N, ...; the run is 'complete' once all are done.
CREATE OR REPLACE VIEW runs AS
SELECT m.run_id, run_set, status, source, model, model_class, weights_sha256, tokenizer, tokenizer_settings,
       template, position, hook_point, dtype, neuron, tokenizer_sha256, device, batch_size, chunk_size, seed, dataset, split, emotions,
       "limit", stimuli_sha256, n_stimuli, n_layers, d_ff, package_versions, code_version, created_at, finished_at,
       coalesce(store, 'vectors') AS store,  -- what the run kept: 'vectors' (activations) or 'profiles' (profile_parts)
       CAST(ceil(n_stimuli / chunk_size) AS BIGINT) AS n_chunks,
       -- chunks_done counts activation files: NULL for a profiles run (its parts are in profile_stimuli)
       CASE WHEN chunk_size IS NOT NULL AND coalesce(store, 'vectors') = 'vectors'
            THEN CAST(floor(coalesce(f.n_files, 0) / n_layers) AS BIGINT) END AS chunks_done
FROM read_parquet('runs/*/*.parquet', hive_partitioning = true, hive_types = {'run_id': VARCHAR},
                  union_by_name = true) AS m  -- manifests written before a column existed read it as NULL
LEFT JOIN (SELECT "partition" AS run_partition, count(*) AS n_files FROM (
               SELECT split_part("partition", '/', 1) AS "partition" FROM _live_files WHERE table_name = 'activations')
           GROUP BY "partition") AS f
  ON f.run_partition = 'run_id=' || m.run_id
WHERE m.run_id <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'runs');

-- activation_vectors: one row per run, stimulus, layer (and token, for position 'all'): the layer's
-- d_ff activations as a FLOAT[] (unit = list index - 1). The fast way back to wide matrices.
CREATE OR REPLACE VIEW activation_vectors AS
SELECT run_id, stimulus_id, layer, token, activation
FROM read_parquet('activations/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_id': VARCHAR, 'layer': INTEGER})
WHERE run_id <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'activations');

-- activations: one row per run, stimulus, (token,) layer and unit: neuron = layer * d_ff + unit, 0-based.
CREATE OR REPLACE VIEW activations AS
SELECT run_id, stimulus_id, layer, unit, layer * d_ff + unit AS neuron, value, token
FROM (
    SELECT run_id, stimulus_id, layer, token, len(activation) AS d_ff,
           unnest(range(len(activation))) AS unit, unnest(activation) AS value
    FROM activation_vectors
);

-- profile_parts: one row per profiles run (`extract --store profiles`), layer, part and emotion: the count of
-- activation rows summed and the layer's d_ff sums and sums of squares (DOUBLE[], unit = list index - 1), as stored.
CREATE OR REPLACE VIEW profile_parts AS
SELECT run_id, layer, part, emotion, n_rows, value_sum, value_sumsq
FROM read_parquet('profile_parts/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'run_id': VARCHAR, 'layer': INTEGER})
WHERE run_id <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'profile_parts');

-- profile_stimuli: one row per stimulus of a profiles run and emotion it counted toward (NULL: none), with the part covering it.
CREATE OR REPLACE VIEW profile_stimuli AS
SELECT run_id, part, stimulus_id, emotion, n_rows
FROM read_parquet('profile_stimuli/*/*.parquet', hive_partitioning = true, hive_types = {'run_id': VARCHAR})
WHERE run_id <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'profile_stimuli');

-- release_accuracy: released unablated emotion-inference accuracy, one row per run (seed) and emotion.
CREATE OR REPLACE VIEW release_accuracy AS
SELECT run_set, run_id, emotion, seed, accuracy, source
FROM read_parquet('release_accuracy/*/*.parquet', hive_partitioning = true, hive_types = {'run_set': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'release_accuracy');
