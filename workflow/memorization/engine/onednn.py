"""Batched float32 matrix products on a CPU by oneDNN's kernels, called through oneDNN's C API.

Why not torch's own products: on a CPU torch sends them to MKL, and MKL runs a generic AVX2 path on AMD
processors. On this project's machines (AMD EPYC, two cores with AVX-512) a 2048² float32 product ran at
180–190 GFLOP/s in MKL and at 420–440 GFLOP/s in oneDNN's AVX-512 kernels, and the engine's batched products
with a weight per seed 1.8–2.3x faster (docs/performance.md; `make bench` measures both). torch bundles
oneDNN, but keeps its symbols private and exposes no batched product with a weight per batch element (its
`_linear_pointwise` takes one weight; grouped convolutions reorder the weights at every call), so this module
loads the library of the `onednn-cpu-gomp` wheel. That build runs on GNU OpenMP, the runtime torch uses: one
thread pool, sized by torch.set_num_threads.

The products are float32 throughout (no reduced-precision math mode is set), and the same to the bit run
after run, whatever the thread count and however the seeds are grouped (tests/test_products.py).
`MEMORIZATION_MATMUL=torch` in the environment turns this module off (every product then runs in torch).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections import OrderedDict
from contextlib import contextmanager
from importlib import metadata

import torch

LIBRARY = "libdnnl.so.3"
DISTRIBUTION = "onednn-cpu-gomp"

# oneDNN's C API constants (oneapi/dnnl/dnnl_types.h, oneDNN 3.x)
_CPU_ENGINE, _IN_ORDER_STREAM, _F32 = 1, 1, 3
_ARG_SRC, _ARG_WEIGHTS, _ARG_DST = 1, 33, 17
_ARG_FIRST_POST_OP_SRC_1 = 32768 * 1 | 2  # DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1
_ELTWISE_RELU, _ELTWISE_LINEAR, _BINARY_ADD = 0x20, 0x26, 0x1FFF0
_QUERY_IMPL_INFO_STR = 8
_Dims = ctypes.c_int64 * 12  # dnnl_dims_t
_CACHE_SIZE = 256  # primitives kept per process: a run uses a few dozen shapes


class _Arg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", ctypes.c_void_p)]


def library_path() -> str | None:
    """Where the oneDNN library of the onednn-cpu-gomp wheel lies, or None where that wheel is not installed
    (it is a dependency on x86-64 Linux only)."""
    try:
        files = metadata.distribution(DISTRIBUTION).files or ()
    except metadata.PackageNotFoundError:
        return None
    found = [f for f in files if f.name == LIBRARY]
    return str(found[0].locate()) if found else None


class _OneDNN:
    """The library, a CPU engine and stream, and the primitives made so far, keyed by the operands' shapes,
    strides and the post-operations (a primitive is made once per shape: making one takes 0.1–1 ms)."""

    def __init__(self, path: str):
        lib = self.lib = ctypes.CDLL(path)
        vp = ctypes.c_void_p
        lib.dnnl_memory_set_data_handle.argtypes = [vp, vp]
        lib.dnnl_primitive_execute.argtypes = [vp, vp, ctypes.c_int, vp]
        lib.dnnl_post_ops_append_eltwise.argtypes = [vp, ctypes.c_int, ctypes.c_float, ctypes.c_float]
        lib.dnnl_post_ops_append_sum.argtypes = [vp, ctypes.c_float, ctypes.c_int32, ctypes.c_int]
        lib.dnnl_post_ops_append_binary.argtypes = [vp, ctypes.c_int, vp]
        lib.dnnl_memory_desc_create_with_strides.argtypes = [
            ctypes.POINTER(vp), ctypes.c_int, _Dims, ctypes.c_int, _Dims
        ]  # fmt: skip
        self.engine, self.stream = vp(), vp()
        self.check(lib.dnnl_engine_create(ctypes.byref(self.engine), _CPU_ENGINE, 0), "dnnl_engine_create")
        stream = lib.dnnl_stream_create(ctypes.byref(self.stream), self.engine, _IN_ORDER_STREAM)
        self.check(stream, "dnnl_stream_create")
        self.primitives: OrderedDict = OrderedDict()

    @staticmethod
    def check(status: int, call: str) -> None:
        if status != 0:
            raise RuntimeError(
                f"oneDNN's {call} failed (dnnl_status_t {status}); set MEMORIZATION_MATMUL=torch to run without it"
            )

    def descriptor(self, shape, strides):
        desc = ctypes.c_void_p()
        call = self.lib.dnnl_memory_desc_create_with_strides
        self.check(call(ctypes.byref(desc), len(shape), _Dims(*shape), _F32, _Dims(*strides)), "memory descriptor")
        return desc

    def primitive(self, operands: list[tuple], alpha: float, beta: float, relu: bool):
        """(primitive, its memory objects, its argument list), or None where oneDNN would run its reference
        kernel (operands it has no fast kernel for: then torch's product is the faster)."""
        key = (*operands, alpha, beta, relu)
        if key in self.primitives:
            self.primitives.move_to_end(key)
            return self.primitives[key]
        lib, vp = self.lib, ctypes.c_void_p
        descs = [self.descriptor(*o) if o is not None else None for o in operands]  # src, weights, dst, bias
        attr, post_ops, pd, prim = vp(), vp(), vp(), vp()
        self.check(lib.dnnl_primitive_attr_create(ctypes.byref(attr)), "dnnl_primitive_attr_create")
        self.check(lib.dnnl_post_ops_create(ctypes.byref(post_ops)), "dnnl_post_ops_create")
        if alpha != 1.0:  # dst = alpha·(a·b) ...
            self.check(lib.dnnl_post_ops_append_eltwise(post_ops, _ELTWISE_LINEAR, alpha, 0.0), "eltwise post-op")
        if beta != 0.0:  # ... + beta·dst ...
            self.check(lib.dnnl_post_ops_append_sum(post_ops, beta, 0, 0), "sum post-op")
        if descs[3] is not None:  # ... + bias, broadcast over the rows ...
            self.check(lib.dnnl_post_ops_append_binary(post_ops, _BINARY_ADD, descs[3]), "binary post-op")
        if relu:  # ... and through a ReLU
            self.check(lib.dnnl_post_ops_append_eltwise(post_ops, _ELTWISE_RELU, 0.0, 0.0), "eltwise post-op")
        self.check(lib.dnnl_primitive_attr_set_post_ops(attr, post_ops), "dnnl_primitive_attr_set_post_ops")
        create = lib.dnnl_matmul_primitive_desc_create
        self.check(create(ctypes.byref(pd), self.engine, descs[0], descs[1], None, descs[2], attr), "matmul descriptor")
        impl = ctypes.c_char_p()
        lib.dnnl_primitive_desc_query(pd, _QUERY_IMPL_INFO_STR, 0, ctypes.byref(impl))
        entry = None
        if not (impl.value or b"ref").startswith(b"ref"):
            self.check(lib.dnnl_primitive_create(ctypes.byref(prim), pd), "dnnl_primitive_create")
            memories = []
            for desc in descs:
                if desc is not None:
                    memory = vp()
                    self.check(lib.dnnl_memory_create(ctypes.byref(memory), desc, self.engine, None), "memory")
                    memories.append(memory)
            kinds = (_ARG_SRC, _ARG_WEIGHTS, _ARG_DST, _ARG_FIRST_POST_OP_SRC_1)
            args = (_Arg * len(memories))(*(_Arg(k, m) for k, m in zip(kinds, memories)))
            entry = (prim, memories, args)
        lib.dnnl_primitive_desc_destroy(pd)  # the primitive and memory objects keep what they need
        lib.dnnl_post_ops_destroy(post_ops)
        lib.dnnl_primitive_attr_destroy(attr)
        for desc in descs:
            if desc is not None:
                lib.dnnl_memory_desc_destroy(desc)
        self.primitives[key] = entry
        if len(self.primitives) > _CACHE_SIZE:
            self.release(self.primitives.popitem(last=False)[1])
        return entry

    def release(self, entry) -> None:
        if entry is not None:
            prim, memories, _ = entry
            self.lib.dnnl_primitive_destroy(prim)
            for memory in memories:
                self.lib.dnnl_memory_destroy(memory)

    def run(self, entry, tensors) -> None:
        prim, memories, args = entry
        for memory, t in zip(memories, tensors):
            self.lib.dnnl_memory_set_data_handle(memory, t.data_ptr())
        self.check(self.lib.dnnl_primitive_execute(prim, self.stream, len(memories), args), "dnnl_primitive_execute")


_state: dict[int, _OneDNN | None] = {}  # per process: a forked child makes its own engine
_off = False


@contextmanager
def turned_off():
    """Every product in torch within the block: benchmarks and tests hold both kernels against each other
    in one process."""
    global _off
    before, _off = _off, True
    try:
        yield
    finally:
        _off = before


def _onednn() -> _OneDNN | None:
    if _off:
        return None
    pid = os.getpid()
    if pid not in _state:
        path = None if os.environ.get("MEMORIZATION_MATMUL", "").lower() == "torch" else library_path()
        _state.clear()
        try:
            _state[pid] = _OneDNN(path) if path else None
        except (OSError, RuntimeError) as err:  # a library that does not load never stops a run
            print(f"warning: oneDNN ({path}) is not usable here ({err}); every product runs in torch", file=sys.stderr)
            _state[pid] = None
    return _state[pid]


def available() -> bool:
    """Whether products can run in oneDNN in this process (the wheel installed, not turned off)."""
    return _onednn() is not None


def usable(*tensors: torch.Tensor) -> bool:
    """Whether oneDNN can compute a product of these tensors: plain float32 CPU tensors that no gradient flows
    through (autograd and torch.func, the CNN's training and the replay's curvature, need torch's products)."""
    if _onednn() is None:
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if (
            t.device.type != "cpu"
            or t.dtype != torch.float32
            or (grad and t.requires_grad)
            or torch._C._functorch.is_functorch_wrapped_tensor(t)
            or t.numel() == 0
        ):
            return False
    return True


def _operand(t: torch.Tensor) -> tuple[tuple, tuple]:
    """(shape, strides) as oneDNN reads them: a batch axis expanded over the seeds (stride 0) is one batch,
    which oneDNN broadcasts itself."""
    shape, strides = list(t.shape), list(t.stride())
    if shape[0] > 1 and strides[0] == 0:
        shape[0] = 1
    return tuple(shape), tuple(strides)


def matmul(
    a: torch.Tensor,
    b: torch.Tensor,
    out: torch.Tensor | None = None,
    *,
    bias: torch.Tensor | None = None,
    alpha: float = 1.0,
    beta: float = 0.0,
    relu: bool = False,
) -> torch.Tensor | None:
    """out ← alpha·(a·b) + beta·out + bias, batched, and through a ReLU if `relu`: a (S or 1, M, K), b (S or 1,
    K, N), bias (S, N) added to every row; out (S, M, N), made when not given (then beta must be 0). Any
    strides (a transposed view is read in place). Returns out, or None where oneDNN has no fast kernel for
    these operands (the caller uses torch's product). The caller has checked `usable`."""
    if out is None:
        out = torch.empty((max(a.shape[0], b.shape[0]), a.shape[1], b.shape[2]), dtype=a.dtype, device=a.device)
    operands = [_operand(a), _operand(b), (tuple(out.shape), tuple(out.stride()))]
    tensors = [a, b, out]
    if bias is not None:
        bias = bias.unsqueeze(1)
        operands.append((tuple(bias.shape), tuple(bias.stride())))
        tensors.append(bias)
    else:
        operands.append(None)
    dnnl = _onednn()
    alpha, beta, relu = float(alpha), float(beta), bool(relu)
    entry = dnnl.primitive(operands, alpha, beta, relu)
    if entry is None:
        return None
    dnnl.run(entry, tensors)
    return out
