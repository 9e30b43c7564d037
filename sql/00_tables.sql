-- Staging: one view per lake table, partition keys typed explicitly. Paths are relative to the
-- lake, so this file runs unchanged in `duckdb warehouse.duckdb` started in the lake directory.

-- The commit log (docs/RELIABILITY.md): every commit publishes one record `_commits/<load_id>.parquet`
-- listing the files it adds and removes. A file is part of the lake when a record adds it and
-- none removes it; every view below reads only such files, so a query sees whole commits only.
CREATE OR REPLACE VIEW _commit_log AS
SELECT load_id, committed_at, command, action, table_name, "partition", path, source_path, source_sha256, "rows"
FROM read_parquet('_commits/*.parquet');

-- _live_files: the files that are part of the lake (path relative to the lake), with what each was loaded from.
CREATE OR REPLACE VIEW _live_files AS
SELECT DISTINCT table_name, "partition", path, load_id, source_path, source_sha256, "rows"
FROM _commit_log
WHERE action = 'add' AND path NOT IN (SELECT path FROM _commit_log WHERE action = 'remove');

-- _lake_path(filename, depth): the last `depth` parts of a file name as read_parquet reports it
-- (relative in a shell started in the lake, absolute with `SET file_search_path`), i.e. its path in the lake.
CREATE OR REPLACE MACRO _lake_path(f, depth) AS array_to_string(string_split(replace(f, '\', '/'), '/')[-depth:], '/');

-- loads: one row per file loaded into a table partition (source path, sha256, rows, time, code version).
CREATE OR REPLACE VIEW loads AS
SELECT load_id, table_name, "partition", source_path, source_sha256, "rows", loaded_at, code_version, command
FROM read_parquet('loads/*.parquet')
WHERE _lake_path(filename, 2) IN (SELECT path FROM _live_files WHERE table_name = 'loads');

-- stimuli: one row per stimulus and label; multi-label stimuli appear once per label.
CREATE OR REPLACE VIEW stimuli AS
SELECT dataset, split, stimulus_id, text, emotion, n_labels, source_row
FROM read_parquet('stimuli/*/*.parquet', hive_partitioning = true, hive_types = {'dataset': VARCHAR})
WHERE dataset <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'stimuli');

-- ratings: one row per rater, emotion and rated attribute (or raw questionnaire item).
CREATE OR REPLACE VIEW ratings AS
SELECT study, rater, emotion, attribute, rating, scale_min, scale_max, instrument
FROM read_parquet('ratings/*/*.parquet', hive_partitioning = true, hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'ratings');

-- rater_exclusions: one row per rater dropped at ingest, with the reason.
CREATE OR REPLACE VIEW rater_exclusions AS
SELECT study, instrument, rater, reason
FROM read_parquet('rater_exclusions/*/*.parquet', hive_partitioning = true, hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'rater_exclusions');

-- emotion_attributes: one value per study, emotion and attribute.
CREATE OR REPLACE VIEW emotion_attributes AS
SELECT study, emotion, attribute, value, source
FROM read_parquet('emotion_attributes/*/*.parquet', hive_partitioning = true, hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'emotion_attributes');

-- similarity_judgments: one human distance per study, rater and emotion pair (emotion_a < emotion_b).
CREATE OR REPLACE VIEW similarity_judgments AS
SELECT study, rater, emotion_a, emotion_b, distance, source
FROM read_parquet('similarity_judgments/*/*.parquet', hive_partitioning = true, hive_types = {'study': VARCHAR})
WHERE study <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'similarity_judgments');
