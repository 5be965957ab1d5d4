-- Attribute every GPU event to the step whose CPU range contains the call that
-- launched it. Needs tv_gpu_event / tv_launch_call (gpu_events.sql) and
-- tv_step(step, cpu_start_ns, cpu_end_ns), created from Python.
--
-- The link is args.correlation: the launch call and every GPU event it caused
-- carry the same id. Flow events are not used: some traces have none, older
-- ones name them async_cpu_to_gpu, and the processor links some kernels twice.

-- Every join below stays linear: a processor table whose join column is sorted
-- is searched by bisection, and `+col IN (subquery)` keeps the IN list in
-- SQLite's own index instead of handing it to the processor as one scan per
-- value (both quadratic before, measured on real-shaped traces).

-- One launch call per correlation id (exact duplicate events exist in real
-- traces; the first one wins).
CREATE OR REPLACE PERFETTO TABLE tv_launch_of_corr AS
SELECT l.correlation, min(l.id) AS launch_id
FROM tv_launch_call l
WHERE +l.correlation IN (SELECT correlation FROM tv_gpu_event WHERE correlation IS NOT NULL)
GROUP BY l.correlation
ORDER BY l.correlation;

-- Step of each launch call: the latest step that starts at or before the call
-- (a running max over the time-ordered union), kept only if the call starts
-- before that step ends. Steps are numbered in start order, so max() is right.
CREATE OR REPLACE PERFETTO TABLE tv_launch_step AS
WITH ordered AS (
  SELECT cpu_start_ns AS ts, 0 AS is_launch, step, NULL AS launch_id FROM tv_step
  UNION ALL
  SELECT l.ts, 1, NULL, l.id
  FROM tv_launch_call l JOIN tv_launch_of_corr c ON c.launch_id = l.id
),
tagged AS (
  SELECT launch_id, ts, max(step) OVER (ORDER BY ts, is_launch ROWS UNBOUNDED PRECEDING) AS candidate
  FROM ordered
)
SELECT t.launch_id, IIF(t.ts < s.cpu_end_ns, s.step, NULL) AS step
FROM tagged t LEFT JOIN tv_step s ON s.step = t.candidate
WHERE t.launch_id IS NOT NULL
ORDER BY t.launch_id;

-- The launching CPU op is the launch call's parent slice when that is an aten
-- op (it can also be an annotation, or a python_function frame: a Triton
-- launch). Its Input type args give the dtypes.
CREATE OR REPLACE PERFETTO VIEW tv_launch AS
SELECT
  g.id AS gpu_id,
  g.ts AS gpu_ts,
  g.dur AS gpu_dur,
  g.name AS kernel,
  g.kind,
  l.id AS launch_id,
  l.name AS launch_api,
  l.ts AS launch_ts,
  ls.step,
  CASE
    WHEN l.id IS NULL THEN 'no_launch'
    WHEN ls.step IS NOT NULL THEN NULL
    WHEN l.ts < (SELECT min(cpu_start_ns) FROM tv_step) THEN 'before_first_step'
    WHEN l.ts >= (SELECT max(cpu_end_ns) FROM tv_step) THEN 'after_last_step'
    ELSE 'between_steps'
  END AS outside,
  IIF(p.category IN ('cpu_op', 'Operator'), p.name, NULL) AS op,
  extract_arg(p.arg_set_id, 'args.Input type[0]') AS op_type0,
  extract_arg(p.arg_set_id, 'args.Input type[1]') AS op_type1
FROM tv_gpu_event g
LEFT JOIN tv_launch_of_corr c ON c.correlation = g.correlation
LEFT JOIN tv_launch_call l ON l.id = c.launch_id
LEFT JOIN tv_launch_step ls ON ls.launch_id = l.id
LEFT JOIN slice p ON p.id = l.parent_id;
