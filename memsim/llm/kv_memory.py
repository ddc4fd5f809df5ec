"""KV-cache memory management: how much of the KV pool holds token states.

A pool of ``capacity_tokens`` token slots (bytes = slots × ``kv_bytes_per_token``) serves a
request trace (:mod:`memsim.llm.trace`). All requests arrive at step 0 and wait in a FCFS queue;
at every step the head of the queue is admitted while its memory can be allocated (and the batch
is below ``max_batch``), its prompt is written, then every running sequence appends one token;
a sequence leaves when its output is complete. Strategies:

* ``contiguous_max``: one contiguous region of ``max_len`` slots per sequence, reserved at
  admission (Orca/FasterTransformer "Max").
* ``contiguous_pow2``: ``prompt + output`` rounded up to a power of two (Orca "Pow2").
* ``contiguous_oracle``: exactly ``prompt + output`` (Orca "Oracle": knows the output length).
* ``contiguous_growth``: starts at the prompt and doubles on overflow (in place when the next
  slots are free, else moved: copied tokens are counted); no room means preemption.
* ``paged``: blocks of ``block_size`` slots allocated on demand through a per-sequence block
  table (PagedAttention); parallel samples of one prompt share its blocks (reference counts)
  and copy a shared partial block on their first write (copy-on-write). No free block means
  preemption (the sequence is freed and requeued at the front, to be recomputed).

Contiguous regions are placed first-fit in one address space. Accounting per step, over the
running sequences (n = tokens held, A = slots allocated, F = final length):
token states Σn; reserved Σ(min(A, F) - n) (slots that will be filled); internal fragmentation
Σ(A - min(A, F)) (slots that never will); external fragmentation = free slots in holes below
the end of the highest live region (contiguous only; any free block serves any sequence).
Fractions are of their sum (the pool span in use) averaged over steps; ``utilization`` is the
token-state fraction, PagedAttention's Fig. 2 metric (papers.md Sec. 10.4).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .trace import TraceSpec

__all__ = ["KvMemoryReport", "simulate_kv_memory", "STRATEGIES"]

WATERMARK = 0.01
"""Free fraction of the pool kept when admitting on-demand (paged, growth) requests, so that
running sequences can grow (vLLM's block manager keeps 1%)."""

STRATEGIES = ("contiguous_max", "contiguous_pow2", "contiguous_oracle", "contiguous_growth",
              "paged")


@dataclass(frozen=True)
class KvMemoryReport:
    """Time-averaged composition of the KV pool in use, and how many requests ran at once."""

    strategy: str
    capacity_tokens: int
    utilization: float                 # token states / span in use
    reserved: float
    internal_fragmentation: float
    external_fragmentation: float
    mean_batch: float                  # running sequences per step
    max_batch: int
    steps: int
    preemptions: int
    copied_tokens: int                 # moves (growth) and copy-on-write (paged)
    shared_tokens_saved: float         # mean slots saved by sharing prompt blocks (paged)

    @property
    def waste(self) -> float:
        return 1.0 - self.utilization

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"waste": self.waste}


class _Contiguous:
    """First-fit regions in [0, capacity)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.starts: list[int] = []        # sorted region starts
        self.sizes: dict[int, int] = {}

    def alloc(self, size: int) -> int | None:
        prev_end = 0
        for start in self.starts:
            if start - prev_end >= size:
                break
            prev_end = start + self.sizes[start]
        else:
            if self.capacity - prev_end < size:
                return None
        bisect.insort(self.starts, prev_end)
        self.sizes[prev_end] = size
        return prev_end

    def free(self, start: int) -> None:
        self.starts.remove(start)
        del self.sizes[start]

    def grow_in_place(self, start: int, size: int) -> bool:
        i = self.starts.index(start)
        limit = self.starts[i + 1] if i + 1 < len(self.starts) else self.capacity
        if start + size <= limit:
            self.sizes[start] = size
            return True
        return False

    def holes(self) -> int:
        if not self.starts:
            return 0
        top = self.starts[-1] + self.sizes[self.starts[-1]]
        return top - sum(self.sizes.values())


class _Seq:
    __slots__ = ("req", "n", "final", "region", "size", "blocks")

    def __init__(self, req: int, n: int, final: int):
        self.req, self.n, self.final = req, n, final
        self.region, self.size, self.blocks = None, 0, []


def _next_pow2(x: int) -> int:
    return 1 << (int(x) - 1).bit_length()


def simulate_kv_memory(trace: TraceSpec, strategy: str, capacity_tokens: int,
                       block_size: int = 16, max_batch: int | None = None) -> KvMemoryReport:
    """Serve ``trace`` from a pool of ``capacity_tokens`` slots with ``strategy``."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown KV memory strategy {strategy!r}, expected one of: "
                         f"{', '.join(STRATEGIES)}")
    if block_size < 1 or capacity_tokens < 1:
        raise InputError("block_size and capacity_tokens must be >= 1")
    prompts, outputs = trace.draw()
    need = trace.max_len if strategy == "contiguous_max" else None
    if int((prompts + outputs.max(axis=1)).max()) > capacity_tokens or \
            (need and need > capacity_tokens):
        raise InputError(f"a request needs more than the pool's {capacity_tokens} token slots")
    paged = strategy == "paged"
    pool = _Contiguous(capacity_tokens)
    free_blocks = capacity_tokens // block_size
    fill: dict[int, int] = {}
    ref: dict[int, int] = {}
    next_block = [0]
    recycled: list[int] = []

    def new_block() -> int | None:
        nonlocal free_blocks
        if free_blocks == 0:
            return None
        free_blocks -= 1
        b = recycled.pop() if recycled else next_block[0]
        if b == next_block[0]:
            next_block[0] += 1
        fill[b], ref[b] = 0, 1
        return b

    def drop_block(b: int) -> None:
        nonlocal free_blocks
        ref[b] -= 1
        if ref[b] == 0:
            del ref[b], fill[b]
            recycled.append(b)
            free_blocks += 1

    queue = list(range(len(prompts)))[::-1]       # pop() = front of the FCFS queue
    running: list[_Seq] = []
    stats = np.zeros(5)                           # tokens, reserved, internal, external, saved
    steps = preemptions = copied = peak = 0
    batch_sum = 0

    def release(seq: _Seq) -> None:
        if paged:
            for b in seq.blocks:
                drop_block(b)
        else:
            pool.free(seq.region)

    def admit(r: int) -> list[_Seq] | None:
        p = int(prompts[r])
        seqs = [_Seq(r, p, p + int(o)) for o in outputs[r]]
        if paged:
            blocks = []
            for _ in range(-(-p // block_size)):
                b = new_block()
                if b is None:
                    for x in blocks:
                        drop_block(x)
                    return None
                blocks.append(b)
            for i, b in enumerate(blocks):
                fill[b] = min(block_size, p - i * block_size)
                ref[b] = len(seqs)
            for s in seqs:
                s.blocks = list(blocks)
            return seqs
        for s in seqs:
            size = {"contiguous_max": trace.max_len, "contiguous_pow2": _next_pow2(s.final),
                    "contiguous_oracle": s.final, "contiguous_growth": p}[strategy]
            s.region, s.size = pool.alloc(size), size
            if s.region is None:
                for t in seqs:
                    if t.region is not None:
                        pool.free(t.region)
                return None
        return seqs

    def append(s: _Seq) -> bool:
        """Room for one more token of ``s``; False when memory ran out."""
        nonlocal copied
        if paged:
            last = s.blocks[-1] if s.blocks else None
            if last is None or fill[last] == block_size:
                b = new_block()
                if b is None:
                    return False
                s.blocks.append(b)
            elif ref[last] > 1:                    # copy-on-write of a shared partial block
                b = new_block()
                if b is None:
                    return False
                fill[b] = fill[last]
                copied += fill[last]
                drop_block(last)
                s.blocks[-1] = b
            fill[s.blocks[-1]] += 1
            return True
        if s.n < s.size:
            return True
        if strategy != "contiguous_growth":
            raise AssertionError("a reserved region overflowed")   # sizes cover the output
        size = min(2 * s.size, trace.max_len)
        if pool.grow_in_place(s.region, size):
            s.size = size
            return True
        pool.free(s.region)
        region = pool.alloc(size)
        if region is None:
            s.region = pool.alloc(s.size)          # put it back (same or another place)
            return False
        copied += s.n
        s.region, s.size = region, size
        return True

    watermark = int(WATERMARK * capacity_tokens)

    def free_slots() -> int:
        return free_blocks * block_size if paged else capacity_tokens - sum(pool.sizes.values())

    while queue or running:
        while queue and (max_batch is None or len(running) < max_batch):
            if running and strategy in ("paged", "contiguous_growth") and \
                    free_slots() - int(prompts[queue[-1]]) < watermark:
                break
            seqs = admit(queue[-1])
            if seqs is None:
                break
            queue.pop()
            running.extend(seqs)
        if not running:
            raise InputError("the pool cannot hold the request at the head of the queue")
        i = 0
        while i < len(running):                   # running is in admission order
            s = running[i]
            while not append(s):                  # preempt the latest admitted request
                victim = running[-1].req
                preemptions += 1
                for t in [t for t in running if t.req == victim]:
                    running.remove(t)
                    release(t)
                queue.append(victim)              # front of the queue: recomputed first
                if victim == s.req:
                    break
            else:
                s.n += 1
                i += 1
                continue
            i = min(i, len(running))
        steps += 1
        batch_sum += len(running)
        peak = max(peak, len(running))
        stats += _account(running, paged, block_size, fill, ref, free_blocks, capacity_tokens,
                          pool)
        for s in [s for s in running if s.n >= s.final]:
            release(s)
        running = [s for s in running if s.n < s.final]
    span = stats[:4].sum()
    frac = stats[:4] / span if span else np.zeros(4)
    return KvMemoryReport(strategy, capacity_tokens, float(frac[0]), float(frac[1]),
                          float(frac[2]), float(frac[3]), batch_sum / steps, peak, steps,
                          preemptions, copied, float(stats[4] / steps))


def _account(running, paged, block_size, fill, ref, free_blocks, capacity, pool) -> np.ndarray:
    """tokens, reserved, internal, external, shared-saved slots of one step."""
    tokens = reserved = 0.0
    if paged:
        logical = 0
        seen_shared: set[int] = set()
        for s in running:
            logical += s.n
            last = s.blocks[-1]
            if ref[last] > 1 and last in seen_shared:
                continue                          # a shared partial block is counted once
            seen_shared.add(last)
            reserved += min(block_size - fill[last], s.final - s.n)
        allocated = (capacity // block_size - free_blocks) * block_size
        tokens = float(sum(fill.values()))
        return np.array([tokens, reserved, allocated - tokens - reserved, 0.0,
                         logical - tokens])
    internal = 0.0
    for s in running:
        tokens += s.n
        used = min(s.size, s.final)
        reserved += used - s.n
        internal += s.size - used
    return np.array([tokens, reserved, internal, float(pool.holes()), 0.0])
