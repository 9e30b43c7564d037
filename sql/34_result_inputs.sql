-- Lineage of stored results (warehouse/lineage.py): which input partitions, in which version, each
-- result was computed from; and which results are stale because an input changed since.

-- result_inputs: one row per stored result (analysis, run set, study) and input partition it read.
CREATE OR REPLACE VIEW result_inputs AS
SELECT analysis, run_set, study, input_table, input_partition, input_version, recorded_at
FROM read_parquet('result_inputs/*/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'analysis': VARCHAR, 'run_set': VARCHAR, 'study': VARCHAR})
WHERE analysis <> '_empty'
  AND _lake_path(filename, 5) IN (SELECT path FROM _live_files WHERE table_name = 'result_inputs');

-- stale_results: one row per stored result and input that changed since the result was computed
-- (replaced from another source with --replace, reloaded, recomputed, or gone: current_version '').
CREATE OR REPLACE VIEW stale_results AS
WITH inputs AS (SELECT DISTINCT input_table, input_partition FROM result_inputs),
current AS (
    SELECT i.input_table, i.input_partition,
           -- no live file: the coalesce is NULL, and list_distinct drops NULLs
           coalesce(array_to_string(list_sort(list_distinct(
               list(coalesce(f.source_sha256, f.source_path, f.load_id)))), ','), '') AS current_version
    FROM inputs i LEFT JOIN _live_files f
      ON f.table_name = i.input_table
     AND (f."partition" = i.input_partition OR starts_with(f."partition", i.input_partition || '/'))
    GROUP BY i.input_table, i.input_partition
)
SELECT r.analysis, r.run_set, r.study, r.input_table, r.input_partition,
       r.input_version AS computed_from, c.current_version, r.recorded_at
FROM result_inputs r JOIN current c USING (input_table, input_partition)
WHERE r.input_version <> c.current_version;
