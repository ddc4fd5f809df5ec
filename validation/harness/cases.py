"""Case list of the GPU measurement harness and the builders that turn a case into a callable.

The case list is plain Python (importable without torch) so that it can be checked on a
machine without a GPU; ``build(case)`` imports torch lazily.

Every case is a dict: ``id`` (unique, stable), ``family``, ``params`` (JSON-able), ``flops``
(nominal useful floating-point operations) and ``ideal_bytes`` (each input read once, each output
written once, at the dtype's width). ``ncu`` says whether the Nsight Compute pass profiles it.
"""
from __future__ import annotations

BF16 = 2  # bytes per element

PREFILL_BACKENDS = ("flash", "efficient", "cudnn", "math")
DECODE_BACKENDS = ("flash", "efficient", "cudnn", "math")


def _attn_flops(b, h, nq, nk, d, causal):
    """QK^T and PV, 2 FLOP per multiply-add; causal counts only the unmasked pairs."""
    if causal:
        # torch's is_causal is top-left aligned; the harness uses it only with nq == nk
        assert nq == nk, "causal cases must be square"
        pairs = nq * (nq + 1) // 2
    else:
        pairs = nq * nk
    return 4 * b * h * pairs * d


def attention_cases():
    out = []
    b, h = 4, 16
    for backend in PREFILL_BACKENDS:
        for d in (64, 128):
            for causal in (False, True):
                for n in (512, 1024, 2048, 4096, 8192):
                    if backend == "math" and n > 4096:
                        continue  # the math backend materialises B*H*N*N scores
                    out.append({
                        "id": f"attn_{backend}_b{b}h{h}n{n}d{d}{'_causal' if causal else ''}",
                        "family": "attention_prefill",
                        "params": {"backend": backend, "batch": b, "heads": h, "kv_heads": h,
                                   "seq_q": n, "seq_k": n, "head_dim": d, "causal": causal,
                                   "dtype": "bf16", "layout": "BHND contiguous"},
                        "flops": _attn_flops(b, h, n, n, d, causal),
                        "ideal_bytes": 4 * b * h * n * d * BF16,
                        "ncu": True,
                    })
    return out


def decode_cases():
    out = []
    h, d = 32, 128
    for backend in DECODE_BACKENDS:
        for b in (1, 8, 32):
            for nk in (1024, 4096, 16384, 32768):
                out.append({
                    "id": f"decode_{backend}_b{b}h{h}k{nk}d{d}",
                    "family": "attention_decode",
                    "params": {"backend": backend, "batch": b, "heads": h, "kv_heads": h,
                               "seq_q": 1, "seq_k": nk, "head_dim": d, "causal": False,
                               "dtype": "bf16", "layout": "BHND contiguous"},
                    "flops": _attn_flops(b, h, 1, nk, d, False),
                    "ideal_bytes": (2 * b * h * d + 2 * b * h * nk * d) * BF16,
                    "ncu": True,
                })
    return out


def gemm_cases():
    shapes = [(s, s, s) for s in (1024, 2048, 4096, 8192, 16384)]
    shapes += [(4096, 4096, 16384), (4096, 16384, 4096), (16384, 4096, 4096)]
    for m in (1, 8, 16, 64, 256, 1024):
        for n, k in ((4096, 4096), (8192, 8192), (16384, 4096), (4096, 16384)):
            shapes.append((m, n, k))
    out = []
    for m, n, k in shapes:
        out.append({
            "id": f"gemm_m{m}n{n}k{k}",
            "family": "gemm",
            "params": {"m": m, "n": n, "k": k, "dtype": "bf16",
                       "layout": "C[m,n] = A[m,k] @ B[k,n], all row-major (torch.matmul)"},
            "flops": 2 * m * n * k,
            "ideal_bytes": (m * k + k * n + m * n) * BF16,
            "ncu": True,
        })
    return out


def copy_cases():
    out = []
    for p in range(0, 11):  # 1 MiB .. 1 GiB
        nbytes = (1 << 20) << p
        out.append({
            "id": f"d2d_{nbytes}",
            "family": "copy_d2d",
            "params": {"bytes": nbytes, "op": "dst.copy_(src), uint8, device to device"},
            "flops": 0,
            "ideal_bytes": 2 * nbytes,
            "ncu": True,
        })
    return out


def copy_kernel_cases():
    """Device copy through an elementwise kernel, which Nsight Compute can profile.

    `dst.copy_(src)` of a contiguous tensor is a cudaMemcpy, which ncu does not profile; the
    elementwise negation moves the same bytes (read n, write n) through SMs and L2.
    """
    out = []
    for p in range(0, 11):  # 1 MiB .. 1 GiB
        nbytes = (1 << 20) << p
        out.append({
            "id": f"d2dk_{nbytes}",
            "family": "copy_d2d_kernel",
            "params": {"bytes": nbytes, "op": "torch.neg(src, out=dst), bf16, elementwise kernel"},
            "flops": 0,
            "ideal_bytes": 2 * nbytes,
            "ncu": True,
        })
    return out


def pcie_cases():
    out = []
    for direction in ("h2d", "d2h"):
        for p in range(0, 10):  # 4 KiB .. 1 GiB in powers of 4
            nbytes = 4096 << (2 * p)
            out.append({
                "id": f"{direction}_{nbytes}",
                "family": f"copy_{direction}",
                "params": {"bytes": nbytes, "pinned": True,
                           "op": "copy_(non_blocking=True) between pinned host and device"},
                "flops": 0,
                "ideal_bytes": nbytes,
                "ncu": False,
            })
    return out


def all_cases():
    """The GPU cases in the order they are timed and profiled."""
    cases = attention_cases() + decode_cases() + gemm_cases() + copy_cases() + pcie_cases()
    cases += copy_kernel_cases()  # added for the follow-up run (after the main run)
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return cases


# ----------------------------------------------------------------------------------------------
# builders (need torch)

_BACKEND_ENUM = {"flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION",
                 "cudnn": "CUDNN_ATTENTION", "math": "MATH"}


def build(case, seed=0, device="cuda"):
    """Return a zero-argument callable that runs the case once on the GPU (asynchronously).

    ``device="cpu"`` exists only for smoke tests of the builders on a machine without a GPU.
    """
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    g = torch.Generator(device=device).manual_seed(seed)
    p = case["params"]
    fam = case["family"]
    if fam.startswith("attention"):
        b, h, nq, nk, d = p["batch"], p["heads"], p["seq_q"], p["seq_k"], p["head_dim"]
        q = torch.randn(b, h, nq, d, device=device, dtype=torch.bfloat16, generator=g)
        k = torch.randn(b, h, nk, d, device=device, dtype=torch.bfloat16, generator=g)
        v = torch.randn(b, h, nk, d, device=device, dtype=torch.bfloat16, generator=g)
        backend = getattr(SDPBackend, _BACKEND_ENUM[p["backend"]])
        causal = p["causal"]

        def fn():
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return fn
    if fam == "gemm":
        a = torch.randn(p["m"], p["k"], device=device, dtype=torch.bfloat16, generator=g)
        bm = torch.randn(p["k"], p["n"], device=device, dtype=torch.bfloat16, generator=g)
        return lambda: torch.matmul(a, bm)
    if fam == "copy_d2d":
        src = torch.randint(0, 255, (p["bytes"],), device=device, dtype=torch.uint8, generator=g)
        dst = torch.empty_like(src)
        return lambda: dst.copy_(src)
    if fam == "copy_d2d_kernel":
        src = torch.randn(p["bytes"] // BF16, device=device, dtype=torch.bfloat16, generator=g)
        dst = torch.empty_like(src)
        return lambda: torch.neg(src, out=dst)
    if fam in ("copy_h2d", "copy_d2h"):
        n = p["bytes"]
        host = torch.empty(n, dtype=torch.uint8, pin_memory=(device == "cuda"))
        host.random_(0, 255)
        dev = torch.empty(n, dtype=torch.uint8, device=device)
        if fam == "copy_h2d":
            return lambda: dev.copy_(host, non_blocking=True)
        dev.random_(0, 255)
        return lambda: host.copy_(dev, non_blocking=True)
    raise ValueError(f"unknown family {fam!r}")
