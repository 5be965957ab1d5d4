"""The demo decoder: DeepSeek-V3.2's layer layout at toy sizes, with the three changes of the
motivating vLLM fix switchable by ``variant``.

Every op below is chosen so its GPU launches are known: tensors stay bf16 unless a cast is the
point, norms avoid helpers that upcast internally (``F.rms_norm``'s fallback casts to fp32),
same-dtype copies target strided views so they run the copy *kernel* (a contiguous same-dtype
copy_ would be a cudaMemcpy instead). ``traceview.collectors.demo_decode`` states the resulting counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NUM_LAYERS = 61
NUM_DENSE = 3  # layers 0-2 have a dense MLP, as in DeepSeek-V3/V3.2
NUM_MOE = NUM_LAYERS - NUM_DENSE  # 58: one router-logit cast each in "before"
NUM_META_BUFFERS = 54  # sparse-MLA metadata buffers: one full fill_ each per step in "before"
META_ROWS = 64  # rows per metadata buffer (>= batch): the fill covers all of them
META_COLS = 16
HIDDEN = 64
FFN = 128
EXPERTS = 16
TOP_K = 4
KV_LEN = 128  # keys per layer the attention-like op reads
START_SEQ_LEN = 64  # host-side sequence length before the first step
META_BUCKET = 256  # "after" recomputes metadata when seq_len // META_BUCKET (or batch) changes
BLOCK_KV = 64


@dataclass(frozen=True)
class DemoConfig:
    """Which demo to run. ``device="cuda"`` also means ROCm (torch.cuda runs on HIP there)."""

    variant: str = "before"  # before | after
    mode: str = "eager"  # eager | graph (CUDA graph of the 61-layer forward; needs a GPU)
    device: str = "cuda"  # cuda | cpu
    batch: int = 32  # decode requests per step
    seed: int = 0

    def validate(self) -> None:
        from traceview.collectors.errors import CollectError

        if self.variant not in ("before", "after"):
            raise CollectError(None, f"unknown variant {self.variant!r}; use before or after")
        if self.mode not in ("eager", "graph"):
            raise CollectError(None, f"unknown mode {self.mode!r}; use eager or graph")
        if self.device not in ("cuda", "cpu"):
            raise CollectError(None, f"unknown device {self.device!r}; use cuda or cpu")
        if self.mode == "graph" and self.device != "cuda":
            raise CollectError(None, "graph mode needs --device cuda (CUDA graphs)")
        if not 1 <= self.batch <= META_ROWS:
            raise CollectError(None, f"batch must be 1..{META_ROWS}")


def _triton_metadata() -> Any:
    """The Triton launcher, or None when Triton cannot be imported."""
    try:
        from traceview.collectors._mla_metadata_triton import get_mla_metadata_v1
    except ImportError:
        return None
    return get_mla_metadata_v1


class DemoDecoder:
    """Weights, persistent buffers and one decode ``step()``; see module docstring."""

    def __init__(self, cfg: DemoConfig) -> None:
        import torch

        cfg.validate()
        self.cfg = cfg
        self.torch = torch
        dev = torch.device(cfg.device)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed)

        def w(*shape: int, scale: float = 0.1) -> Any:
            return (torch.randn(*shape, generator=gen) * scale).to(device=dev, dtype=torch.bfloat16)

        b = cfg.batch
        self.tokens = w(b, HIDDEN, scale=1.0)
        self.w_embed = w(HIDDEN, HIDDEN)
        self.wq = [w(HIDDEN, HIDDEN) for _ in range(NUM_LAYERS)]
        self.wkv = [w(HIDDEN, HIDDEN) for _ in range(NUM_LAYERS)]
        self.kv_cache = [w(KV_LEN, HIDDEN, scale=1.0) for _ in range(NUM_LAYERS)]
        self.w1 = [w(HIDDEN, FFN) for _ in range(NUM_LAYERS)]
        self.w2 = [w(FFN, HIDDEN) for _ in range(NUM_LAYERS)]
        self.wg = [w(HIDDEN, EXPERTS) if layer >= NUM_DENSE else None for layer in range(NUM_LAYERS)]
        # Latent KV staging: [layer, batch, 2*HIDDEN]; writing [:, :HIDDEN] is a strided bf16 copy.
        self.kv_stage = torch.zeros(NUM_LAYERS, b, 2 * HIDDEN, device=dev, dtype=torch.bfloat16)
        self.seq_lens = torch.full((b,), START_SEQ_LEN, device=dev, dtype=torch.int64)
        self.positions = self.seq_lens - 1
        self.meta_buffers = [torch.full((META_ROWS, META_COLS), -1, device=dev, dtype=torch.int32)
                             for _ in range(NUM_META_BUFFERS)]
        self.num_splits = torch.zeros(META_ROWS, device=dev, dtype=torch.int32)
        self.host_seq_len = START_SEQ_LEN
        self._meta_key: tuple[int, int] | None = None
        self._live_rows = 0
        self._triton = _triton_metadata() if cfg.device == "cuda" else None
        self.graph: Any = None
        self.graph_out: Any = None
        self.metadata_launches = 0  # host-side count, for tests and the README's numbers

    # ---- eager prefix: runs outside the CUDA graph in both modes, as vLLM's metadata build does

    def _reset_metadata_buffers(self, rows: int) -> None:
        if self.cfg.variant == "before":
            for buf in self.meta_buffers:  # full-buffer fill: NUM_META_BUFFERS launches, every step
                buf.fill_(-1)
        elif rows < self._live_rows:  # "after": clear only the rows that fell out of use
            for buf in self.meta_buffers:
                buf[rows:self._live_rows].fill_(-1)
        self._live_rows = rows

    def _mla_metadata(self, seq_lens32: Any) -> None:
        key = (self.cfg.batch, self.host_seq_len // META_BUCKET)
        if self.cfg.variant == "after" and key == self._meta_key:
            return  # cached: steady-state decode launches nothing here
        self._meta_key = key
        self.metadata_launches += 1
        out = self.num_splits[: self.cfg.batch]
        if self._triton is not None:
            self._triton(seq_lens32, out, META_BUCKET, BLOCK_KV)
            return
        torch = self.torch
        with torch.profiler.record_function("get_mla_metadata_v1"):  # CPU / no-Triton stand-in
            padded = torch.div(seq_lens32.clamp(min=1) + (META_BUCKET - 1), META_BUCKET,
                               rounding_mode="floor") * META_BUCKET
            out.copy_(torch.div(padded + (BLOCK_KV - 1), BLOCK_KV, rounding_mode="floor"))

    def prefix(self) -> None:
        """Per-step bookkeeping before the forward: positions, metadata buffers, metadata kernel."""
        torch = self.torch
        self.seq_lens.add_(1)
        self.positions.add_(1)
        self.host_seq_len += 1
        self.positions32 = self.positions.to(torch.int32)  # int64->int32 cast (the trap, 1 of 2)
        seq_lens32 = self.seq_lens.to(torch.int32)  # int64->int32 cast (2 of 2)
        self._reset_metadata_buffers(self.cfg.batch)
        self._mla_metadata(seq_lens32)

    # ---- the 61-layer forward: captured into a CUDA graph in graph mode

    def _layer(self, layer: int, x: Any) -> None:
        torch = self.torch
        # RMSNorm-like: x / ||x|| (the sqrt(hidden) scale is folded into the weights).
        h = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        # Attention-like (MLA-ish latent KV): q, kv projections, staging write, softmax(qK^T)K.
        q = torch.mm(h, self.wq[layer])
        kv = torch.mm(h, self.wkv[layer])
        self.kv_stage[layer, :, :HIDDEN].copy_(kv)  # bf16->bf16 copy_ kernel (the trap)
        scores = torch.mm(q, self.kv_cache[layer].t())
        x.add_(torch.mm(torch.softmax(scores, dim=-1), self.kv_cache[layer]))
        if layer < NUM_DENSE:
            x.add_(torch.mm(torch.nn.functional.silu(torch.mm(h, self.w1[layer])), self.w2[layer]))
            return
        logits = torch.mm(h, self.wg[layer])  # router gate logits, bf16
        if self.cfg.variant == "before":
            logits = logits.float()  # the removed bf16->fp32 cast: 1 per MoE layer
        weights = torch.softmax(torch.topk(logits, TOP_K, dim=-1).values, dim=-1)
        expert = torch.mm(torch.nn.functional.silu(torch.mm(h, self.w1[layer])), self.w2[layer])
        x.addcmul_(expert, weights[:, :1])  # mixed dtypes in "before" are cast inside this kernel

    def forward(self) -> Any:
        x = self.torch.mm(self.tokens, self.w_embed)
        for layer in range(NUM_LAYERS):
            self._layer(layer, x)
        return x

    # ---- steps

    def capture(self) -> None:
        """Captures ``forward`` into a CUDA graph (after a side-stream warm-up, as PyTorch requires)."""
        torch = self.torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.forward()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.graph_out = self.forward()
        torch.cuda.synchronize()

    def step(self) -> None:
        """One decode step: the eager prefix, then the forward (eager, or one graph replay)."""
        self.prefix()
        if self.graph is not None:
            self.graph.replay()
        else:
            self.forward()
