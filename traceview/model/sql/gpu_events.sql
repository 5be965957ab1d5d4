-- GPU work (kernels, memcpys, memsets) and the CPU calls that launched it.
-- Kineto names the categories differently across versions: 'kernel' /
-- 'gpu_memcpy' / 'gpu_memset' today, 'Kernel' / 'Memcpy' / 'Memset' in the
-- 2021 schema. GPU events are told from CPU ones by category, never by stream
-- (ROCm traces put kernels on stream 0).
CREATE OR REPLACE PERFETTO TABLE tv_gpu_event AS
SELECT
  s.id,
  s.ts,
  s.dur,
  s.name,
  CASE
    WHEN s.category IN ('kernel', 'Kernel') THEN 'kernel'
    WHEN s.category IN ('gpu_memcpy', 'Memcpy') THEN 'memcpy'
    ELSE 'memset'
  END AS kind,
  extract_arg(s.arg_set_id, 'args.correlation') AS correlation,
  extract_arg(s.arg_set_id, 'args.device') AS device,
  extract_arg(s.arg_set_id, 'args.stream') AS stream
FROM slice s
WHERE s.category IN ('kernel', 'Kernel', 'gpu_memcpy', 'Memcpy', 'gpu_memset', 'Memset');

-- Launch-side calls: CUDA/HIP runtime and driver API events (Triton kernels go
-- through the driver: cuLaunchKernelEx, category cuda_driver). Only calls that
-- carry a correlation id can have caused GPU work.
CREATE OR REPLACE PERFETTO TABLE tv_launch_call AS
SELECT
  s.id,
  s.ts,
  s.dur,
  s.name,
  s.parent_id,
  s.track_id,
  extract_arg(s.arg_set_id, 'args.correlation') AS correlation
FROM slice s
WHERE s.category IN ('cuda_runtime', 'cuda_driver', 'Runtime', 'hip_runtime', 'hip_api')
  AND extract_arg(s.arg_set_id, 'args.correlation') IS NOT NULL;
