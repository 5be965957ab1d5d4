-- Source frame of each launch call that caused GPU work: its innermost ancestor
-- python_function slice (with_stack) that is user code. Needs tv_launch_of_corr
-- (launches.sql) and tv_user_frame_name(name), the frame names that count as
-- user code, created from Python (model/launches.py: the rules/frames.toml filter).
--
-- Linear in frames and launches, no ancestor walk: frames nest properly on a
-- track (the loader moves crossing ones to overlap lanes), so the user frames
-- open at a launch call form a chain of levels 1..L, where L is the running
-- count of user-frame starts minus ends before the call; the innermost one is
-- the latest user frame that started at level L. Two sorts, no range join.
CREATE OR REPLACE PERFETTO TABLE tv_user_frame AS
SELECT s.id, s.track_id, s.ts, s.ts + s.dur AS end_ts, s.depth
FROM slice s
WHERE s.category = 'python_function'
  AND s.dur > 0  -- a frame of no duration encloses no call, and would end before it starts below
  AND +s.name IN (SELECT name FROM tv_user_frame_name)
  AND +s.track_id IN (SELECT track_id FROM tv_launch_call)
ORDER BY s.id;

CREATE OR REPLACE PERFETTO TABLE tv_launch_frame AS
WITH cuts AS (
  -- At one time: ends, then starts (outermost first), then launch calls, which a frame
  -- starting with them encloses and a frame ending with them does not.
  SELECT track_id, ts, 1 AS ord, depth AS sub, 1 AS step, id AS frame_id, NULL AS launch_id FROM tv_user_frame
  UNION ALL
  SELECT track_id, end_ts, 0, -depth, -1, NULL, NULL FROM tv_user_frame
  UNION ALL
  SELECT l.track_id, l.ts, 2, 0, 0, NULL, c.launch_id
  FROM tv_launch_of_corr c JOIN tv_launch_call l ON l.id = c.launch_id
  WHERE +l.track_id IN (SELECT track_id FROM tv_user_frame)
    -- A graph replay's frame is the replay call, not the code that captured its kernels:
    -- none (model/launches.py GRAPH_LAUNCH_APIS).
    AND l.name NOT IN ('cudaGraphLaunch', 'hipGraphLaunch', 'cuGraphLaunch')
),
levelled AS (
  SELECT *, sum(step) OVER (PARTITION BY track_id ORDER BY ts, ord, sub ROWS UNBOUNDED PRECEDING) AS level
  FROM cuts
),
opened AS (
  -- Within one level of one track, each start opens a group its calls belong to.
  SELECT *, sum(ord = 1) OVER (PARTITION BY track_id, level ORDER BY ts, ord, sub ROWS UNBOUNDED PRECEDING) AS grp
  FROM levelled
  WHERE ord <> 0
),
labelled AS (
  SELECT launch_id, level,
         first_value(frame_id) OVER (PARTITION BY track_id, level, grp ORDER BY ts, ord, sub) AS frame_id
  FROM opened
)
SELECT t.launch_id, s.name AS frame
FROM labelled t JOIN slice s ON s.id = t.frame_id
WHERE t.launch_id IS NOT NULL AND t.level > 0
ORDER BY t.launch_id;
