"""Small runs shared by the report and sweep tests (module-scoped: simulated once)."""
from __future__ import annotations

import pytest

SMALL = {
    "hardware": "h100-sxm",
    "workload": {"kind": "attention", "batch": 1, "heads": 2, "seq_q": 512, "seq_k": 512,
                 "head_dim": 64, "dtype": "bf16"},
    "schedule": {"kind": "flash2", "block_q": 128, "block_k": 128},
}


@pytest.fixture(scope="session")
def small_config():
    from memsim.config import load_run_config
    return load_run_config(SMALL, [("simulation.trace", True)])


@pytest.fixture(scope="session")
def traced_result(small_config):
    from memsim.simulate import simulate
    return simulate(small_config)


@pytest.fixture(scope="session")
def standard_result():
    from memsim.simulate import simulate
    return simulate(SMALL, [("schedule.kind", "standard"), ("simulation.granularity", "block")])
