-- Launches grouped by everything the category rules and reports look at.
-- This small table is all that leaves the processor.
SELECT
  t.step,
  t.outside,
  t.kernel,
  t.kind,
  t.launch_api,
  t.op,
  t.op_type0,
  t.op_type1,
  a.annotation,
  f.frame,
  count(*) AS launches,
  sum(t.gpu_dur) AS gpu_dur_ns,
  min(t.gpu_ts) AS first_gpu_ts,
  max(t.gpu_ts + t.gpu_dur) AS last_gpu_end
FROM tv_launch t
LEFT JOIN tv_launch_annotation a ON a.launch_id = t.launch_id
LEFT JOIN tv_launch_frame f ON f.launch_id = t.launch_id
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;
