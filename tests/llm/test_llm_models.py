"""Model presets: strict loading, KV bytes per token, parameter counts, weight footprint."""
import pytest

from memsim.errors import InputError, SpecError
from memsim.llm import load_model, model_from_data, model_names
from memsim.llm.footprint import weight_bytes
from memsim.llm.workload import LlmWorkload, WeightQuant

PRESETS = ["falcon-7b", "llama-2-13b", "llama-2-70b", "llama-2-7b", "llama-3-70b", "llama-3-8b",
           "mistral-7b", "opt-13b", "opt-175b", "opt-30b", "opt-6.7b"]


def test_every_preset_loads_and_cites_a_source():
    assert model_names() == PRESETS
    for name in PRESETS:
        m = load_model(name)
        assert m.name == name and len(m.source) > 40
        assert m.heads * m.head_dim == m.hidden or name == "falcon-7b"


def test_kv_bytes_per_token_exact():
    # PagedAttention §3: 2 (K, V) x 5120 x 40 layers x 2 B = 819,200 B ("800 KB")
    assert load_model("opt-13b").kv_bytes_per_token(2) == 819_200
    # papers.md 10.4: Llama-3 8B, 8 KV heads x 128, 32 layers, bf16 = 128 KiB
    assert load_model("llama-3-8b").kv_bytes_per_token(2) == 131_072
    # multi-query Falcon: one KV head of 64 -> 2 x 32 x 64 x 2 B
    assert load_model("falcon-7b").kv_bytes_per_token(2) == 8192


# Parameter counts published with the checkpoints (Hugging Face safetensors metadata /
# model cards), independent of our per-layer formula.
@pytest.mark.parametrize("name,params", [
    ("llama-2-7b", 6_738_415_616), ("llama-2-13b", 13_015_864_320),
    ("llama-2-70b", 68_976_648_192), ("llama-3-8b", 8_030_261_248),
    ("llama-3-70b", 70_553_706_496), ("mistral-7b", 7_241_732_096),
    ("falcon-7b", 6_921_720_704),
])
def test_parameter_counts_match_published(name, params):
    assert load_model(name).params() == params


def test_opt_175b_layer_weights_match_flexgen():
    # FlexGen §3 (papers.md §12): l(8 h1^2 + 4 h1 h2) bytes in fp16 = 3.479e11 B ("325 GB")
    m = load_model("opt-175b")
    assert m.linear_params() * 2 == 96 * (8 * 12288**2 + 4 * 12288 * 49152)
    assert m.linear_params() * 2 == pytest.approx(3.479e11, rel=1e-3)


def test_weight_footprint_from_parameter_counts():
    m = load_model("llama-2-7b")
    wl = LlmWorkload(m, prompt_len=16, gen_len=16)
    assert weight_bytes(wl) == 2 * 6_738_415_616
    q = WeightQuant(bits=4, group=128)                  # 0.5 B + (2 B scale + 0.5 B zero)/128
    assert q.bytes_per_weight() == 0.5 + 2.5 / 128
    wq = LlmWorkload(m, prompt_len=16, gen_len=16, weight_quant=q)
    linear = m.linear_params() + m.lm_head_params()
    assert weight_bytes(wq) == pytest.approx(linear * q.bytes_per_weight()
                                             + (m.params() - linear) * 2)
    assert weight_bytes(wq) / weight_bytes(wl) == pytest.approx(0.27, abs=0.01)


def test_model_yaml_is_strict(tmp_path):
    data = {k: v for k, v in load_model("llama-2-7b").to_dict().items()
            if k not in ("sliding_window", "position_rows")}
    data["version"] = 1
    model_from_data(dict(data))
    with pytest.raises(SpecError, match="unknown key 'hiden'"):
        model_from_data({**data, "hiden": 1})
    with pytest.raises(SpecError, match="kv_heads"):
        model_from_data({**data, "kv_heads": 5})
    with pytest.raises(SpecError, match="missing required field 'source'"):
        model_from_data({k: v for k, v in data.items() if k != "source"})
    with pytest.raises(InputError, match="unknown model 'llama-9'.*llama-2-7b"):
        load_model("llama-9")
