"""One parallel driver for every schedule: ``prange`` over batch x heads, one head per task.

A single parallel function (instead of one per schedule) keeps numba's parfor compilation,
which costs more than the kernels themselves, to one per dtype: the cold compile of all six
schedules for float32 and float64 drops from about 45 s to a fraction of that.
Each (b, h) task writes only its own output slices and its own counter row ``counts[b*H + h]``.
"""
from __future__ import annotations

from numba import njit, prange

from ._flash import flash1_head, flash2_head, flash_decoding_head
from ._materialised import chunked_head, square_tiling_head, standard_head

#: Schedule codes understood by :func:`run_heads`.
CODES = {"standard": 0, "flash1": 1, "flash2": 2, "square_tiling": 3, "chunked": 4,
         "flash_decoding": 5}
#: Layout of the integer configuration vector ``cfg``.
CFG = ("block_q", "block_k", "causal", "window", "sparse_block", "splits", "intermediate_round")


@njit(cache=True, parallel=True)
def run_heads(code, q, k, v, scale, cfg, layout, act, row_offset, out, lse, aux, counts):
    """Run schedule ``code`` on q (B, H, Nq, d), k, v (B, Hkv, Nk, d) (GQA: head h reads K/V
    head h // (H / Hkv)). ``cfg`` is the int64 vector of :data:`CFG` (block_q is the square
    block for square_tiling); ``row_offset`` (B, H, Nq) is used by square_tiling only, ``aux``
    (B, H, Nq) is flash1's l array (``lse`` then holds its m array)."""
    nb, nh = q.shape[0], q.shape[1]
    group = nh // k.shape[1]
    br, bc, causal, window = cfg[0], cfg[1], cfg[2] != 0, cfg[3]
    sblock, splits, iround = cfg[4], cfg[5], cfg[6]
    for bh in prange(nb * nh):
        b = bh // nh
        h = bh % nh
        qh, kh, vh = q[b, h], k[b, h // group], v[b, h // group]
        oh, lh, cnt = out[b, h], lse[b, h], counts[bh]
        if code == 0:
            standard_head(qh, kh, vh, scale, br, bc, causal, window, layout, sblock, iround, oh,
                          cnt)
        elif code == 1:
            flash1_head(qh, kh, vh, scale, br, bc, causal, window, layout, sblock, act, oh,
                        aux[b, h], lh, cnt)
        elif code == 2:
            flash2_head(qh, kh, vh, scale, br, bc, causal, window, layout, sblock, act, oh, lh,
                        cnt)
        elif code == 3:
            square_tiling_head(qh, kh, vh, scale, br, causal, window, layout, sblock, iround,
                               row_offset[b, h], act, oh, lh, cnt)
        elif code == 4:
            chunked_head(qh, kh, vh, scale, br, bc, causal, window, layout, sblock, act, oh, lh,
                         cnt)
        else:
            flash_decoding_head(qh, kh, vh, scale, bc, splits, causal, window, layout, sblock,
                                act, oh, lh, cnt)
