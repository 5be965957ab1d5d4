"""Builds small Kineto traces event by event, the way torch.profiler writes them.

Times are in microseconds (Kineto's unit). Each ``launch`` adds a CPU launch
call and the GPU event it caused, both carrying the same correlation id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HOST_PID, HOST_TID, GPU_PID, STREAM = 100, 100, 0, 7


@dataclass
class KinetoTrace:
    events: list[dict] = field(default_factory=list)
    correlation: int = 1000
    gpu_clock: float = 0.0

    def annotation(self, name: str, ts: float, dur: float, cat: str = "user_annotation",
                   tid: int = HOST_TID) -> None:
        self.events.append({"ph": "X", "cat": cat, "name": name, "pid": HOST_PID, "tid": tid, "ts": ts, "dur": dur,
                            "args": {"External id": len(self.events)}})

    def op(self, name: str, ts: float, dur: float, input_types: list[str] | None = None) -> None:
        args = {"External id": len(self.events)}
        if input_types is not None:
            args["Input type"] = input_types
        self.events.append({"ph": "X", "cat": "cpu_op", "name": name, "pid": HOST_PID, "tid": HOST_TID, "ts": ts,
                            "dur": dur, "args": args})

    def launch(self, ts: float, kernels: list[str], api: str = "cudaLaunchKernel", cat: str = "cuda_runtime",
               gpu_cat: str = "kernel", with_launch: bool = True, correlation: bool = True,
               tid: int = HOST_TID) -> int:
        """A launch call at ``ts`` (1 us long) and its GPU events; returns the correlation id."""
        self.correlation += 1
        corr = self.correlation
        if with_launch:
            args = {"External id": corr, "cbid": 211}
            if correlation:
                args["correlation"] = corr
            self.events.append({"ph": "X", "cat": cat, "name": api, "pid": HOST_PID, "tid": tid, "ts": ts,
                                "dur": 1, "args": args})
        for name in kernels:
            self.gpu_clock = max(self.gpu_clock, ts + 5)
            args = {"device": 0, "stream": STREAM}
            if correlation:
                args["correlation"] = corr
            self.events.append({"ph": "X", "cat": gpu_cat, "name": name, "pid": GPU_PID, "tid": STREAM,
                                "ts": self.gpu_clock, "dur": 2, "args": args})
            self.gpu_clock += 3
        return corr
