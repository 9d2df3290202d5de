"""The cases of PyTorch 2.13's own initializer tests (test/nn/test_init.py), restated for this project.

Each case runs against ``warpinit.torch`` and, as the control, against ``torch.nn.init`` itself: the
``init`` fixture is the module under test, called exactly as code written for ``torch.nn.init`` calls
it (no ``seed=``; warpinit then draws its seeds from torch's generator). PyTorch draws the sizes and
parameters of its cases at random; here they are fixed lists spanning the same ranges, and torch's
generator is seeded before every test, so each outcome is deterministic. Every Kolmogorov-Smirnov
test rejects at significance ALPHA = 1e-3.
"""

import math
import string
import warnings

import pytest
from scipy import stats

torch = pytest.importorskip("torch")

import warpinit.torch as wt  # noqa: E402

F = torch.nn.functional
ALPHA = 1e-3


@pytest.fixture(params=["warpinit", "torch"])
def init(request):
    torch.manual_seed(1234)
    return wt if request.param == "warpinit" else torch.nn.init


def _normal(tensor, mean, std):
    return stats.kstest(tensor.reshape(-1).double().numpy(), stats.norm(mean, std).cdf).pvalue > ALPHA


def _uniform(tensor, a, b):
    return stats.kstest(tensor.reshape(-1).double().numpy(), stats.uniform(a, b - a).cdf).pvalue > ALPHA


def _truncated_normal(tensor, mean, std, a, b):
    law = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    return stats.kstest(tensor.reshape(-1).double().numpy(), law.cdf).pvalue > ALPHA


def _fans(tensor):
    receptive = tensor[0, 0].numel() if tensor.dim() > 2 else 1
    return tensor.size(1) * receptive, tensor.size(0) * receptive


# calculate_gain ------------------------------------------------------------------------------------------


def test_gain_of_linear_functions_is_one(init):
    for name in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]:
        assert init.calculate_gain(name) == 1


def test_gains_of_nonlinear_functions(init):
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == 5.0 / 3
    assert init.calculate_gain("relu") == math.sqrt(2.0)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2.0 / (1 + 0.01**2))
    assert init.calculate_gain("selu") == 0.75
    for slope, gain in [(None, math.sqrt(2.0 / 1.0001)), (0, math.sqrt(2.0)), (0.01, math.sqrt(2.0 / 1.0001)),
                        (10, math.sqrt(2.0 / 101))]:
        assert init.calculate_gain("leaky_relu", slope) == gain


def test_gain_refuses_bad_slopes_and_unknown_functions(init):
    for slope in [True, [1], {"a": "b"}]:
        with pytest.raises(ValueError):
            init.calculate_gain("leaky_relu", slope)
    for name in ["xy", "qwert", "".join(string.ascii_lowercase[:25])]:
        with pytest.raises(ValueError):
            init.calculate_gain(name)


# uniform_, normal_, trunc_normal_, constants ------------------------------------------------------------------


@pytest.mark.parametrize("size, a, b", [((41,), -2.7, -0.9), ((33, 47), 0.4, 5.1), ((30, 38, 44, 31), -1.0, 3.5)])
def test_uniform(init, size, a, b):
    tensor = torch.zeros(size)
    init.uniform_(tensor, a=a, b=b)
    assert _uniform(tensor, a, b)


@pytest.mark.parametrize("size, mean, std", [((45,), 2.2, 1.3), ((31, 50), -0.6, 4.8), ((34, 30, 42, 36), 0.0, 2.5)])
def test_normal(init, size, mean, std):
    tensor = torch.zeros(size)
    init.normal_(tensor, mean=mean, std=std)
    assert _normal(tensor, mean, std)


def test_trunc_normal_with_a_generator_equals_the_default_generator_seeded_alike(init):
    ours = init.trunc_normal_(torch.empty(2000), generator=torch.Generator().manual_seed(42))
    torch.manual_seed(42)
    assert torch.equal(ours, init.trunc_normal_(torch.empty(2000)))
    assert _truncated_normal(ours, 0.0, 1.0, -2.0, 2.0)


def test_constant_ones_and_zeros(init):
    for size in [(3,), (2, 5), (1, 4, 2, 3)]:
        tensor = torch.zeros(size)
        init.constant_(tensor, 6.25)
        assert torch.all(tensor == 6.25)
        assert torch.all(init.ones_(tensor) == 1) and torch.all(init.zeros_(tensor) == 0)


# eye_ and dirac_ -------------------------------------------------------------------------------------------------


def test_eye(init):
    tensor = init.eye_(torch.full((4, 3), 5.0))
    assert torch.equal(tensor, torch.eye(4, 3))
    for size in [(3,), (2, 3, 2)]:
        with pytest.raises(ValueError):
            init.eye_(torch.zeros(size))


@pytest.mark.parametrize("dims", [3, 4, 5])
@pytest.mark.parametrize("groups", [1, 2, 3])
def test_dirac_has_one_unit_per_preserved_channel(init, dims, groups):
    out_per_group, inputs = 4, 3 * groups - 1
    tensor = torch.randn((out_per_group * groups, inputs, 3, 4, 2)[:dims])
    init.dirac_(tensor, groups)
    preserved = min(out_per_group, inputs)
    assert torch.nonzero(tensor).size(0) == preserved * groups
    assert tensor.sum().item() == preserved * groups


@pytest.mark.parametrize("groups", [1, 3])
def test_dirac_convolutions_preserve_their_inputs(init, groups):
    batch, inputs, outputs, size, kernel = 8, 3, 9, 5, 3
    per_group = outputs // groups
    for convolution, dims in [(F.conv1d, 1), (F.conv2d, 2), (F.conv3d, 3)]:
        x = torch.randn(batch, inputs, *([size] * dims))
        weights = torch.cat([torch.zeros(per_group, inputs, *([kernel] * dims))] * groups)
        init.dirac_(weights, groups)
        y = convolution(x, weights)
        inner = (slice(None), slice(None)) + (slice(1, -1),) * dims
        for g in range(groups):
            assert torch.equal(x[inner], y[:, per_group * g: per_group * g + inputs])
            assert torch.count_nonzero(y[:, per_group * g + inputs: per_group * (g + 1)]) == 0


def test_dirac_refuses_other_ranks(init):
    for size in [(2,), (2, 2), (1, 1, 1, 1, 1, 1)]:
        with pytest.raises(ValueError):
            init.dirac_(torch.zeros(size))


# xavier_, kaiming_ ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"])
def test_fans_need_two_dimensions(init, name):
    for size in [(), (1,)]:
        with pytest.raises(ValueError):
            getattr(init, name)(torch.zeros(size))


@pytest.mark.parametrize("size", [(22, 24), (21, 23, 20, 25)])
@pytest.mark.parametrize("gain", [None, 0.35, 1.8])
def test_xavier(init, size, gain):
    arguments = {} if gain is None else {"gain": gain}
    gain = 1.0 if gain is None else gain
    tensor = init.xavier_uniform_(torch.zeros(size), **arguments)
    fan_in, fan_out = _fans(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    assert _uniform(tensor, -math.sqrt(3) * std, math.sqrt(3) * std)
    tensor = init.xavier_normal_(torch.zeros(size), **arguments)
    assert _normal(tensor, 0.0, std)


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_warns_on_zero_element_tensors(init, name):
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        getattr(init, name)(torch.empty(0, 1))


@pytest.mark.parametrize("size", [(23, 20), (20, 22, 24, 21)])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("a", [None, 0.15, 1.9])
def test_kaiming(init, size, mode, a):
    arguments = {"mode": mode} if a is None else {"a": a, "mode": mode}
    a = 0 if a is None else a
    tensor = init.kaiming_uniform_(torch.zeros(size), **arguments)
    fan_in, fan_out = _fans(tensor)
    std = math.sqrt(2.0 / ((1 + a**2) * (fan_in if mode == "fan_in" else fan_out)))
    assert _uniform(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std)
    tensor = init.kaiming_normal_(torch.zeros(size), **arguments)
    assert _normal(tensor, 0.0, std)


# sparse_, orthogonal_, the deprecated names -------------------------------------------------------------------


def test_sparse_needs_two_dimensions(init):
    for size in [(3,), (2, 3, 1)]:
        with pytest.raises(ValueError):
            init.sparse_(torch.zeros(size), 0.5)


@pytest.mark.parametrize("sparsity, std", [(0.13, None), (0.18, 0.07), (0.11, 0.19)])
def test_sparse_zeros_each_column_and_draws_normal_values(init, sparsity, std):
    tensor = torch.zeros(33, 31)
    if std is None:
        init.sparse_(tensor, sparsity=sparsity)
        std = 0.01
    else:
        init.sparse_(tensor, sparsity=sparsity, std=std)
    for column in tensor.T:
        assert (column == 0).sum() >= math.ceil(sparsity * tensor.size(0))
    assert _normal(tensor[tensor != 0], 0.0, std)


@pytest.mark.parametrize("size", [(3, 4), (4, 3), (20, 2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("gain", [None, 0.45, 1.7])
def test_orthogonal(init, size, gain):
    tensor = torch.zeros(size)
    init.orthogonal_(tensor) if gain is None else init.orthogonal_(tensor, gain=gain)
    gain = 1.0 if gain is None else gain
    flat = tensor.reshape(size[0], -1)
    gram = flat.T @ flat if flat.shape[0] > flat.shape[1] else flat @ flat.T
    # PyTorch's 1e-6, scaled with gain**2 (the entries' float32 rounding grows with it: torch's own
    # matrices miss a flat 1e-6 at gain 1.7).
    torch.testing.assert_close(gram, torch.eye(gram.shape[0]) * gain**2, atol=1e-6 * max(1.0, gain**2), rtol=0)


def test_names_without_underscore_are_deprecated(init):
    with pytest.warns(FutureWarning, match="deprecated"):
        init.normal(torch.randn(3, 3))


# trunc_normal_ per dtype -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size, mean, std, a, b", [
    ((47,), 1.9, 0.4, 1.3, 2.5),
    ((35, 42), -2.6, 0.05, -2.64, -2.52),
    ((31, 38, 44, 30), 0.3, 0.9, -1.2, 0.35),
])
def test_trunc_normal_keeps_its_bounds_in_the_tensors_precision(init, dtype, size, mean, std, a, b):
    tensor = init.trunc_normal_(torch.zeros(size, dtype=dtype), mean=mean, std=std, a=a, b=b)
    assert tensor.min().item() >= torch.tensor(a, dtype=dtype).item()
    assert tensor.max().item() <= torch.tensor(b, dtype=dtype).item()
    assert _truncated_normal(tensor.float(), mean, std, a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_trunc_normal_in_16_bits(init, dtype):
    tensor = init.trunc_normal_(torch.empty(10000, dtype=dtype), mean=0.0, std=1.0, a=-2.0, b=2.0)
    assert tensor.min().item() >= -2.0 and tensor.max().item() <= 2.0
    assert _truncated_normal(tensor.float(), 0.0, 1.0, -2.0, 2.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_trunc_normal_on_an_interval_narrow_beside_the_std(init, dtype):
    tensor = init.trunc_normal_(torch.empty(10000, dtype=dtype), mean=0.0, std=1.0, a=2.0, b=3.0)
    assert tensor.min().item() >= 2.0 and tensor.max().item() <= 3.0
    assert _truncated_normal(tensor.float(), 0.0, 1.0, 2.0, 3.0)


@pytest.mark.parametrize("dtype, fewest", [(torch.float32, 5000), (torch.float64, 5000), (torch.float16, 3000),
                                           (torch.bfloat16, 1000)])
def test_trunc_normal_spreads_over_many_values(init, dtype, fewest):
    tensor = init.trunc_normal_(torch.empty(10000, dtype=dtype), mean=0.0, std=1.0, a=-2.0, b=2.0)
    assert tensor.min().item() >= -2.0 and tensor.max().item() <= 2.0
    assert tensor.unique().numel() > fewest
    assert not tensor.isinf().any() and not tensor.isnan().any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_trunc_normal_does_not_pile_up_on_far_bounds(init, dtype):
    tensor = init.trunc_normal_(torch.empty(10000, dtype=dtype), mean=0.0, std=0.1, a=-2.0, b=2.0)
    assert (tensor == -2.0).sum().item() == 0 and (tensor == 2.0).sum().item() == 0


def test_no_warning_on_ordinary_calls(init):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init.xavier_uniform_(torch.empty(8, 8))
        init.trunc_normal_(torch.empty(8, 8), std=0.02)
