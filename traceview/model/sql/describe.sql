SELECT
  (SELECT count(*) FROM slice) AS slices,
  (SELECT count(*) FROM slice WHERE category IN ('cpu_op', 'Operator')) AS cpu_ops,
  (SELECT count(*) FROM tv_launch_call) AS launch_calls,
  (SELECT count(*) FROM tv_gpu_event WHERE kind = 'kernel') AS kernels,
  (SELECT count(*) FROM tv_gpu_event WHERE kind = 'memcpy') AS memcpys,
  (SELECT count(*) FROM tv_gpu_event WHERE kind = 'memset') AS memsets,
  (SELECT count(DISTINCT coalesce(extract_arg(s.arg_set_id, 'args.device'), extract_arg(s.arg_set_id, 'debug.agent')))
   FROM tv_gpu_event g JOIN slice s USING (id)) AS devices,
  (SELECT ifnull(max(ts + dur) - min(ts), 0) FROM slice WHERE dur >= 0) AS span_ns;
