"""bf16/fp16 emulation: the numpy bit-pattern path and the numba frexp path agree, and known
values round to nearest, ties to even."""
import numpy as np
import pytest

from memsim.errors import InputError
from memsim.numerics import round_array
from memsim.numerics.rounding import round_scalar

CODES = {"bf16": 1, "fp16": 2, "fp32": 3}


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_numpy_and_numba_rounding_agree(name):
    rng = np.random.default_rng(5)
    # Magnitudes from subnormal to overflow of both formats, plus exact ties.
    x = (rng.standard_normal(20000) * np.exp(rng.uniform(-110, 88, 20000))).astype(np.float32)
    got = np.array([round_scalar(v, CODES[name]) for v in x], dtype=np.float32)
    np.testing.assert_array_equal(got, round_array(x, name))


def test_known_bf16_values():
    eps = 2.0 ** -8  # half a bf16 ulp at 1.0
    x = np.array([1 + eps, 1 + 3 * eps, 1 + eps + 2 ** -20, -(1 + eps), 3.4e38, np.nan],
                 dtype=np.float32)
    got = round_array(x, "bf16")
    np.testing.assert_array_equal(got[:5], [1.0, 1 + 4 * eps, 1 + 2 * eps, -1.0, np.inf])
    assert np.isnan(got[5])


def test_known_fp16_values_and_float64_input():
    x = np.array([65519.0, 65520.0, 2.0 ** -25 * 3, 1 + 2.0 ** -11], dtype=np.float64)
    got = round_array(x, "fp16")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [65504.0, np.inf, 2.0 ** -23, 1.0])
    assert [round_scalar(v, 2) for v in x] == list(got)


def test_rounding_name_is_checked():
    with pytest.raises(InputError, match='"dtype_round" must be one of'):
        round_array(np.ones(2), "fp8")
