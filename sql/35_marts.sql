-- Materialised marts (warehouse/marts.py): the rows of an expensive computing view, stored per
-- run set and rebuilt after every commit that changes the run set's inputs. A stored run set is
-- served only while it is fresh: built from exactly the run set's current input files (a path is
-- never reused, so equal paths mean equal data) with the current view definitions. A run set
-- that is not fresh is refused with an error naming it, never served stale; the computing view
-- (`model_rdm_computed`) always answers, at the cost of a scan of every activation.

-- _views_sha256(): the SQL files' fingerprint, which a mart must have been built with to be fresh. A
-- placeholder here, so that these files run as they are in any DuckDB connection (where no mart is then
-- fresh); `emolake` replaces it with the real fingerprint after building the views (warehouse/database.py).
CREATE OR REPLACE MACRO _views_sha256() AS 'unknown: views built outside emolake';

-- model_rdm_mart (staging): one row per run set, emotion pair and metric, as last materialised (fresh or not).
CREATE OR REPLACE VIEW model_rdm_mart AS
SELECT run_set, emotion_a, emotion_b, distance, metric, n_runs
FROM read_parquet('model_rdm_mart/*/*.parquet', hive_partitioning = true, hive_types = {'run_set': VARCHAR})
WHERE run_set <> '_empty'
  AND _lake_path(filename, 3) IN (SELECT path FROM _live_files WHERE table_name = 'model_rdm_mart');

-- mart_builds: one row per materialised mart and run set: the input files and loads it was computed from, when, how long it took.
CREATE OR REPLACE VIEW mart_builds AS
SELECT mart, run_set, inputs_sha256, views_sha256, input_files, load_ids, n_rows, seconds, built_at, code_version
FROM read_parquet('mart_builds/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'mart': VARCHAR, 'run_set': VARCHAR})
WHERE mart <> '_empty'
  AND _lake_path(filename, 4) IN (SELECT path FROM _live_files WHERE table_name = 'mart_builds');

-- _run_set_inputs: one row per run set and live file its profiles read: the files of every table partitioned by run_id first (manifest, activations) for each of its runs, and its runs' dataset in stimuli.
CREATE OR REPLACE VIEW _run_set_inputs AS
SELECT r.run_set, f.table_name, f.path, f.load_id
FROM runs r JOIN _live_files f ON split_part(f."partition", '/', 1) = 'run_id=' || r.run_id
UNION
SELECT r.run_set, f.table_name, f.path, f.load_id
FROM runs r JOIN _live_files f ON f.table_name = 'stimuli' AND f."partition" = 'dataset=' || r.dataset;

-- mart_freshness: one row per mart and run set (with runs, or stored): status 'fresh', 'stale' (its input files or the view definitions in sql/ changed since it was built), 'missing' (never built) or 'gone' (stored, but the run set has no runs any more: nothing to serve). `_views_sha256()` is the SQL files' fingerprint, a macro that `emolake` writes with the views.
CREATE OR REPLACE VIEW mart_freshness AS
WITH current AS (
    SELECT 'model_rdm' AS mart, run_set,
           sha256(array_to_string(list_sort(list(DISTINCT path)), chr(10))) AS inputs_sha256
    FROM _run_set_inputs GROUP BY run_set
)
SELECT coalesce(c.mart, b.mart) AS mart, coalesce(c.run_set, b.run_set) AS run_set,
       CASE WHEN b.run_set IS NULL THEN 'missing'
            WHEN c.run_set IS NULL THEN 'gone'
            WHEN c.inputs_sha256 = b.inputs_sha256 AND b.views_sha256 = _views_sha256() THEN 'fresh'
            ELSE 'stale' END AS status,
       CASE WHEN b.run_set IS NULL THEN 'never materialised'
            WHEN c.run_set IS NULL THEN 'the run set has no runs any more'
            WHEN c.inputs_sha256 <> b.inputs_sha256 THEN 'its input files changed since it was built'
            WHEN b.views_sha256 <> _views_sha256() THEN 'the view definitions in sql/ changed since it was built'
       END AS reason,
       b.built_at, b.n_rows, c.inputs_sha256 AS current_sha256, b.inputs_sha256 AS built_sha256
FROM current c FULL JOIN mart_builds b ON b.mart = c.mart AND b.run_set = c.run_set;

-- model_rdm: one row per run set, emotion pair (emotion_a < emotion_b) and metric: model_rdm_computed's rows, read from the materialised mart; a run set whose mart is stale or missing raises an error naming it (`emolake refresh` rebuilds it; model_rdm_computed computes it on every query).
CREATE OR REPLACE VIEW model_rdm AS
WITH state AS (SELECT run_set, status, reason FROM mart_freshness WHERE mart = 'model_rdm')
SELECT m.run_set, m.emotion_a, m.emotion_b, m.distance, m.metric, m.n_runs
FROM model_rdm_mart m JOIN state s ON s.run_set = m.run_set AND s.status = 'fresh'
UNION ALL
SELECT s.run_set, NULL, NULL, NULL, NULL, NULL
FROM state s
WHERE CASE WHEN s.status IN ('stale', 'missing')
           THEN error('model_rdm is not materialised for run set ''' || s.run_set || ''' (' || s.reason
                      || '); run `emolake refresh` to rebuild it, or read the view model_rdm_computed')::BOOLEAN
           ELSE false END;
