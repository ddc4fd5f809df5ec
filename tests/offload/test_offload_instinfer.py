"""In-storage attention vs SSD offload on the csd preset (OPT-13B): relations and crossover."""
from __future__ import annotations

import pytest

from memsim import load_hardware
from memsim.errors import InputError
from memsim.llm.model import load_model
from memsim.offload import OffloadMachine, crossover_context, decode_step

MODEL = load_model("opt-13b")
MACHINE = OffloadMachine.of(load_hardware("csd"))


def test_long_context_favours_in_storage_attention():
    for batch in (1, 16):
        ssd = decode_step(MODEL, MACHINE, "ssd_offload", batch, 16384)
        inst = decode_step(MODEL, MACHINE, "instinfer", batch, 16384)
        # bounded by the ratio of internal flash bandwidth to the drive's link (+ PCIe hop)
        dev = MACHINE.disk
        link = MACHINE.nvme.link.bandwidth("ssd", "host")
        assert 1 < inst.throughput / ssd.throughput <= \
            dev.channels * dev.channel_bandwidth / link * (1 + link / MACHINE.pcie.link.bandwidth("host", "hbm")) + 1e-9
        for step in (ssd, inst):
            assert step.time_s >= max(step.busy_s.values())


def test_crossover_exists_and_shrinks_with_batch():
    c1 = crossover_context(MODEL, MACHINE, 1)
    c16 = crossover_context(MODEL, MACHINE, 16)
    assert c1 is not None and c16 is not None and c16 < c1
    below = decode_step(MODEL, MACHINE, "instinfer", 1, c1 - 1).throughput
    assert below <= decode_step(MODEL, MACHINE, "ssd_offload", 1, c1 - 1).throughput


def test_kv_bytes_exact():
    b, ctx = 4, 1000
    kv = b * ctx * MODEL.kv_bytes_per_token(2)            # all layers
    ssd = decode_step(MODEL, MACHINE, "ssd_offload", b, ctx)
    assert ssd.bytes["ssd>host"] == pytest.approx(kv)
    assert ssd.bytes["host>hbm"] == pytest.approx(kv)
    inst = decode_step(MODEL, MACHINE, "instinfer", b, ctx, kv_fraction=0.125)
    assert inst.bytes["flash>csd"] == pytest.approx(kv * 0.125)
    assert "host>hbm" not in inst.bytes                     # P2P: the host is not on the path


def test_bad_mode():
    with pytest.raises(InputError, match="unknown mode"):
        decode_step(MODEL, MACHINE, "nope", 1, 1)
    with pytest.raises(InputError, match="no host memory level"):
        decode_step(MODEL, OffloadMachine.of(load_hardware("rtx-4090")), "instinfer", 1, 10)
