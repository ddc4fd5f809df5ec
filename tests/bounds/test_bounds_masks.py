"""Masks: the vectorised helpers against element-level enumeration (docs/schedules.md, Masks)."""
import numpy as np
import pytest

from memsim.errors import InputError
from memsim.workloads.masks import (BlockSparse, active_tiles, as_block_sparse, block_sizes,
                                    block_sparse_layout, visible, visible_counts)


def _dense(nq, nk, causal, window, sparse):
    return visible(np.arange(nq)[:, None], np.arange(nk)[None, :], nq, nk, causal, window,
                   sparse)


def _random_case(rng):
    nq, nk = int(rng.integers(1, 50)), int(rng.integers(1, 50))
    causal = bool(rng.integers(2))
    window = None if rng.integers(2) else int(rng.integers(1, 25))
    sparse = None if rng.integers(2) else BlockSparse(float(rng.random()), int(rng.integers(1, 13)),
                                                      int(rng.integers(4)))
    return nq, nk, causal, window, sparse


def test_visible_definitions_pointwise():
    # nq=3, nk=5: rows sit at positions p = q + 2 (bottom-right alignment).
    v = _dense(3, 5, True, None, None)
    assert v.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    v = _dense(3, 5, True, 2, None)          # p - 2 < k <= p
    assert v.tolist() == [[0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]]
    v = _dense(3, 5, False, 2, None)         # |k - p| < 2
    assert v.tolist() == [[0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 0, 1, 1]]
    assert _dense(1, 7, True, None, None).all()   # a decode query sees the whole cache
    assert not _dense(4, 2, True, None, None)[:2].any()  # rows before the cache start


@pytest.mark.parametrize("seed", range(4))
def test_active_tiles_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    for _ in range(150):
        nq, nk, causal, window, sparse = _random_case(rng)
        bq, bk = int(rng.integers(1, 18)), int(rng.integers(1, 18))
        v = _dense(nq, nk, causal, window, sparse)
        tr, tc = -(-nq // bq), -(-nk // bk)
        want = np.array([[v[i * bq:(i + 1) * bq, j * bk:(j + 1) * bk].any() for j in range(tc)]
                         for i in range(tr)])
        got = active_tiles(nq, nk, bq, bk, causal, window, sparse)
        assert got.shape == (tr, tc) and got.dtype == bool
        assert (got == want).all(), (nq, nk, bq, bk, causal, window, sparse)


@pytest.mark.parametrize("seed", range(2))
def test_visible_counts_matches_enumeration(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(200):
        nq, nk, causal, window, sparse = _random_case(rng)
        v = _dense(nq, nk, causal, window, sparse)
        want = (int(v.sum()), int(v.any(1).sum()), int(v.any(0).sum()))
        assert visible_counts(nq, nk, causal, window, sparse) == want


def test_block_sparse_layout_properties():
    a = block_sparse_layout(100, 100, 8, 0.3, 7)
    assert a.shape == (13, 13)
    assert (a == block_sparse_layout(100, 100, 8, 0.3, 7)).all()      # reproducible
    assert (a != block_sparse_layout(100, 100, 8, 0.3, 8)).any()      # seed matters
    assert np.diag(a).all()                                            # diagonal kept
    assert block_sparse_layout(40, 40, 8, 1.0, 0).all()
    # density 0 keeps exactly the blocks holding the aligned positions p = q + nk - nq
    z = block_sparse_layout(10, 31, 4, 0.0, 0)     # p = 21..30 straddles key blocks
    assert z.shape == (3, 8)
    assert [list(np.flatnonzero(r)) for r in z] == [[5, 6], [6, 7], [7]]
    # with causal, no row is emptied by the sparse mask alone
    v = _dense(37, 53, True, None, BlockSparse(0.0, 5, 0))
    assert v.any(1).all()


def test_block_sizes_edges():
    assert block_sizes(10, 4).tolist() == [4, 4, 2]
    assert block_sizes(8, 4).tolist() == [4, 4]
    assert block_sizes(3, 10).tolist() == [3]


def test_large_shape_is_fast_and_exact():
    act = active_tiles(131072, 131072, 128, 128, True)
    assert act.sum() == 1024 * 1025 // 2       # lower triangle incl. diagonal
    pairs, rows, keys = visible_counts(131072, 131072, True)
    assert (pairs, rows, keys) == (131072 * 131073 // 2, 131072, 131072)


def test_bad_input_names_the_field():
    with pytest.raises(InputError, match='"window" must be an integer >= 1'):
        active_tiles(4, 4, 2, 2, False, 0)
    with pytest.raises(InputError, match='"block_sparse.density"'):
        BlockSparse(1.5, 4)
    with pytest.raises(InputError, match='"block_q"'):
        active_tiles(4, 4, 0, 2)
    with pytest.raises(InputError, match="block_sparse"):
        as_block_sparse({"density": 0.5})
    assert as_block_sparse({"density": 0.5, "block": 4}) == BlockSparse(0.5, 4, 0)
