-- GPU work (kernels, memcpys, memsets) and the CPU calls that launched it.
-- Kineto names the categories differently across versions: 'kernel' /
-- 'gpu_memcpy' / 'gpu_memset' today, 'Kernel' / 'Memcpy' / 'Memset' in the
-- 2021 schema; rocprofv3's .pftrace uses 'kernel_dispatch' / 'memory_copy'
-- and 'hip_api', with the correlation id in the debug.corr_id annotation.
-- GPU events are told from CPU ones by category, never by stream (ROCm traces
-- put kernels on stream 0).
CREATE OR REPLACE PERFETTO TABLE tv_gpu_event AS
SELECT
  s.id,
  s.ts,
  s.dur,
  s.name,
  CASE
    WHEN s.category IN ('kernel', 'Kernel', 'kernel_dispatch') THEN 'kernel'
    WHEN s.category IN ('gpu_memcpy', 'Memcpy', 'memory_copy') THEN 'memcpy'
    ELSE 'memset'
  END AS kind,
  -- CAST: a correlation written as a string ("6") must still join, and must not
  -- make the column's type ambiguous.
  CAST(IIF(s.category IN ('kernel_dispatch', 'memory_copy'), extract_arg(s.arg_set_id, 'debug.corr_id'),
           extract_arg(s.arg_set_id, 'args.correlation')) AS INT) AS correlation
FROM slice s
WHERE s.category IN ('kernel', 'Kernel', 'gpu_memcpy', 'Memcpy', 'gpu_memset', 'Memset',
                     'kernel_dispatch', 'memory_copy');

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
  CAST(IIF(s.category = 'hip_api', extract_arg(s.arg_set_id, 'debug.corr_id'),
           extract_arg(s.arg_set_id, 'args.correlation')) AS INT) AS correlation
FROM slice s
WHERE s.category IN ('cuda_runtime', 'cuda_driver', 'Runtime', 'hip_runtime', 'hip_api')
  AND correlation IS NOT NULL;
