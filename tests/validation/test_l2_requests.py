"""L2 read bytes: what the SMs request vs what L2 looks up (l2_requests.json, l2_merge.json).

H100's L2 Request Coalescer merges concurrent reads of one sector by several SMs into one L2
lookup. The validation compares memsim's ``l2.read_bytes`` (what each thread block loads) with
the bytes requested (lookups + coalesced reads), and reports the lookups alone beside them.
These tests hold the committed measurements to their internal consistency and to the
mechanism the synthetic probe isolated.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest

from memsim.errors import InputError
from memsim.validation.compare import compare_cases
from memsim.validation.data import DATA_DIR, load_gpu_cases

H100 = DATA_DIR / "h100"


@pytest.fixture(scope="module")
def ds():
    return load_gpu_cases("h100")


@pytest.fixture(scope="module")
def merge():
    with open(H100 / "l2_merge.json") as f:
        return json.load(f)


def _cluster(kernel: str) -> int:
    """CTAs per cluster from an nvjet name field ``_{cM}x{cN}_{h|v}_`` (1 otherwise)."""
    m = re.search(r"_(\d)x(\d)_[hv]_", kernel)
    return int(m.group(1)) * int(m.group(2)) if m else 1


def test_every_attention_and_gemm_case_has_requests(ds):
    fams = ("attention_prefill", "attention_decode", "gemm")
    cases = [c for c in ds.cases if c.family in fams and c.kernels]
    assert len(cases) == 156
    assert all(c.l2_requests is not None for c in cases)


def test_requests_equal_what_l2_delivered_less_the_multicast_copies(ds):
    """Two independent counter paths agree on every kernel: L2 lookups + coalesced sectors
    (L2 side) = sectors delivered into the SMs, counting a TMA multicast once (SM side)."""
    n = 0
    for c in ds.cases:
        for r in c.l2_requests or ():
            if not r.delivered_bytes:
                continue
            cl = _cluster(r.kernel)
            issued = r.delivered_bytes - r.multicast_delivered_bytes * (1 - 1 / cl)
            assert r.requested_bytes == pytest.approx(issued, rel=0.006), (c.id, r.kernel)
            n += 1
    assert n > 500


def test_coalescing_only_removes_lookups(ds):
    for c in ds.cases:
        if c.l2_requests is None:
            continue
        assert all(r.coalesced_bytes >= 0 for r in c.l2_requests)
        # the main run's lookups (another call) never exceed the requests by more than noise
        assert c.l2_read_bytes <= 1.01 * c.l2_requested_bytes, c.id


def test_kernels_without_shared_reads_coalesce_nothing(ds):
    # decode: every thread block streams its own K/V; device copies are not re-profiled
    for c in ds.family("attention_decode"):
        if c.params["backend"] in ("flash", "efficient"):
            assert c.l2_requested_bytes == pytest.approx(c.l2_read_bytes, rel=0.005), c.id


def test_validation_compares_requests_and_reports_lookups(ds):
    res = {r.case_id: r for r in compare_cases(ds, ids=["attn_flash_b4h16n512d128",
                                                         "attn_flash_b4h16n512d128_causal",
                                                         "d2dk_1048576"])}
    r = res["attn_flash_b4h16n512d128"]
    c = ds.case(r.case_id)
    assert r.l2_meas == c.l2_requested_bytes and r.l2_lookup_meas == c.l2_read_bytes
    # four query tiles of a head read its K/V in lockstep: about half the loads coalesce
    assert r.l2_err == pytest.approx(0, abs=0.001) and r.l2_lookup_err > 0.5
    causal = res["attn_flash_b4h16n512d128_causal"]    # tiles walk K/V from different blocks
    assert abs(causal.l2_err) < 0.001 and abs(causal.l2_lookup_err) < 0.001
    copy = res["d2dk_1048576"]                          # no coalescer record: the lookups
    assert copy.l2_meas == copy.l2_lookup_meas == ds.case("d2dk_1048576").l2_read_bytes


def test_a_request_record_naming_other_kernels_is_refused(tmp_path):
    shutil.copy(H100 / "gpu_cases.json", tmp_path / "gpu_cases.json")
    doc = json.loads((H100 / "l2_requests.json").read_text())
    doc["cases"]["attn_flash_b4h16n512d64"][0]["kernel"] = "some_other_kernel"
    (tmp_path / "l2_requests.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="attn_flash_b4h16n512d64.*re-profiled as"):
        load_gpu_cases(str(tmp_path))


# -- the synthetic probe (validation/harness/l2_merge.py) ---------------------------------------
def _read(merge, k, load, mode, waves=1):
    [x] = [r for r in merge["reads"] if r["id"] == f"read_k{k}_w{waves}_{load}_{mode}"]
    return x


def test_consecutive_thread_blocks_run_on_different_sms(merge):
    """So the merging below is not an L1 effect: consecutive blocks never share an SM."""
    for p in merge["placement"].values():
        s = p["smid"]
        assert len(set(s)) == merge["provenance"]["sms"]
        assert all(a != b for a, b in zip(s, s[1:]))


@pytest.mark.parametrize("load", ["cp.async.cg", "ld.global.cg", "ld.global"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_distinct_reads_are_looked_up_once_each(merge, load, k):
    x = _read(merge, k, load, "distinct")
    assert x["lookup_bytes"] == pytest.approx(x["loaded_bytes"], rel=1e-3)


@pytest.mark.parametrize("k", [2, 4])
def test_lockstep_blocks_reading_the_same_data_cost_one_lookup(merge, k):
    """k consecutive blocks (on k different SMs, started together) read the same 128 KiB
    through cp.async.cg, FA2's and cutlass's load: L2 looks each sector up once."""
    x = _read(merge, k, "cp.async.cg", "consecutive")
    assert x["distinct_bytes"] == x["loaded_bytes"] / k
    assert x["lookup_bytes"] == pytest.approx(x["distinct_bytes"], rel=0.05)
    # every block still received its bytes
    assert x["delivered_bytes"] == x["loaded_bytes"]
    # blocks half a grid apart, or in later waves, drift apart in time and merge less
    far = _read(merge, k, "cp.async.cg", "half_grid_apart")
    later = _read(merge, k, "cp.async.cg", "consecutive", waves=4)
    assert far["lookup_bytes"] > 1.3 * far["distinct_bytes"]
    assert later["lookup_bytes"] > 1.3 * later["distinct_bytes"]


def test_attention_kernels_under_the_probe(merge):
    by = {a["id"]: a for a in merge["attention"]}
    plain, causal = by["attn_flash_b4h16n512d128"], by["attn_flash_b4h16n512d128_causal"]
    assert plain["lookup_bytes"] < 0.6 * plain["delivered_bytes"]
    assert causal["lookup_bytes"] == pytest.approx(causal["delivered_bytes"], rel=1e-3)


# -- SM bottleneck counters (validation/harness/bottleneck.sh) -----------------------------------
def test_bottleneck_record_backs_the_documented_time_misses():
    """docs/validation.md explains the cutlass and cuDNN time misses with these counters."""
    with open(H100 / "kernel_bottlenecks.json") as f:
        doc = json.load(f)
    k = {cid: max(ks, key=lambda x: x["time_ns"]) for cid, ks in doc["cases"].items()}
    for d in (64, 128):
        fa2, cut = k[f"attn_flash_b4h16n4096d{d}"], k[f"attn_efficient_b4h16n4096d{d}"]
        assert cut["warp_instructions"] > 2.4 * fa2["warp_instructions"]
        assert cut["smem_bank_conflicts"] > 50 * fa2["smem_bank_conflicts"]
        assert cut["tensor_pipe_pct"] < fa2["tensor_pipe_pct"]
    assert k["attn_cudnn_b4h16n4096d128"]["tensor_pipe_pct"] > 70
    assert k["attn_cudnn_b4h16n4096d64"]["tensor_pipe_pct"] < 55
