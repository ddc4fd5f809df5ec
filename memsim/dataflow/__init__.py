"""Streaming dataflow fabrics: units joined by bounded FIFOs (simpy), and SDPA on them."""
from .channel import Channel
from .fabric import DeadlockError, Fabric, FabricRun
from .sdpa import SdpaParams, SdpaRun, build_sdpa, reference_attention, run_sdpa
from .units import Map, MatVec, Reduce, Repeat, Scan, Sink, Source, Unit, UnitTiming

__all__ = ["Channel", "DeadlockError", "Fabric", "FabricRun", "SdpaParams", "SdpaRun",
           "build_sdpa", "reference_attention", "run_sdpa", "Map", "MatVec", "Reduce", "Repeat",
           "Scan", "Sink", "Source", "Unit", "UnitTiming"]
