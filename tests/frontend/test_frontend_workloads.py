"""Workload value objects and their located YAML loaders."""
import dataclasses

import numpy as np
import pytest

from memsim.dtypes import DTYPE_BYTES, dtype_bytes, nbytes
from memsim.errors import InputError, SpecError
from memsim.spec import load_document
from memsim.workloads import (AttentionWorkload, BlockSparse, GemmWorkload, get_workload_kind,
                              workload_kinds)
from memsim.workloads import masks

BASE = """\
kind: attention
batch: 2
heads: 8
seq_q: 100
head_dim: 64
"""


def load(text):
    return AttentionWorkload.from_node(load_document("wl.yaml", text).root())


def test_dtype_table():
    assert dict(DTYPE_BYTES) == {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1,
                                 "int4": 0.5}
    assert nbytes(6, "int4") == 3
    with pytest.raises(InputError, match="whole number of bytes"):
        nbytes(3, "int4")
    with pytest.raises(InputError, match='"dtype" must be one of'):
        dtype_bytes("fp64")


def test_attention_defaults_from_yaml():
    w = load(BASE)
    assert (w.kv_heads, w.seq_k, w.causal, w.window, w.sparse, w.dtype) == \
        (8, 100, False, None, None, "bf16")
    assert w.dtype_bytes == 2
    assert w.flops == w.dense_flops == 4 * 2 * 8 * 100 * 100 * 64
    assert w.to_dict()["kind"] == "attention"


def test_attention_full_yaml_roundtrip():
    w = load(BASE + "kv_heads: 2\nseq_k: 300\ncausal: true\nwindow: 50\n"
                    "block_sparse: {density: 0.5, block: 16, seed: 3}\ndtype: fp8\n")
    assert w.group_size == 4 and w.sparse == BlockSparse(0.5, 16, 3) and w.dtype_bytes == 1
    again = AttentionWorkload(**{k: v for k, v in w.to_dict().items()
                                 if k not in ("kind", "block_sparse")}, sparse=w.sparse)
    assert again == w


@pytest.mark.parametrize("extra, path, line, words", [
    ("kv_heads: 3\n", "kv_heads", 6, "expected a divisor of heads (8)"),
    ("dtype: bf17\n", "dtype", 6, "did you mean 'bf16'"),
    ("causal: 1\n", "causal", 6, "expected true or false"),
    ("window: 0\n", "window", 6, "expected a value >= 1"),
    ("hed_dim: 3\n", "hed_dim", 6, "unknown key"),
    ("block_sparse: {density: 2, block: 4}\n", "block_sparse.density", 6, "<= 1"),
])
def test_attention_errors_are_located(extra, path, line, words):
    with pytest.raises(SpecError) as info:
        load(BASE + extra)
    assert info.value.path == path and info.value.line == line and info.value.file == "wl.yaml"
    assert words in str(info.value)


def test_attention_missing_and_nonpositive():
    with pytest.raises(SpecError, match="missing required field 'head_dim'"):
        load(BASE.replace("head_dim: 64\n", ""))
    with pytest.raises(SpecError, match=r"seq_q: found 0, expected a value >= 1"):
        load(BASE.replace("seq_q: 100", "seq_q: 0"))


def test_attention_constructor_validates():
    with pytest.raises(InputError, match='"kv_heads" must divide "heads"'):
        AttentionWorkload(1, 8, 3, 10, 10, 64)
    with pytest.raises(InputError, match='"head_dim" must be an integer >= 1'):
        AttentionWorkload(1, 8, 8, 10, 10, 0)
    with pytest.raises(InputError, match='"dtype" must be one of'):
        AttentionWorkload(1, 8, 8, 10, 10, 64, dtype="fp64")
    with pytest.raises(dataclasses.FrozenInstanceError):
        AttentionWorkload(1, 8, 8, 10, 10, 64).batch = 2


@pytest.mark.parametrize("mask", [
    dict(causal=True), dict(causal=True, window=40), dict(window=33),
    dict(sparse=BlockSparse(0.3, 16, 1)), dict(causal=True, sparse=BlockSparse(0.5, 20, 2)),
])
def test_flops_count_visible_pairs(mask):
    nq, nk, d = 77, 130, 32
    w = AttentionWorkload(2, 4, 2, nq, nk, d, **mask)
    q, k = np.arange(nq)[:, None], np.arange(nk)[None, :]
    pairs = int(masks.visible(q, k, nq, nk, w.causal, w.window, w.sparse).sum())
    assert w.visible_pairs() == pairs
    assert w.flops == 4 * 2 * 4 * pairs * d and w.exp_ops == 2 * 4 * pairs
    assert w.flops < w.dense_flops


def test_causal_square_is_half_plus_diagonal():
    w = AttentionWorkload(1, 1, 1, 1000, 1000, 64, causal=True)
    assert w.visible_pairs() == 1000 * 1001 // 2


def test_gemm():
    g = GemmWorkload.from_node(load_document("g.yaml", "kind: gemm\nm: 3\nn: 5\nk: 7\n").root())
    assert g == GemmWorkload(3, 5, 7, "bf16")
    assert g.flops == 2 * 3 * 5 * 7
    assert g.tensor_bytes() == {"a": 42, "b": 70, "c": 30}
    assert GemmWorkload(4, 4, 4, "int4").tensor_bytes()["a"] == 8
    with pytest.raises(SpecError, match=r"g.yaml:3: n: found 0"):
        GemmWorkload.from_node(load_document("g.yaml", "kind: gemm\nm: 3\nn: 0\nk: 7\n").root())


def test_registry_lists_kinds_on_miss():
    assert {"attention", "gemm"} <= set(workload_kinds())
    with pytest.raises(InputError, match="unknown workload kind 'attn', expected one of: .*attention"):
        get_workload_kind("attn")
