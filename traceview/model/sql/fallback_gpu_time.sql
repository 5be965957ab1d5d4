-- Fallback for traces without usable correlation ids: a GPU event belongs to
-- the step whose GPU-side annotation (gpu_user_annotation with the step's
-- name, e.g. the GPU copy of ProfilerStep#N) contains its start time. With no
-- GPU-side annotations and a single whole-trace step, everything is step 0.
CREATE OR REPLACE PERFETTO TABLE tv_launch_of_corr AS
SELECT NULL AS correlation, NULL AS launch_id WHERE 0;

CREATE OR REPLACE PERFETTO TABLE tv_gpu_step AS
SELECT st.step, min(a.ts) AS gpu_start, max(a.ts + a.dur) AS gpu_end
FROM tv_step st
JOIN slice s ON s.id = st.slice_id
JOIN slice a ON a.name = s.name AND a.category = 'gpu_user_annotation'
GROUP BY st.step;

CREATE OR REPLACE PERFETTO TABLE tv_launch AS
WITH placed AS (
  SELECT g.*, coalesce(
    (SELECT gs.step FROM tv_gpu_step gs WHERE g.ts >= gs.gpu_start AND g.ts < gs.gpu_end
     ORDER BY gs.gpu_start DESC LIMIT 1),
    IIF((SELECT count(*) FROM tv_gpu_step) = 0 AND (SELECT count(*) FROM tv_step) = 1, 0, NULL)
  ) AS step
  FROM tv_gpu_event g
)
SELECT
  id AS gpu_id, ts AS gpu_ts, dur AS gpu_dur, name AS kernel, kind,
  NULL AS launch_id, NULL AS launch_api, NULL AS launch_ts, step,
  IIF(step IS NULL, 'no_launch', NULL) AS outside,
  NULL AS op, NULL AS op_type0, NULL AS op_type1
FROM placed;
