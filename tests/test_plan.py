"""Plans are kept per exact argument: the same plan as one built afresh, zero's sign and the
argument's type respected, errors raised every time, and the memory bounded."""

import numpy as np
import pytest

import warpinit as wi
from warpinit.kernels import plan

FLOAT32, FLOAT64, BFLOAT16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype("bfloat16")

CALLS = [
    (plan.uniform, (-0.5, 0.25, FLOAT32)),
    (plan.uniform, (1.0, 1.0 + 2.0**-20, FLOAT32)),  # a fine method
    (plan.normal, (0.0, 0.02, BFLOAT16)),
    (plan.truncated_normal, (0.0, 1.0, -2.0, 2.0, FLOAT32)),
    (plan.truncated_normal, (1.0, 1e-9, -1.0, 1.0, FLOAT32)),  # narrower than float32 resolves
    (plan.truncated_normal, (0.0, 1.0, 9.0, float("inf"), FLOAT64)),  # a far tail
]


@pytest.mark.parametrize("function, args", CALLS)
def test_a_kept_plan_is_the_one_built_afresh(function, args):
    kept = function(*args)
    assert function(*args) is kept
    assert kept == function.__wrapped__(*args)


def test_zeros_sign_makes_another_plan():
    positive = plan.uniform(0.0, 1.0, FLOAT32)
    negative = plan.uniform(-0.0, 1.0, FLOAT32)
    assert negative == plan.uniform.__wrapped__(-0.0, 1.0, FLOAT32)
    assert np.signbit(negative.params[0]) and not np.signbit(positive.params[0])


def test_other_argument_types_are_built_afresh_each_time():
    # np.float32(0.1) == 0.1 is False, np.float64(0.1) == 0.1 is True: neither reaches the kept plans.
    for value in (np.float32(0.1), np.float64(0.1), 1):
        first, second = plan.normal(0.0, value, FLOAT32), plan.normal(0.0, value, FLOAT32)
        assert first == second == plan.normal.__wrapped__(0.0, value, FLOAT32)
        assert first is not second
    assert plan.normal(mean=0.0, stddev=1.0, dtype=FLOAT32) == plan.normal(0.0, 1.0, FLOAT32)


def test_a_request_that_raises_raises_every_time():
    for _ in range(3):
        with pytest.raises(ValueError, match="minval must be < maxval"):
            plan.uniform(1.0, 0.5, FLOAT32)
        with pytest.raises(ValueError, match="stddev must be finite and > 0"):
            wi.normal(4, stddev=-1.0, seed=0)


def test_the_kept_plans_are_bounded(monkeypatch):
    monkeypatch.setattr(plan, "MEMO_SIZE", 0)  # past the bound: built each call, still right
    first, second = plan.uniform(-3.0, 7.0, FLOAT32), plan.uniform(-3.0, 7.0, FLOAT32)
    assert first == second and first is not second


def test_samples_are_unchanged_by_a_kept_plan():
    fresh = wi.truncated_normal((3, 1000), stddev=0.02, seed=4, dtype="bfloat16")
    again = wi.truncated_normal((3, 1000), stddev=0.02, seed=4, dtype="bfloat16")
    assert np.asarray(fresh).tobytes() == np.asarray(again).tobytes()
