"""KV-cache memory management on a synthetic trace.

Trace (stated): 400 requests, all at step 0, seed 0; prompt and output lengths lognormal with
means 161 and 338 tokens (the ShareGPT means of the vLLM paper, Fig. 11), sigma 1.0 of the log;
max length 2048; a pool of 15,000 token slots (OPT-13B fp16: 12.3 GB at 819,200 B/token).
"""
import pytest

from memsim.errors import InputError, SpecError
from memsim.llm.kv_memory import STRATEGIES, simulate_kv_memory
from memsim.llm.trace import trace_from_data

TRACE = {"requests": 400, "seed": 0, "max_len": 2048,
         "prompt": {"dist": "lognormal", "mean": 161, "sigma": 1.0},
         "output": {"dist": "lognormal", "mean": 338, "sigma": 1.0}}
POOL = 15_000


@pytest.fixture(scope="module")
def reports():
    trace = trace_from_data(TRACE)
    return {s: simulate_kv_memory(trace, s, POOL) for s in STRATEGIES}


def test_preallocation_utilisation_in_pagedattention_range(reports):
    # PagedAttention Fig. 2: existing systems store token states in 20.4%-38.2% of the KV memory
    assert 0.204 <= reports["contiguous_max"].utilization <= 0.382


def test_paging_wastes_under_4_percent(reports):
    paged = reports["paged"]
    assert paged.waste < 0.04
    assert paged.external_fragmentation == 0
    assert paged.max_batch > 3 * reports["contiguous_max"].max_batch


def test_fractions_and_orderings(reports):
    for r in reports.values():
        total = (r.utilization + r.reserved + r.internal_fragmentation
                 + r.external_fragmentation)
        assert total == pytest.approx(1.0)
    # max reserves 2048 for everyone: at most floor(15000 / 2048) = 7 at once
    assert reports["contiguous_max"].max_batch == 7
    assert reports["contiguous_oracle"].internal_fragmentation == 0
    assert (reports["contiguous_max"].utilization < reports["contiguous_pow2"].utilization
            < reports["contiguous_oracle"].utilization < reports["paged"].utilization)


def test_copy_on_write_sharing_of_parallel_samples():
    trace = trace_from_data({**TRACE, "requests": 100, "parallel_samples": 4})
    paged = simulate_kv_memory(trace, "paged", POOL)
    assert paged.shared_tokens_saved > 0          # prompt blocks held once for 4 samples
    assert paged.copied_tokens > 0                # partial prompt blocks copied on write
    # at most one partial block (< 16 tokens) copied per sample after the first
    assert paged.copied_tokens < 100 * 3 * 16 * (1 + paged.preemptions)
    plain = simulate_kv_memory(trace, "contiguous_oracle", POOL)
    assert paged.mean_batch > plain.mean_batch


def test_same_seed_same_result_and_strict_trace():
    trace = trace_from_data({**TRACE, "requests": 50})
    a = simulate_kv_memory(trace, "paged", 5000, block_size=32)
    b = simulate_kv_memory(trace, "paged", 5000, block_size=32)
    assert a == b
    with pytest.raises(SpecError, match="unknown key 'sead'"):
        trace_from_data({**TRACE, "sead": 1})
    with pytest.raises(SpecError, match="dist"):
        trace_from_data({**TRACE, "prompt": {"dist": "zipf"}})
    with pytest.raises(InputError, match="unknown KV memory strategy"):
        simulate_kv_memory(trace, "buddy", 5000)
    with pytest.raises(InputError, match="more than the pool"):
        simulate_kv_memory(trace, "contiguous_max", 1000)
