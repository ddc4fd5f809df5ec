"""The tile-program IR: what a schedule emits and the engine executes.

A *program* is a list of :class:`Kernel` s run one after another. A kernel is a grid of thread
blocks; ``kernel.block(b)`` returns the program of block ``b`` as a tuple of :class:`Segment` s.
A segment is a loop over an index array ``idx`` (e.g. the active key blocks of a row); every
iteration is one *step*: the step loads its transfers into SRAM, runs its compute ops in order,
and stores its outputs from SRAM into L2.

The IR is deliberately numeric and loop-shaped instead of one Python object per tile, so that
0.5 M tile steps cost a few array entries, and so that the coarse mode can pack it into numba.

* An :class:`Access` moves ``coef * sizes[j]`` bytes (``coef`` when ``sizes`` is None) of the
  data region ``base + stride * j`` of a tensor class. Region ids are dense integers allocated
  by :meth:`Program.tensor`; the same id is the same data (this is what L2 reuse keys on: K/V
  of one GQA group, or S written by one kernel and read by the next).
* ``Segment.operands`` are the bytes the compute units read from SRAM per step (the
  ``sram.read_bytes`` contract); stored results are counted as written into SRAM by compute
  and read out of it by the store.
* An :class:`Op` performs ``coef * sizes[j]`` operations of an instruction class (a rate name
  of the hardware, e.g. ``bf16_wgmma``; exponentials use ``exp_sfu``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["Access", "Op", "Segment", "Kernel", "Program", "TensorSpace"]


class Access(NamedTuple):
    """A transfer template: region ``base + stride*j`` of tensor class ``tensor`` (an index
    into :attr:`Program.tensor_names`), ``coef * sizes[j]`` bytes (``coef`` if sizes is None)."""

    tensor: int
    base: int
    stride: int
    coef: float
    sizes: np.ndarray | None = None


class Op(NamedTuple):
    """``coef * sizes[j]`` operations (FLOPs, or exponentials) of instruction class ``cls``.

    ``issue`` >= 1 is the work the units are busy for per counted operation: a tensor-core
    kernel that computes a whole padded tile (e.g. 128 query rows of which 1 is valid) is
    timed for ``issue * coef * sizes[j]`` operations while only the useful ones are counted."""

    cls: str
    coef: float
    sizes: np.ndarray | None = None
    issue: float = 1.0


class Segment(NamedTuple):
    """A loop over ``idx`` (int64 array); each iteration loads, computes, then stores.

    ``operands`` are :class:`Access` templates of the bytes the step's compute reads out of
    SRAM (``coef * sizes[j]``; ``base``/``stride`` unused): they count in
    ``sram.read_bytes`` only (not in L2/HBM traffic, not in time)."""

    idx: np.ndarray
    loads: tuple = ()
    ops: tuple = ()
    stores: tuple = ()
    operands: tuple = ()


@dataclass(frozen=True)
class Kernel:
    """One kernel launch: ``grid`` thread blocks in dispatch order, each using
    ``sram_bytes`` of shared memory; ``stages`` is the depth of the load pipeline (1 = load,
    then compute; 2 = double buffering, ...). ``block(b)`` returns block b's segments."""

    name: str
    grid: int
    sram_bytes: float
    stages: int
    block: Callable[[int], tuple]
    program: "Program"
    sram_detail: str = ""          # what the SRAM bytes hold, for error messages

    def blocks(self):
        """Iterate over the programs of all blocks in dispatch order."""
        return (self.block(b) for b in range(self.grid))


@dataclass(frozen=True)
class TensorSpace:
    """A tensor class's range of region ids: ``base .. base + count - 1``."""

    index: int
    base: int
    count: int


@dataclass
class Program:
    """Region-id allocator and tensor-class names shared by all kernels of one run."""

    tensor_names: list = field(default_factory=list)
    spaces: list = field(default_factory=list)
    n_regions: int = 0

    def tensor(self, name: str, count: int) -> TensorSpace:
        """Allocate ``count`` regions for tensor class ``name`` (each name once)."""
        if name in self.tensor_names:
            raise ValueError(f"tensor class {name!r} allocated twice")
        space = TensorSpace(len(self.tensor_names), self.n_regions, int(count))
        self.tensor_names.append(name)
        self.spaces.append(space)
        self.n_regions += int(count)
        return space
