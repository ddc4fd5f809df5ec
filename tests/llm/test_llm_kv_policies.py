"""KV-cache policies: memory budget, bytes per decode step, fidelity on synthetic inputs.

Synthetic inputs: memsim.llm.kv_fidelity.synthetic_attention (power-law key salience, 4 sink
tokens, RoPE-like recency), prompt 256, 24 decode steps, 4 heads of 64, seed 0.
"""
import pytest

from memsim.errors import InputError, SpecError
from memsim.llm import load_model
from memsim.llm.kv_fidelity import policy_fidelity, relay_error, synthetic_attention
from memsim.llm.kv_policies import get_policy, policy_from_data, policy_names

M = load_model("llama-3-8b")
KVB = M.kv_bytes_per_token(2)


@pytest.fixture(scope="module")
def x():
    return synthetic_attention(prompt=256, steps=24, heads=4, head_dim=64, seed=0)


def test_registry():
    assert policy_names() == ("a2sf", "full", "h2o", "kivi", "relay", "snapkv", "streaming")
    with pytest.raises(InputError, match="unknown KV policy 'lru'.*h2o"):
        get_policy("lru")
    with pytest.raises(InputError, match="needs a 'budget'"):
        get_policy("h2o")
    p = policy_from_data({"kind": "streaming", "budget": 256, "sinks": 4})
    # budget = slots, the new token's included: 255 kept between steps, 256 read per step
    assert p.held_tokens(1000, 10) == 255 and p.attended_tokens(1000, 10) == 256
    with pytest.raises(SpecError, match="unknown key 'sink'"):
        policy_from_data({"kind": "streaming", "budget": 256, "sink": 4})


def test_full_cache_has_zero_error(x):
    r = policy_fidelity(get_policy("full"), x)
    assert r["max_error"] < 1e-12
    assert r["max_held_tokens"] == 256 + 24


@pytest.mark.parametrize("name,extra", [("streaming", {}), ("h2o", {}),
                                        ("a2sf", {"forgetting": 0.9})])
def test_eviction_holds_at_most_the_budget(x, name, extra):
    p = get_policy(name, budget=64, **extra)
    r = policy_fidelity(p, x)
    assert r["max_held_tokens"] == 63            # + the new token = the 64 slots
    assert p.memory_held_bytes(M, "bf16", 4000, 100) <= 64 * KVB + p.metadata_bytes(M, 64)
    assert 0 < r["mean_error"]
    # a budget covering the whole sequence loses nothing
    assert policy_fidelity(get_policy(name, budget=512, **extra), x)["max_error"] < 1e-12


def test_snapkv_budget_bounds_the_prompt(x):
    r = policy_fidelity(get_policy("snapkv", budget=64, window=16), x)
    assert r["max_held_tokens"] <= 64 + 24
    assert get_policy("snapkv", budget=64).held_tokens(4000, 7) == 71


def test_heavy_hitters_beat_a_recency_window_on_salient_inputs(x):
    # measured on this input: streaming ~1.0, h2o ~0.07 mean relative error at budget 64
    stream = policy_fidelity(get_policy("streaming", budget=64), x)["mean_error"]
    h2o = policy_fidelity(get_policy("h2o", budget=64), x)["mean_error"]
    assert h2o < stream / 3
    big = policy_fidelity(get_policy("h2o", budget=192), x)["mean_error"]
    assert big < h2o


def test_bytes_per_decode_step():
    full = get_policy("full")
    # reads the 1000 held tokens and the new one, writes the new one
    assert full.bytes_per_decode_step(M, "bf16", 900, 100) == (1001 + 1) * KVB
    stream = get_policy("streaming", budget=256)
    # once the context exceeds the budget, a step reads exactly the 256 slots
    assert stream.bytes_per_decode_step(M, "bf16", 900, 100) == (256 + 1) * KVB
    assert stream.bytes_per_decode_step(M, "bf16", 100, 50) == (151 + 1) * KVB
    h2o = get_policy("h2o", budget=256)
    scores = 256 * M.heads * M.layers * 4
    assert h2o.bytes_per_decode_step(M, "bf16", 900, 100) == (256 + 1) * KVB + 2 * scores


def test_kivi_bytes_follow_the_bits_model():
    kivi = get_policy("kivi", bits=2, group=32, residual=128)
    # a whole number of residual chunks: all quantized, (2 + 2·16/32) / 16 bits of fp16
    assert kivi.memory_held_bytes(M, "fp16", 4000, 96) == pytest.approx(
        4096 * KVB * (2 + 1) / 16)
    # otherwise the last tokens (4097 mod 128 = 1) stay fp16
    assert kivi.memory_held_bytes(M, "fp16", 4000, 97) == pytest.approx(
        4096 * KVB * 3 / 16 + KVB)
    four = get_policy("kivi", bits=4, group=32, residual=128)
    assert four.memory_held_bytes(M, "fp16", 4000, 96) == pytest.approx(4096 * KVB * 5 / 16)
    with pytest.raises(InputError, match="multiple"):
        get_policy("kivi", group=32, residual=100)


def test_kivi_error_shrinks_with_bits(x):
    two = policy_fidelity(get_policy("kivi", bits=2), x)["mean_error"]
    four = policy_fidelity(get_policy("kivi", bits=4), x)["mean_error"]
    eight = policy_fidelity(get_policy("kivi", bits=8), x)["mean_error"]
    assert eight < four < two
    assert eight < 0.01


def test_relay_attention_reads_the_system_prompt_once(x):
    relay = get_policy("relay", system_len=2000)
    full = get_policy("full")
    b = 16
    saved = full.bytes_per_decode_step(M, "bf16", 2500, 10, b) \
        - relay.bytes_per_decode_step(M, "bf16", 2500, 10, b)
    assert saved == (b - 1) * 2000 * KVB
    assert relay.memory_held_bytes(M, "bf16", 2500, 10, b) == (2000 + b * 510) * KVB
    # exact: the log-sum-exp merge of two numba flash2 passes equals the full attention
    assert relay_error(get_policy("relay", system_len=100), x) < 1e-12
