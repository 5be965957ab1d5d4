-- Innermost user annotation (record_function) above each launch call that
-- caused GPU work, excluding the step markers themselves. Used by rules that
-- match "launched under a record_function named X".
--
-- Walking ancestors costs ~7 us per launch, so it is done only for launch
-- calls on threads that hold such an annotation at all (in many decode traces
-- the step markers are the only ones, and the walk is skipped).
CREATE OR REPLACE PERFETTO TABLE tv_annotated_track AS
SELECT DISTINCT track_id
FROM slice
WHERE category IN ('user_annotation', 'marker_api')
  AND +id NOT IN (SELECT slice_id FROM tv_step WHERE slice_id IS NOT NULL);

CREATE OR REPLACE PERFETTO TABLE tv_launch_annotation AS
SELECT c.launch_id, (
  SELECT a.name FROM ancestor_slice(c.launch_id) a
  WHERE a.category IN ('user_annotation', 'marker_api')
    AND +a.id NOT IN (SELECT slice_id FROM tv_step WHERE slice_id IS NOT NULL)
  ORDER BY a.depth DESC LIMIT 1
) AS annotation
FROM tv_launch_of_corr c
JOIN tv_launch_call l ON l.id = c.launch_id
WHERE +l.track_id IN (SELECT track_id FROM tv_annotated_track)
ORDER BY c.launch_id;
