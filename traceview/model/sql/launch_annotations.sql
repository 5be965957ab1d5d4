-- Innermost user annotation (record_function) above each launch call that
-- caused GPU work, excluding the step markers themselves. Used by rules that
-- match "launched under a record_function named X".
CREATE OR REPLACE PERFETTO TABLE tv_launch_annotation AS
SELECT c.launch_id, (
  SELECT a.name FROM ancestor_slice(c.launch_id) a
  WHERE a.category IN ('user_annotation', 'marker_api')
    AND a.id NOT IN (SELECT slice_id FROM tv_step WHERE slice_id IS NOT NULL)
  ORDER BY a.depth DESC LIMIT 1
) AS annotation
FROM tv_launch_of_corr c;
