-- Innermost user annotation (record_function) above each launch call that
-- caused GPU work, excluding the step markers themselves. Used by rules that
-- match "launched under a record_function named X".
--
-- Linear in launches: instead of walking each launch call's ancestors, time on
-- each track is cut where an annotation starts (its name labels what follows)
-- and where one ends (the annotation around it takes over). A launch call takes
-- the label of the last cut at or before its start. Annotations nest properly on
-- a track (the loader moves crossing events to overlap lanes), so this is the
-- innermost annotation ancestor. Only annotations walk their ancestors: few rows.
CREATE OR REPLACE PERFETTO TABLE tv_annotation AS
SELECT s.id, s.track_id, s.ts, s.ts + s.dur AS end_ts, s.name, s.depth
FROM slice s
WHERE s.category IN ('user_annotation', 'marker_api')
  AND s.dur > 0
  AND +s.id NOT IN (SELECT slice_id FROM tv_step WHERE slice_id IS NOT NULL)
ORDER BY s.id;

CREATE OR REPLACE PERFETTO TABLE tv_annotation_outer AS
SELECT a.id, (
  SELECT p.name FROM ancestor_slice(a.id) p
  WHERE +p.id IN (SELECT id FROM tv_annotation)
  ORDER BY p.depth DESC LIMIT 1
) AS outer_name
FROM tv_annotation a
ORDER BY a.id;

CREATE OR REPLACE PERFETTO TABLE tv_launch_annotation AS
WITH cuts AS (
  -- At one time: ends before starts before launch calls; ends innermost first, starts outermost first.
  SELECT track_id, ts, 1 AS ord, depth AS sub, name AS label, NULL AS launch_id FROM tv_annotation
  UNION ALL
  SELECT a.track_id, a.end_ts, 0, -a.depth, o.outer_name, NULL
  FROM tv_annotation a JOIN tv_annotation_outer o USING (id)
  UNION ALL
  SELECT l.track_id, l.ts, 2, 0, NULL, c.launch_id
  FROM tv_launch_of_corr c JOIN tv_launch_call l ON l.id = c.launch_id
  WHERE +l.track_id IN (SELECT track_id FROM tv_annotation)
),
grouped AS (
  SELECT *, sum(ord <> 2) OVER (PARTITION BY track_id ORDER BY ts, ord, sub ROWS UNBOUNDED PRECEDING) AS cut
  FROM cuts
),
labelled AS (
  SELECT launch_id, first_value(label) OVER (PARTITION BY track_id, cut ORDER BY ts, ord, sub) AS annotation
  FROM grouped
)
SELECT launch_id, annotation FROM labelled
WHERE launch_id IS NOT NULL
ORDER BY launch_id;
