"""Writes the rocprof fixtures in this folder: ONE tiny workload saved in every input format.

    python tests/data/rocprof/make_fixtures.py

The workload (process 4242, main thread 4242, one MI300X = GPU 0 = agent node 1,
HW queue 1, stream 0):

- steps 1..3: roctx range ``ProfilerStep#N`` (100 us) holding a nested range
  ``model_forward``; inside it hipGetDevice (no GPU work), hipLaunchKernel ->
  FillFunctor, hipLaunchKernel -> bfloat16tofloat32_copy_kernel_cuda,
  hipExtModuleLaunchKernel -> kn_get_mla_metadata_v1_0, hipMemsetAsync ->
  __amd_rocclr_fillBufferAligned, hipGraphLaunch -> 3 kernels sharing its
  correlation id, hipStreamSynchronize (no GPU work); step 2 alone also does
  hipMemcpyAsync -> one host-to-device copy;
- after step 3: one hipLaunchKernel -> FillFunctor outside every step.

So GPU events per step = 1 + 1 + 1 + 1 + 3 = 7, plus the copy in step 2 = 8:
[7, 8, 7], and 1 outside the steps (23 GPU events: 22 kernels, 1 copy).

Files: ``csv/`` (rocprofv3 CSV run: agent_info, kernel_trace, hip_api_trace,
marker_api_trace, memory_copy_trace), ``4242_results.json`` (rocprofv3 JSON),
``4242_results.db`` (rocpd), ``kineto_rocm.json`` (the same run as a ROCm
torch.profiler/Kineto trace). Column lists and table layouts follow rocprofv3's
writers (rocprofiler-sdk source/lib/output/generateCSV.cpp, serialization.hpp,
share/rocprofiler-sdk-rocpd/rocpd_tables.sql); the values are made up.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PID = TID = 4242
T0 = 5_000_000_000_000  # ns on the profiler clock
STEP_NS = 200_000
GPU_NODE, CPU_NODE, GPU_HANDLE, CPU_HANDLE, QUEUE, STREAM = 1, 0, 40002, 40001, 1, 0
FILL = ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<c10::BFloat16>, "
        "std::array<char*, 1ul> >(int, at::native::FillFunctor<c10::BFloat16>, std::array<char*, 1ul>)")
CAST = ("void at::native::vectorized_elementwise_kernel<4, at::native::bfloat16tofloat32_copy_kernel_cuda"
        "(at::TensorIteratorBase&)::{lambda(c10::BFloat16)#1}, std::array<char*, 2ul> >(int, "
        "at::native::bfloat16tofloat32_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda(c10::BFloat16)#1}, "
        "std::array<char*, 2ul>)")
MLA = "kn_get_mla_metadata_v1_0"
MEMSET = "__amd_rocclr_fillBufferAligned"
GEMM = "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT128x128x64_MI16x16x1_SN_LDSB1_AFC1_AFEM1"
NORM = ("void vllm::rms_norm_kernel<c10::BFloat16, 8, 3>(c10::BFloat16*, c10::BFloat16 const*, long, "
        "c10::BFloat16 const*, float, int, int)")
SILU = ("void vllm::act_and_mul_kernel<c10::BFloat16, &(c10::BFloat16 vllm::silu_kernel<c10::BFloat16>"
        "(c10::BFloat16 const&)), true>(c10::BFloat16*, c10::BFloat16 const*, int)")
KERNEL_IDS = {FILL: 11, CAST: 12, MLA: 13, MEMSET: 14, GEMM: 15, NORM: 16, SILU: 17}
HIP_OPS = ["hipApiName", "hipExtModuleLaunchKernel", "hipGetDevice", "hipGraphLaunch", "hipLaunchKernel",
           "hipMemcpyAsync", "hipMemsetAsync", "hipStreamSynchronize"]  # a subset, alphabetical like rocprofv3's
KINDS = ["NONE", "HSA_CORE_API", "HSA_AMD_EXT_API", "HSA_IMAGE_EXT_API", "HSA_FINALIZE_EXT_API", "HIP_RUNTIME_API",
         "HIP_COMPILER_API", "MARKER_CORE_API", "MARKER_CONTROL_API", "MARKER_NAME_API", "MEMORY_COPY",
         "KERNEL_DISPATCH", "SCRATCH_MEMORY", "CORRELATION_ID_RETIREMENT", "RCCL_API", "OMPT", "MEMORY_ALLOCATION",
         "RUNTIME_INITIALIZATION", "ROCDECODE_API", "ROCJPEG_API", "HIP_STREAM", "HIP_RUNTIME_API_EXT",
         "HIP_COMPILER_API_EXT", "ROCDECODE_API_EXT", "KFD_EVENT_PAGE_MIGRATE", "KFD_EVENT_PAGE_FAULT",
         "KFD_EVENT_QUEUE", "KFD_EVENT_UNMAP_FROM_GPU", "KFD_EVENT_DROPPED_EVENTS", "KFD_PAGE_MIGRATE",
         "KFD_PAGE_FAULT", "KFD_QUEUE", "MARKER_CORE_RANGE_API"]
OPERATIONS = {"HIP_RUNTIME_API": HIP_OPS, "HIP_RUNTIME_API_EXT": HIP_OPS,
              "MEMORY_COPY": ["MEMORY_COPY_NONE", "MEMORY_COPY_HOST_TO_HOST", "MEMORY_COPY_HOST_TO_DEVICE",
                              "MEMORY_COPY_DEVICE_TO_HOST", "MEMORY_COPY_DEVICE_TO_DEVICE"],
              "KERNEL_DISPATCH": ["KERNEL_DISPATCH_NONE", "KERNEL_DISPATCH_ENQUEUE", "KERNEL_DISPATCH_COMPLETE"],
              "MARKER_CORE_RANGE_API": ["roctxMarkA", "roctxThreadRangeA", "roctxProcessRangeA",
                                        "roctxGetThreadId"]}


@dataclass
class Call:
    """A host call: a roctx range (``kernels is None``) or a HIP API call and the GPU work it caused."""

    name: str
    corr: int
    start: int
    end: int
    kernels: list[tuple[str, int, int]] | None = None  # (kernel name, start, end)
    copy: tuple[int, int] | None = None  # host-to-device copy (start, end)


def workload() -> tuple[list[Call], list[Call]]:
    """(roctx ranges, HIP calls) in start order; correlation ids count all calls in time order."""
    plan: list[tuple[int, int, str, list | None, tuple | None]] = []
    for n in (1, 2, 3):
        s = T0 + (n - 1) * STEP_NS
        plan += [(s, s + 100_000, f"ProfilerStep#{n}", None, None),
                 (s + 1_000, s + 90_000, "model_forward", None, None),
                 (s + 2_000, s + 2_500, "hipGetDevice", [], None),
                 (s + 5_000, s + 8_000, "hipLaunchKernel", [(FILL, s + 9_000, s + 11_000)], None),
                 (s + 10_000, s + 13_000, "hipLaunchKernel", [(CAST, s + 14_000, s + 16_500)], None),
                 (s + 15_000, s + 19_000, "hipExtModuleLaunchKernel", [(MLA, s + 20_000, s + 21_500)], None),
                 (s + 20_000, s + 23_000, "hipMemsetAsync", [(MEMSET, s + 24_000, s + 25_000)], None)]
        if n == 2:
            plan.append((s + 24_000, s + 28_000, "hipMemcpyAsync", [], (s + 27_000, s + 29_000)))
        plan += [(s + 30_000, s + 40_000, "hipGraphLaunch",
                  [(GEMM, s + 35_000, s + 38_000), (NORM, s + 38_500, s + 40_500), (SILU, s + 41_000, s + 43_500)],
                  None),
                 (s + 60_000, s + 85_000, "hipStreamSynchronize", [], None)]
    s = T0 + 650_000
    plan.append((s, s + 3_000, "hipLaunchKernel", [(FILL, s + 5_000, s + 7_000)], None))
    calls = [Call(name, corr, start, end, kernels, copy)
             for corr, (start, end, name, kernels, copy) in enumerate(sorted(plan, key=lambda p: p[0]), start=1)]
    return [c for c in calls if c.kernels is None], [c for c in calls if c.kernels is not None]


def dispatches(hip: list[Call]) -> list[tuple[int, Call, str, int, int]]:
    """(dispatch id, launching call, kernel, start, end) in dispatch order."""
    rows = [(call, *k) for call in hip for k in call.kernels or []]
    return [(i, call, name, start, end) for i, (call, name, start, end) in enumerate(rows, start=1)]


def _writer(path: Path):
    fh = path.open("w", newline="")
    return fh, csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")


AGENT_COLUMNS = ["Node_Id", "Logical_Node_Id", "Agent_Type", "Cpu_Cores_Count", "Simd_Count", "Cpu_Core_Id_Base",
                 "Simd_Id_Base", "Max_Waves_Per_Simd", "Lds_Size_In_Kb", "Gds_Size_In_Kb", "Num_Gws",
                 "Wave_Front_Size", "Num_Xcc", "Cu_Count", "Array_Count", "Num_Shader_Banks",
                 "Simd_Arrays_Per_Engine", "Cu_Per_Simd_Array", "Simd_Per_Cu", "Max_Slots_Scratch_Cu",
                 "Gfx_Target_Version", "Vendor_Id", "Device_Id", "Location_Id", "Domain", "Drm_Render_Minor",
                 "Num_Sdma_Engines", "Num_Sdma_Xgmi_Engines", "Num_Sdma_Queues_Per_Engine", "Num_Cp_Queues",
                 "Max_Engine_Clk_Ccompute", "Max_Engine_Clk_Fcompute", "Sdma_Fw_Version", "Fw_Version",
                 "Capability", "Cu_Per_Engine", "Max_Waves_Per_Cu", "Family_Id", "Workgroup_Max_Size",
                 "Grid_Max_Size", "Local_Mem_Size", "Hive_Id", "Gpu_Id", "Workgroup_Max_Dim_X",
                 "Workgroup_Max_Dim_Y", "Workgroup_Max_Dim_Z", "Grid_Max_Dim_X", "Grid_Max_Dim_Y", "Grid_Max_Dim_Z",
                 "Name", "Vendor_Name", "Product_Name", "Model_Name"]
KERNEL_COLUMNS = ["Kind", "Agent_Id", "Queue_Id", "Stream_Id", "Thread_Id", "Dispatch_Id", "Kernel_Id", "Kernel_Name",
                  "Correlation_Id", "Start_Timestamp", "End_Timestamp", "LDS_Block_Size", "Scratch_Size",
                  "VGPR_Count", "Accum_VGPR_Count", "SGPR_Count", "Workgroup_Size_X", "Workgroup_Size_Y",
                  "Workgroup_Size_Z", "Grid_Size_X", "Grid_Size_Y", "Grid_Size_Z"]
API_COLUMNS = ["Domain", "Function", "Process_Id", "Thread_Id", "Correlation_Id", "Start_Timestamp", "End_Timestamp"]
COPY_COLUMNS = ["Kind", "Direction", "Stream_Id", "Source_Agent_Id", "Destination_Agent_Id", "Correlation_Id",
                "Start_Timestamp", "End_Timestamp"]


def write_csv(ranges: list[Call], hip: list[Call]) -> None:
    out = HERE / "csv"
    out.mkdir(exist_ok=True)
    fh, w = _writer(out / "4242_agent_info.csv")
    w.writerow(AGENT_COLUMNS)
    w.writerow([CPU_NODE, 0, "CPU", 64, 0, 0, 0, 0, 0, 0, 0, 0, 1, 64] + [0] * 16 + [3700, 0, 0, 0, 0, 0, 0, 0,
               0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "AMD EPYC 9654 96-Core Processor", "CPU",
               "AMD EPYC 9654 96-Core Processor", ""])
    w.writerow([GPU_NODE, 1, "GPU", 0, 1216, 0, 2147487744, 8, 64, 0, 64, 64, 8, 304, 4, 4, 1, 10, 4, 32, 90402,
                4098, 29857, 768, 0, 128, 2, 14, 8, 24, 2100, 1300, 0, 0, 0, 38, 32, 141, 1024, 4294967295, 0,
                0, 2958, 1024, 1024, 1024, 4294967295, 65535, 65535, "gfx942", "AMD", "AMD Instinct MI300X",
                "aqua_vanjaram"])
    fh.close()
    fh, w = _writer(out / "4242_kernel_trace.csv")
    w.writerow(KERNEL_COLUMNS)
    for dispatch, call, name, start, end in dispatches(hip):
        w.writerow(["KERNEL_DISPATCH", f"Agent {GPU_NODE}", QUEUE, STREAM, TID, dispatch, KERNEL_IDS[name], name,
                    call.corr, start, end, 0, 0, 32, 0, 48, 256, 1, 1, 65536, 1, 1])
    fh.close()
    fh, w = _writer(out / "4242_hip_api_trace.csv")
    w.writerow(API_COLUMNS)
    for call in hip:
        w.writerow(["HIP_RUNTIME_API_EXT", call.name, PID, TID, call.corr, call.start, call.end])
    fh.close()
    fh, w = _writer(out / "4242_marker_api_trace.csv")
    w.writerow(API_COLUMNS)
    for call in ranges:
        w.writerow(["MARKER_CORE_RANGE_API", call.name, PID, TID, call.corr, call.start, call.end])
    fh.close()
    fh, w = _writer(out / "4242_memory_copy_trace.csv")
    w.writerow(COPY_COLUMNS)
    for call in hip:
        if call.copy:
            w.writerow(["MEMORY_COPY", "MEMORY_COPY_HOST_TO_DEVICE", STREAM, f"Agent {CPU_NODE}",
                        f"Agent {GPU_NODE}", call.corr, *call.copy])
    fh.close()


def _corr(call: Call) -> dict:
    return {"internal": call.corr, "external": 0}


def _api_record(kind: str, op: str, call: Call) -> dict:
    return {"size": 48, "kind": KINDS.index(kind), "operation": OPERATIONS[kind].index(op),
            "correlation_id": _corr(call), "start_timestamp": call.start, "end_timestamp": call.end,
            "thread_id": TID}


def _agent(handle: int, node: int, gpu: bool) -> dict:
    return {"size": 312, "id": {"handle": handle}, "type": 2 if gpu else 1, "node_id": node,
            "logical_node_id": node, "logical_node_type_id": 0, "cu_count": 304 if gpu else 64,
            "gpu_id": 29857 if gpu else 0, "name": "gfx942" if gpu else "AMD EPYC 9654 96-Core Processor",
            "vendor_name": "AMD" if gpu else "CPU",
            "product_name": "AMD Instinct MI300X" if gpu else "AMD EPYC 9654 96-Core Processor",
            "model_name": "aqua_vanjaram" if gpu else ""}


def _symbol(name: str, kernel_id: int) -> dict:
    mangled = name if name.startswith(("kn_", "Cijk", "__amd")) else f"_Z{len(name)}kernel_{kernel_id}"
    return {"size": 88, "kernel_id": kernel_id, "code_object_id": 1, "kernel_name": f"{mangled}.kd",
            "kernel_object": 139800000000000 + kernel_id * 256, "kernarg_segment_size": 64,
            "kernarg_segment_alignment": 8, "group_segment_size": 0, "private_segment_size": 0, "sgpr_count": 48,
            "arch_vgpr_count": 32, "accum_vgpr_count": 0, "kernel_code_entry_byte_offset": 256,
            "kernel_address": {"handle": 139800000100000 + kernel_id * 256}, "formatted_kernel_name": name,
            "demangled_kernel_name": f"{name} [clone .kd]", "truncated_kernel_name": name.split("(")[0]}


def write_sdk_json(ranges: list[Call], hip: list[Call]) -> None:
    kernels = [{"size": 184, "kind": KINDS.index("KERNEL_DISPATCH"), "operation": 2, "thread_id": TID,
                "correlation_id": _corr(call), "start_timestamp": start, "end_timestamp": end,
                "dispatch_info": {"size": 72, "agent_id": {"handle": GPU_HANDLE}, "queue_id": {"handle": QUEUE},
                                  "kernel_id": KERNEL_IDS[name], "dispatch_id": dispatch, "private_segment_size": 0,
                                  "group_segment_size": 0, "workgroup_size": {"x": 256, "y": 1, "z": 1},
                                  "grid_size": {"x": 65536, "y": 1, "z": 1}},
                "stream_id": {"handle": STREAM}}
               for dispatch, call, name, start, end in dispatches(hip)]
    copies = [{"size": 80, "kind": KINDS.index("MEMORY_COPY"), "operation": 2, "thread_id": TID,
               "correlation_id": _corr(call), "start_timestamp": call.copy[0], "end_timestamp": call.copy[1],
               "dst_agent_id": {"handle": GPU_HANDLE}, "src_agent_id": {"handle": CPU_HANDLE}, "bytes": 1 << 20,
               "stream_id": {"handle": STREAM}} for call in hip if call.copy]
    empty = ("hsa_api", "rccl_api", "memory_allocation", "scratch_memory", "rocdecode_api", "rocjpeg_api",
             "pc_sample_host_trap", "pc_sample_stochastic")
    process = {
        "metadata": {"pid": PID, "init_time": T0 - 1_000_000, "fini_time": T0 + 1_000_000,
                     "command": ["/usr/bin/python3", "serve.py"],
                     "config": {"json_output": True, "csv_output": False, "kernel_rename": False}},
        "agents": [_agent(CPU_HANDLE, CPU_NODE, False), _agent(GPU_HANDLE, GPU_NODE, True)],
        "counters": [],
        "strings": {"callback_records": [], "buffer_records": [{"kind": k, "operations": OPERATIONS.get(k, [])}
                                                               for k in KINDS],
                    "marker_api": [{"key": c.corr, "value": c.name} for c in ranges],
                    "correlation_id": {"external": []}, "counters": {"dimension_ids": []},
                    "pc_sample_instructions": [], "pc_sample_comments": [], "att_filenames": [],
                    "code_object_snapshot_filenames": []},
        "code_objects": [{"size": 64, "code_object_id": 1, "agent_id": {"handle": GPU_HANDLE},
                          "uri": "file:///opt/venv/lib/libtorch_hip.so#offset=1&size=2", "load_base": 0,
                          "load_size": 0, "load_delta": 0, "storage_type": 1}],
        "kernel_symbols": [_symbol(name, kid) for name, kid in KERNEL_IDS.items()],
        "host_functions": [], "summary": [], "callback_records": {"counter_collection": []},
        "buffer_records": {"kernel_dispatch": kernels,
                           "hip_api": [_api_record("HIP_RUNTIME_API", c.name, c) for c in hip],
                           "marker_api": [_api_record("MARKER_CORE_RANGE_API", "roctxThreadRangeA", c)
                                          for c in ranges],
                           "memory_copy": copies, **{name: [] for name in empty}},
    }
    (HERE / "4242_results.json").write_text(json.dumps({"rocprofiler-sdk-tool": [process]}, indent=1))


UUID = "_01959f6e_2c3d_7a10_9b8c_0123456789ab"
GUID = "01959f6e-2c3d-7a10-9b8c-0123456789ab"
# rocpd schema version 3: each table is rocpd_<name><uuid>, read through a view rocpd_<name>.
ROCPD_TABLES = {
    "metadata": "id INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL, value TEXT NOT NULL",
    "string": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, string TEXT NOT NULL UNIQUE",
    "info_node": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, hash BIGINT NOT NULL UNIQUE, "
                 "machine_id TEXT NOT NULL UNIQUE, name TEXT, system_name TEXT, hostname TEXT, release TEXT, "
                 "version TEXT, hardware_name TEXT, domain_name TEXT",
    "info_process": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, ppid INTEGER, "
                    "pid INTEGER NOT NULL, name TEXT, init BIGINT, fini BIGINT, start BIGINT, \"end\" BIGINT, "
                    "command TEXT, environment JSONB DEFAULT '{}' NOT NULL, extdata JSONB DEFAULT '{}' NOT NULL",
    "info_thread": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, ppid INTEGER, "
                   "pid INTEGER NOT NULL, tid INTEGER NOT NULL, name TEXT, start BIGINT, \"end\" BIGINT, "
                   "extdata JSONB DEFAULT '{}' NOT NULL",
    "info_agent": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
                  "pid INTEGER NOT NULL, type TEXT CHECK (type IN ('CPU', 'GPU')), absolute_index INTEGER, "
                  "logical_index INTEGER, type_index INTEGER, uuid INTEGER, name TEXT, model_name TEXT, "
                  "vendor_name TEXT, product_name TEXT, user_name TEXT, extdata JSONB DEFAULT '{}' NOT NULL",
    "info_queue": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
                  "pid INTEGER NOT NULL, name TEXT, extdata JSONB DEFAULT '{}' NOT NULL",
    "info_stream": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
                   "pid INTEGER NOT NULL, name TEXT, extdata JSONB DEFAULT '{}' NOT NULL",
    "info_code_object": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
                        "pid INTEGER NOT NULL, agent_id INTEGER, uri TEXT, load_base BIGINT, load_size BIGINT, "
                        "load_delta BIGINT, storage_type TEXT, extdata JSONB DEFAULT '{}' NOT NULL",
    "info_kernel_symbol": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
                          "pid INTEGER NOT NULL, code_object_id INTEGER NOT NULL, kernel_name TEXT, "
                          "display_name TEXT, kernel_object INTEGER, kernarg_segment_size INTEGER, "
                          "kernarg_segment_alignment INTEGER, group_segment_size INTEGER, "
                          "private_segment_size INTEGER, sgpr_count INTEGER, arch_vgpr_count INTEGER, "
                          "accum_vgpr_count INTEGER, extdata JSONB DEFAULT '{}' NOT NULL",
    "track": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, pid INTEGER, "
             "tid INTEGER, name_id INTEGER, extdata JSONB DEFAULT '{}' NOT NULL",
    "event": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, category_id INTEGER, stack_id INTEGER, "
             "parent_stack_id INTEGER, correlation_id INTEGER, call_stack JSONB DEFAULT '{}' NOT NULL, "
             "line_info JSONB DEFAULT '{}' NOT NULL, extdata JSONB DEFAULT '{}' NOT NULL",
    "arg": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, event_id INTEGER NOT NULL, "
           "position INTEGER NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL, value TEXT, "
           "extdata JSONB DEFAULT '{}' NOT NULL",
    "region": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
              "pid INTEGER NOT NULL, tid INTEGER NOT NULL, start BIGINT NOT NULL, \"end\" BIGINT NOT NULL, "
              "name_id INTEGER NOT NULL, event_id INTEGER, extdata JSONB DEFAULT '{}' NOT NULL",
    "sample": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, track_id INTEGER NOT NULL, "
              "timestamp BIGINT NOT NULL, event_id INTEGER, extdata JSONB DEFAULT '{}' NOT NULL",
    "kernel_dispatch": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
                       "pid INTEGER NOT NULL, tid INTEGER, agent_id INTEGER NOT NULL, kernel_id INTEGER NOT NULL, "
                       "dispatch_id INTEGER NOT NULL, queue_id INTEGER NOT NULL, stream_id INTEGER NOT NULL, "
                       "start BIGINT NOT NULL, \"end\" BIGINT NOT NULL, private_segment_size INTEGER, "
                       "group_segment_size INTEGER, workgroup_size_x INTEGER NOT NULL, "
                       "workgroup_size_y INTEGER NOT NULL, workgroup_size_z INTEGER NOT NULL, "
                       "grid_size_x INTEGER NOT NULL, grid_size_y INTEGER NOT NULL, grid_size_z INTEGER NOT NULL, "
                       "region_name_id INTEGER, event_id INTEGER, extdata JSONB DEFAULT '{}' NOT NULL",
    "memory_copy": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
                   "pid INTEGER NOT NULL, tid INTEGER, start BIGINT NOT NULL, \"end\" BIGINT NOT NULL, "
                   "name_id INTEGER NOT NULL, dst_agent_id INTEGER, dst_address INTEGER, src_agent_id INTEGER, "
                   "src_address INTEGER, size INTEGER NOT NULL, queue_id INTEGER, stream_id INTEGER, "
                   "region_name_id INTEGER, event_id INTEGER, extdata JSONB DEFAULT '{}' NOT NULL",
    "memory_allocate": "id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT NOT NULL, nid INTEGER NOT NULL, "
                       "pid INTEGER NOT NULL, tid INTEGER, agent_id INTEGER, type TEXT, level TEXT, "
                       "start BIGINT NOT NULL, \"end\" BIGINT NOT NULL, address INTEGER, size INTEGER NOT NULL, "
                       "queue_id INTEGER, stream_id INTEGER, event_id INTEGER, extdata JSONB DEFAULT '{}' NOT NULL",
}


class _Rocpd:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.strings = conn, {}

    def insert(self, table: str, **values) -> int:
        if table != "metadata":
            values.setdefault("guid", GUID)
        names = ", ".join(f'"{k}"' for k in values)
        marks = ", ".join("?" for _ in values)
        cur = self.conn.execute(f"INSERT INTO rocpd_{table}{UUID} ({names}) VALUES ({marks})", list(values.values()))
        return cur.lastrowid

    def string(self, text: str) -> int:
        if text not in self.strings:
            self.strings[text] = self.insert("string", string=text)
        return self.strings[text]

    def event(self, category: str, call: Call, extdata: str = "{}") -> int:
        return self.insert("event", category_id=self.string(category), stack_id=call.corr, parent_stack_id=0,
                           correlation_id=0, extdata=extdata)


def write_rocpd(ranges: list[Call], hip: list[Call]) -> None:
    path = HERE / "4242_results.db"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    for table, columns in ROCPD_TABLES.items():
        conn.execute(f"CREATE TABLE rocpd_{table}{UUID} ({columns})")
        conn.execute(f"CREATE VIEW rocpd_{table} AS SELECT * FROM rocpd_{table}{UUID}")
    db, nid = _Rocpd(conn), 7
    for tag, value in (("schema_version", "3"), ("uuid", UUID), ("guid", GUID)):
        db.insert("metadata", tag=tag, value=value)
    db.string("")
    db.insert("info_node", id=nid, hash=7, machine_id="0123456789abcdef", hostname="mi300x-node")
    db.insert("info_process", id=PID, nid=nid, ppid=1, pid=PID, init=T0 - 1_000_000, fini=T0 + 1_000_000,
              start=T0 - 1_000_000, end=T0 + 1_000_000, command="/usr/bin/python3 serve.py")
    db.insert("info_thread", id=TID, nid=nid, ppid=1, pid=PID, tid=TID)
    for node, kind, product in ((CPU_NODE, "CPU", "AMD EPYC 9654 96-Core Processor"),
                                (GPU_NODE, "GPU", "AMD Instinct MI300X")):
        db.insert("info_agent", id=node, nid=nid, pid=PID, type=kind, absolute_index=node, logical_index=node,
                  type_index=0, name="gfx942" if kind == "GPU" else product, product_name=product,
                  user_name=product)
    db.insert("info_queue", id=QUEUE, nid=nid, pid=PID, name="Queue 0")
    db.insert("info_stream", id=STREAM, nid=nid, pid=PID, name="Default Stream")
    db.insert("info_code_object", id=1, nid=nid, pid=PID, agent_id=GPU_NODE, uri="file:///opt/libtorch_hip.so",
              storage_type="FILE")
    for name, kernel_id in KERNEL_IDS.items():
        sym = _symbol(name, kernel_id)
        db.insert("info_kernel_symbol", id=kernel_id, nid=nid, pid=PID, code_object_id=1,
                  kernel_name=sym["kernel_name"], display_name=name, sgpr_count=48, arch_vgpr_count=32,
                  extdata=json.dumps({"kernel_id": kernel_id, "formatted_kernel_name": name}))
    for call in ranges:
        event = db.event("MARKER_CORE_RANGE_API", call, json.dumps({"message": call.name}))
        db.insert("region", id=call.corr, nid=nid, pid=PID, tid=TID, start=call.start, end=call.end,
                  name_id=db.string("roctxThreadRangeA"), event_id=event)
    for call in hip:
        event = db.event("HIP_RUNTIME_API_EXT", call)
        db.insert("region", id=call.corr, nid=nid, pid=PID, tid=TID, start=call.start, end=call.end,
                  name_id=db.string(call.name), event_id=event)
    for dispatch, call, name, start, end in dispatches(hip):
        event = db.event("KERNEL_DISPATCH", call)
        db.insert("kernel_dispatch", id=dispatch, nid=nid, pid=PID, tid=TID, agent_id=GPU_NODE,
                  kernel_id=KERNEL_IDS[name], dispatch_id=dispatch, queue_id=QUEUE, stream_id=STREAM, start=start,
                  end=end, workgroup_size_x=256, workgroup_size_y=1, workgroup_size_z=1, grid_size_x=65536,
                  grid_size_y=1, grid_size_z=1, region_name_id=db.string(""), event_id=event)
    for call in (c for c in hip if c.copy):
        event = db.event("MEMORY_COPY", call)
        db.insert("memory_copy", nid=nid, pid=PID, tid=TID, start=call.copy[0], end=call.copy[1],
                  name_id=db.string("MEMORY_COPY_HOST_TO_DEVICE"), dst_agent_id=GPU_NODE, src_agent_id=CPU_NODE,
                  size=1 << 20, stream_id=STREAM, event_id=event)
    conn.commit()
    conn.close()


def _us(ns: int) -> float:
    return round(ns / 1000, 3)


def write_kineto(ranges: list[Call], hip: list[Call]) -> None:
    """The same run as torch.profiler on ROCm writes it: HIP calls under cuda_runtime, kernels on
    pid = device, tid = stream, ac2g flows from launch to kernel."""
    events: list[dict] = [
        {"ph": "M", "name": "process_name", "pid": PID, "tid": 0, "args": {"name": "python3"}},
        {"ph": "M", "name": "thread_name", "pid": PID, "tid": TID, "args": {"name": "thread 4242 (python3)"}},
        {"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "GPU 0"}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": STREAM, "args": {"name": f"stream {STREAM}"}}]
    for call in ranges:
        events.append({"ph": "X", "cat": "user_annotation", "name": call.name, "pid": PID, "tid": TID,
                       "ts": _us(call.start), "dur": _us(call.end - call.start), "args": {"External id": call.corr}})
    for call in hip:
        events.append({"ph": "X", "cat": "cuda_runtime", "name": call.name, "pid": PID, "tid": TID,
                       "ts": _us(call.start), "dur": _us(call.end - call.start),
                       "args": {"External id": call.corr, "correlation": call.corr}})
        work = [("kernel", name, start, end) for name, start, end in call.kernels or []]
        if call.copy:
            work.append(("gpu_memcpy", "Memcpy HtoD (Host -> Device)", *call.copy))
        for cat, name, start, end in work:
            events.append({"ph": "X", "cat": cat, "name": name, "pid": 0, "tid": STREAM, "ts": _us(start),
                           "dur": _us(end - start), "args": {"External id": call.corr, "device": 0,
                                                              "stream": STREAM, "correlation": call.corr}})
        if work:
            events.append({"ph": "s", "id": call.corr, "pid": PID, "tid": TID, "ts": _us(call.start),
                           "cat": "ac2g", "name": "ac2g"})
            events.append({"ph": "f", "id": call.corr, "pid": 0, "tid": STREAM, "ts": _us(work[0][2]),
                           "cat": "ac2g", "name": "ac2g", "bp": "e"})
    doc = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "AMD Instinct MI300X",
                                                      "totalGlobalMem": 205822885888, "computeMajor": 9,
                                                      "computeMinor": 4, "numSms": 304}],
           "traceEvents": events, "displayTimeUnit": "ms", "baseTimeNanoseconds": 1700000000000000000}
    (HERE / "kineto_rocm.json").write_text(json.dumps(doc, indent=1))


def main() -> None:
    ranges, hip = workload()
    write_csv(ranges, hip)
    write_sdk_json(ranges, hip)
    write_rocpd(ranges, hip)
    write_kineto(ranges, hip)


if __name__ == "__main__":
    main()
