"""warpinit.torch: torch.nn.init's signatures, errors and distributions, the seed contract (equal to the array
API, generator behaviour), dtypes, non-contiguous tensors, and initialize() (torch's distributions, meta-device
models, grouping independence, weight=/bias= choices).

Every statistical test uses fixed seeds and rejects at significance ALPHA = 1e-3, so its outcome is
deterministic. CUDA tests run only where torch sees a GPU and CuPy is installed.
"""

import functools
import inspect
import math
import warnings

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")

import warpinit as wi  # noqa: E402
import warpinit.torch as wt  # noqa: E402
from warpinit import _whole_model  # noqa: E402

nn = torch.nn
ALPHA = 1e-3
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
NAMES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32", torch.float64: "float64"}
FUNCTIONS = ["uniform_", "normal_", "trunc_normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
             "kaiming_normal_", "orthogonal_"]
# torch's deprecated names without the underscore, each with arguments that fit it.
ALIASES = {"uniform": (), "normal": (), "constant": (0.5,), "eye": (), "dirac": (), "xavier_uniform": (),
           "xavier_normal": (), "kaiming_uniform": (), "kaiming_normal": (), "orthogonal": (), "sparse": (0.5,)}


def bits(tensor):
    """The raw bits of a float tensor, for bit-for-bit comparisons (bfloat16 included)."""
    tensor = tensor.detach().contiguous()
    return tensor.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()]).numpy()


def as_numpy(array):
    """A NumPy array of warpinit's (ml_dtypes bfloat16 included) as float64."""
    return np.asarray(array).astype(np.float64)


# The drop-in contract -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCTIONS + ["sparse_"])
def test_signatures_extend_torch(name):
    ours = list(inspect.signature(getattr(wt, name)).parameters.values())
    theirs = list(inspect.signature(getattr(nn.init, name)).parameters.values())
    assert [(p.name, p.default, p.kind) for p in ours[: len(theirs)]] == \
        [(p.name, p.default, p.kind) for p in theirs]
    assert [(p.name, p.default, p.kind) for p in ours[len(theirs):]] == \
        [("seed", None, inspect.Parameter.KEYWORD_ONLY), ("stream", 0, inspect.Parameter.KEYWORD_ONLY)]
    assert getattr(wt, name).__doc__ and "{seed_args}" not in getattr(wt, name).__doc__


def test_every_public_name_of_torch_nn_init():
    """Every function torch.nn.init defines (its __all__, and nothing it merely imports, such as Tensor)."""
    defined = {name for name in dir(nn.init) if not name.startswith("_") and callable(getattr(nn.init, name))
               and getattr(getattr(nn.init, name), "__module__", None) == "torch.nn.init"}
    assert defined == set(nn.init.__all__)
    assert {name for name in dir(wt) if callable(getattr(wt, name))} >= defined
    assert set(wt.__all__) >= defined and set(wt.__all__) <= set(dir(wt))
    assert wt.eye_ is nn.init.eye_ and wt.dirac_ is nn.init.dirac_ and wt.constant is nn.init.constant


@pytest.mark.parametrize("name", list(ALIASES))
def test_deprecated_names_warn_like_torchs(name):
    shape = (4, 3, 3) if name == "dirac" else (4, 3)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        getattr(nn.init, name)(torch.empty(shape), *ALIASES[name])
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        result = getattr(wt, name)(torch.empty(shape), *ALIASES[name])
    assert [(w.category, str(w.message)) for w in ours] == [(w.category, str(w.message)) for w in theirs]
    assert ours[0].category is FutureWarning and ours[0].filename == __file__  # at the caller, as torch's
    assert result.shape == shape
    if name in ("constant", "eye", "dirac"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        aliased = getattr(wt, name)(torch.empty(shape), *ALIASES[name], seed=9, stream=2)
    assert torch.equal(aliased, getattr(wt, name + "_")(torch.empty(shape), *ALIASES[name], seed=9, stream=2))


def test_calculate_gain_matches_torch():
    for nonlinearity in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                         "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]:
        assert wt.calculate_gain(nonlinearity) == nn.init.calculate_gain(nonlinearity)
    assert wt.calculate_gain("leaky_relu", 0.2) == nn.init.calculate_gain("leaky_relu", 0.2)
    for arguments in [("swish",), ("leaky_relu", "x")]:
        with pytest.raises(ValueError) as theirs:
            nn.init.calculate_gain(*arguments)
        with pytest.raises(ValueError, match=str(theirs.value)):
            wt.calculate_gain(*arguments)
    assert wt.zeros_ is nn.init.zeros_ and "initialize" in wt.__all__


# Same values as the array API, every dtype ----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_equals_the_array_api(dtype):
    name = NAMES[dtype]
    shape = (6, 2, 5)
    t = torch.empty(shape, dtype=dtype)
    assert wt.uniform_(t, -1.0, 3.0, seed=11, stream=2) is t
    assert np.array_equal(bits(t), wi.uniform(shape, minval=-1.0, maxval=3.0, dtype=name, seed=11, stream=2,
                                              device="cpu").view(bits(t).dtype))
    wt.normal_(t, 0.5, 2.0, seed=2**64 - 1)
    assert np.array_equal(bits(t), wi.normal(shape, mean=0.5, stddev=2.0, dtype=name, seed=2**64 - 1,
                                             device="cpu").view(bits(t).dtype))
    # mean=1, std=2, a=-3, b=5: exactly -2 and +2 standard deviations
    wt.trunc_normal_(t, 1.0, 2.0, -3.0, 5.0, seed=5, stream=7)
    expected = wi.truncated_normal(shape, mean=1.0, stddev=2.0, lower=-2.0, upper=2.0, dtype=name, seed=5,
                                   stream=7, device="cpu")
    assert np.array_equal(bits(t), expected.view(bits(t).dtype))
    # torch's flattening: rows = size(0), cols = numel // rows
    wt.orthogonal_(t, gain=2.0, seed=3)
    expected = wi.orthogonal((6, 10), gain=2.0, dtype=name, seed=3, device="cpu").reshape(shape)
    assert np.array_equal(bits(t), expected.view(bits(t).dtype))


def test_variance_scaling_equals_uniform_and_normal_with_torchs_formulas():
    t, u = torch.empty(32, 12, 3), torch.empty(32, 12, 3)
    fan_in, fan_out = 36, 96
    bound = 1.5 * math.sqrt(6.0 / (fan_in + fan_out))
    assert torch.equal(wt.xavier_uniform_(t, 1.5, seed=1), wt.uniform_(u, -bound, bound, seed=1))
    assert torch.equal(wt.xavier_normal_(t, 1.5, seed=1), wt.normal_(u, 0.0, bound / math.sqrt(3.0), seed=1))
    gain = math.sqrt(2.0 / (1 + 0.2**2))
    bound = gain * math.sqrt(3.0 / fan_out)
    assert torch.equal(wt.kaiming_uniform_(t, 0.2, "fan_out", seed=4), wt.uniform_(u, -bound, bound, seed=4))
    std = math.sqrt(2.0) / math.sqrt(fan_in)
    assert torch.equal(wt.kaiming_normal_(t, nonlinearity="relu", seed=4), wt.normal_(u, 0.0, std, seed=4))


# Statistics against torch's own distributions --------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_basic_distributions_ks(dtype):
    t = torch.empty(200, 100, dtype=dtype)
    x = wt.uniform_(t, -2.0, 3.0, seed=1).double().numpy().ravel()
    assert stats.kstest(x, stats.uniform(-2.0, 5.0).cdf).pvalue > ALPHA
    x = wt.normal_(t, -1.0, 0.5, seed=2).double().numpy().ravel()
    assert stats.kstest(x, stats.norm(-1.0, 0.5).cdf).pvalue > ALPHA
    for mean, std, a, b in [(0.0, 1.0, -2.0, 2.0), (0.5, 2.0, -1.0, 4.0), (0.0, 1.0, 2.5, math.inf),
                            (0.0, 1.0, -math.inf, -3.0), (1.0, 0.1, 1.0, 1.001), (0.0, 0.02, -0.04, 0.04)]:
        x = wt.trunc_normal_(t, mean, std, a, b, seed=3).double().numpy().ravel()
        assert a <= x.min() and x.max() <= b
        law = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
        assert stats.kstest(x, law.cdf).pvalue > ALPHA, (mean, std, a, b)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("leaky_relu", 0), ("leaky_relu", math.sqrt(5)), ("relu", 0),
                                             ("tanh", 0), ("selu", 0), ("linear", 0)])
def test_kaiming_ks_per_mode_and_nonlinearity(mode, nonlinearity, a):
    t = torch.empty(48, 40, 5)
    fan = 40 * 5 if mode == "fan_in" else 48 * 5
    std = nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    x = wt.kaiming_normal_(t, a, mode, nonlinearity, seed=8).numpy().ravel()
    assert stats.kstest(x, stats.norm(0.0, std).cdf).pvalue > ALPHA
    assert abs(x.std() / std - 1) < 0.05
    bound = math.sqrt(3.0) * std
    x = wt.kaiming_uniform_(t, a, mode.upper(), nonlinearity, seed=9).numpy().ravel()  # torch lowers the mode
    assert stats.kstest(x, stats.uniform(-bound, 2 * bound).cdf).pvalue > ALPHA
    assert abs(x.std() / std - 1) < 0.05


@pytest.mark.parametrize("gain", [1.0, 0.3])
def test_xavier_ks(gain):
    t = torch.empty(100, 60, 2)
    std = gain * math.sqrt(2.0 / (120 + 200))
    x = wt.xavier_normal_(t, gain, seed=1).numpy().ravel()
    assert stats.kstest(x, stats.norm(0.0, std).cdf).pvalue > ALPHA
    x = wt.xavier_uniform_(t, gain, seed=2).numpy().ravel()
    assert stats.kstest(x, stats.uniform(-math.sqrt(3) * std, 2 * math.sqrt(3) * std).cdf).pvalue > ALPHA
    assert abs(x.std() / std - 1) < 0.05


@pytest.mark.parametrize("dtype", DTYPES)
def test_16_bit_and_wide_dtypes_keep_the_bounds_exactly(dtype):
    t = torch.empty(300, 200, dtype=dtype)
    for mean, std, a, b in [(0.0, 1.0, -2.0, 2.0), (0.3, 0.7, 0.1, 0.35), (0.0, 1.0, 3.0, 3.5)]:
        x = wt.trunc_normal_(t, mean, std, a, b, seed=4).double()
        assert t.dtype == dtype and a <= x.min().item() and x.max().item() <= b
    x = wt.uniform_(t, -1.0, 1.0, seed=5).double()
    assert -1.0 <= x.min().item() and x.max().item() < 1.0
    if dtype == torch.float64:  # bounds far below the mean's ulp in sigma units: still exact, and no hang
        x = wt.trunc_normal_(t, 1e6, 1e-3, 1e6 - 2e-3, 1e6 + 2e-3, seed=6)
        assert 1e6 - 2e-3 <= x.min().item() and x.max().item() <= 1e6 + 2e-3
    x = wt.normal_(t, 0.0, 1.0, seed=6).double().numpy().ravel()
    assert np.isfinite(x).all() and abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02


@pytest.mark.parametrize("dtype, tolerance", [(torch.float16, 4e-3), (torch.bfloat16, 3e-2),
                                              (torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(40, 12), (8, 3, 10), (5, 5)])
def test_orthogonal_every_dtype(dtype, tolerance, shape):
    t = torch.empty(shape, dtype=dtype)
    q = wt.orthogonal_(t, gain=1.0, seed=7).double().reshape(shape[0], -1)
    gram = q.T @ q if q.shape[0] >= q.shape[1] else q @ q.T
    assert (gram - torch.eye(gram.shape[0], dtype=torch.float64)).abs().max().item() < tolerance
    scaled = wt.orthogonal_(torch.empty(shape, dtype=dtype), gain=-2.0, seed=7).double().reshape(q.shape)
    assert torch.allclose(scaled, -2.0 * q, rtol=tolerance, atol=0)


def test_orthogonal_is_haar_like_torchs():
    """The first entry of a Haar 3x3 orthogonal matrix: q^2 ~ Beta(1/2, 1), symmetric sign; torch's agrees."""
    t = torch.empty(3, 3)
    ours = np.array([wt.orthogonal_(t, seed=seed)[0, 0].item() for seed in range(400)])
    assert stats.kstest(ours**2, stats.beta(0.5, 1.0).cdf).pvalue > ALPHA
    generator = torch.Generator().manual_seed(0)
    theirs = np.array([nn.init.orthogonal_(t, generator=generator)[0, 0].item() for _ in range(400)])
    assert stats.ks_2samp(ours, theirs).pvalue > ALPHA


# Seeds and generators ---------------------------------------------------------------------------------


def test_seed_and_stream_contract():
    a, b = torch.empty(50, 20), torch.empty(50, 20)
    assert torch.equal(wt.normal_(a, seed=1), wt.normal_(b, seed=1))
    assert not torch.equal(wt.normal_(a, seed=1).clone(), wt.normal_(b, seed=1, stream=1))
    assert not torch.equal(wt.normal_(a, seed=1).clone(), wt.normal_(b, seed=2))


def test_seed_none_draws_from_torchs_generator():
    a, b = torch.empty(30, 10), torch.empty(30, 10)
    torch.manual_seed(0)
    first = wt.xavier_uniform_(a).clone()
    second = wt.xavier_uniform_(a).clone()
    assert not torch.equal(first, second)  # each call advances the generator
    torch.manual_seed(0)
    assert torch.equal(wt.xavier_uniform_(b), first)
    # The documented rule: the seed is two 32-bit words drawn from the generator, low word first.
    generator = torch.Generator().manual_seed(123)
    state = torch.get_rng_state()
    wt.normal_(a, generator=generator)
    assert torch.equal(torch.get_rng_state(), state)  # the default generator is untouched
    low, high = torch.randint(0, 2**32, (2,), dtype=torch.int64, generator=torch.Generator().manual_seed(123))
    assert torch.equal(a, wt.normal_(b, seed=(int(high) << 32) | int(low)))
    # Positional generator, as in torch.nn.init.
    assert torch.equal(wt.uniform_(a, 0.0, 1.0, torch.Generator().manual_seed(5)),
                       wt.uniform_(b, 0.0, 1.0, torch.Generator().manual_seed(5)))


# Errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, arguments", [
    ("xavier_uniform_", ()), ("xavier_normal_", ()), ("kaiming_uniform_", ()), ("kaiming_normal_", ()),
    ("orthogonal_", ()), ("kaiming_uniform_", (0, "fan_avg")), ("kaiming_normal_", (0, "fan_in", "swish")),
])
def test_errors_like_torchs(name, arguments):
    shape = (5,) if not arguments else (4, 3)
    with pytest.raises(Exception) as theirs:
        getattr(nn.init, name)(torch.empty(shape), *arguments)
    t = torch.full(shape, 7.0)
    with pytest.raises(type(theirs.value)) as ours:
        getattr(wt, name)(t, *arguments, seed=1)
    assert str(ours.value) == str(theirs.value)
    assert torch.all(t == 7.0)


@pytest.mark.parametrize("call, error, match", [
    (lambda t: wt.normal_(t, seed=2**64), ValueError, r"normal_: seed must be in \[0, 2\*\*64\)"),
    (lambda t: wt.normal_(t, seed=-1), ValueError, "seed"),
    (lambda t: wt.normal_(t, seed=1.5), TypeError, "seed"),
    (lambda t: wt.normal_(t, seed=1, stream=2**32), ValueError, "stream"),
    (lambda t: wt.normal_(t, std=-1.0, seed=1), ValueError, "std must be >= 0"),
    (lambda t: wt.normal_(t, mean=math.nan, seed=1), ValueError, "mean"),
    (lambda t: wt.normal_(t, std="1", seed=1), TypeError, "std"),
    (lambda t: wt.uniform_(t, 2.0, 1.0, seed=1), ValueError, "a must be <= b, got a=2.0, b=1.0"),
    (lambda t: wt.uniform_(t, 0.0, math.inf, seed=1), ValueError, "uniform_: b must be finite"),
    (lambda t: wt.trunc_normal_(t, a=1.0, b=1.0, seed=1), ValueError, "trunc_normal_: a must be < b"),
    (lambda t: wt.trunc_normal_(t, std=0.0, seed=1), ValueError, "std must be > 0"),
    (lambda t: wt.trunc_normal_(t, a=math.nan, seed=1), ValueError, "a must be a number"),
    (lambda t: wt.xavier_uniform_(t, gain=-1.0, seed=1), ValueError, "gain must be >= 0"),
    (lambda t: wt.orthogonal_(t, gain=math.inf, seed=1), ValueError, "gain"),
    (lambda t: wt.normal_(t, seed=1, generator=torch.Generator()), ValueError, "not both"),
    (lambda t: wt.normal_(t, generator=3), TypeError, "generator"),
    (lambda t: wt.normal_(t.to(torch.int64), seed=1), TypeError, "torch.int64"),
    (lambda t: wt.normal_(t.to_sparse(), seed=1), TypeError, "dense"),
    (lambda t: wt.normal_(t.numpy(), seed=1), TypeError, "torch.Tensor"),
    (lambda t: wt.normal_(t.half(), std=1e-9, seed=1), ValueError, "normal_: stddev=1e-09 is not representable"),
])
def test_errors_name_the_parameter(call, error, match):
    t = torch.full((4, 3), 7.0)
    with pytest.raises(error, match=match):
        call(t)
    assert torch.all(t == 7.0)


def test_no_ops_like_torch():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        empty = wt.kaiming_uniform_(torch.empty(0, 3), seed=1)
    assert empty.shape == (0, 3) and "zero-element" in str(caught[0].message)
    assert caught[0].filename == __file__  # warned at the caller, as torch does
    meta = torch.empty(5, 4, device="meta")
    for name in FUNCTIONS:
        assert getattr(wt, name)(meta) is meta
    assert wt.sparse_(meta, 0.5) is meta
    assert torch.all(wt.uniform_(torch.empty(3), 2.0, 2.0) == 2.0)  # torch fills a when a == b
    assert torch.all(wt.normal_(torch.empty(3), 1.5, 0.0) == 1.5)
    assert torch.all(wt.xavier_uniform_(torch.empty(3, 2), gain=0.0) == 0.0)
    assert wt.normal_(torch.empty(()), seed=1).shape == ()


# sparse_ ----------------------------------------------------------------------------------------------------


def _zeroed_rows(rows, cols, sparsity, seed, stream):
    """The documented rule: the ceil(sparsity * rows) rows of each column with the smallest uniforms of
    the seed derived with the tag "SPARSE__"."""
    from warpinit.kernels.philox import derive_seed

    tag = int.from_bytes(b"SPARSE__", "big")
    keys = wi.uniform((rows, cols), dtype="float64", seed=derive_seed(seed, tag), stream=stream, device="cpu")
    mask = np.zeros((rows, cols), bool)
    order = np.argsort(keys, axis=0, kind="stable")[: math.ceil(sparsity * rows)]
    np.put_along_axis(mask, order, True, axis=0)
    return mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, cols, sparsity", [(30, 7, 0.1), (5, 40, 0.5), (64, 3, 0.97)])
def test_sparse_values_and_zeros_follow_the_seed(dtype, rows, cols, sparsity):
    t = torch.full((rows, cols), 7.0, dtype=dtype)
    assert wt.sparse_(t, sparsity, std=0.3, seed=11, stream=4) is t
    zeros = _zeroed_rows(rows, cols, sparsity, 11, 4)
    assert torch.equal(torch.from_numpy(zeros), t == 0)
    assert ((t == 0).sum(0) == math.ceil(sparsity * rows)).all()  # each column, exactly (normals are never 0)
    values = wt.normal_(torch.empty(rows, cols, dtype=dtype), 0.0, 0.3, seed=11, stream=4)
    assert torch.equal(t[t != 0], values[t != 0])
    assert not torch.equal(t, wt.sparse_(torch.empty(rows, cols, dtype=dtype), sparsity, 0.3, seed=11, stream=5))


def test_sparse_zeros_are_uniform_and_independent_across_columns():
    rows, cols, sparsity = 10, 20000, 0.3
    t = wt.sparse_(torch.empty(rows, cols, dtype=torch.float64), sparsity, seed=2)
    zeros = (t == 0).numpy()
    # Every row is zeroed in a column with probability 3/10: chi-square over the rows' counts.
    counts = zeros.sum(1)
    assert stats.chisquare(counts).pvalue > ALPHA
    # Which rows a column zeroes does not depend on the previous column: the overlap of neighbours is
    # hypergeometric (3 of 10 chosen, 3 marked).
    overlap = (zeros[:, 1:] & zeros[:, :-1]).sum(0)
    law = stats.hypergeom(rows, 3, 3)
    observed = np.bincount(overlap, minlength=4)
    assert stats.chisquare(observed, law.pmf(np.arange(4)) * overlap.size).pvalue > ALPHA
    x = t[t != 0].numpy()
    assert stats.kstest(x, stats.norm(0.0, 0.01).cdf).pvalue > ALPHA


def test_sparse_seed_none_draws_one_seed_from_torchs_generator():
    a, b = torch.empty(12, 6), torch.empty(12, 6)
    torch.manual_seed(3)
    wt.sparse_(a, 0.25)
    torch.manual_seed(3)
    seed = _torch_seed()
    assert torch.equal(a, wt.sparse_(b, 0.25, seed=seed))
    generator = torch.Generator().manual_seed(8)
    state = torch.get_rng_state()
    wt.sparse_(a, 0.25, std=2.0, generator=generator)  # positional generator, as torch's
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, wt.sparse_(b, 0.25, 2.0, torch.Generator().manual_seed(8)))


def _torch_seed():
    low, high = torch.randint(0, 2**32, (2,), dtype=torch.int64)
    return (int(high) << 32) | int(low)


def test_sparse_edge_cases_and_errors():
    assert torch.equal(wt.sparse_(torch.empty(6, 4), 0.0, 0.5, seed=1), wt.normal_(torch.empty(6, 4), 0.0, 0.5, seed=1))
    assert torch.all(wt.sparse_(torch.full((6, 4), 3.0), 1.0, seed=1) == 0)  # every row of every column
    assert torch.all(wt.sparse_(torch.full((6, 4), 3.0), 0.5, std=0.0, seed=1) == 0)
    assert wt.sparse_(torch.empty(0, 4), 0.5, seed=1).shape == (0, 4)
    for shape in [(5,), (2, 3, 4)]:
        with pytest.raises(ValueError) as theirs:
            nn.init.sparse_(torch.empty(shape), 0.5)
        with pytest.raises(ValueError, match=f"^{theirs.value}$"):
            wt.sparse_(torch.empty(shape), 0.5, seed=1)
    t = torch.full((4, 3), 7.0)
    for arguments, error, match in [((1.5,), ValueError, r"sparse_: sparsity must be in \[0, 1\]"),
                                    ((-0.1,), ValueError, "sparsity must be in"),
                                    ((math.nan,), ValueError, "sparsity must be finite"),
                                    (("half",), TypeError, "sparsity must be a real number"),
                                    ((0.5, -1.0), ValueError, "std must be >= 0"),
                                    ((0.5, 1e-9), ValueError, "is not representable")]:
        with pytest.raises(error, match=match):
            wt.sparse_(t.half() if arguments[1:] == (1e-9,) else t, *arguments, seed=1)
    assert torch.all(t == 7.0)


def test_initialize_with_sparse_draws_the_in_place_function():
    model = nn.Sequential(nn.Linear(20, 30), nn.Linear(30, 30))
    wt.initialize(model, seed=5, weight=functools.partial(wt.sparse_, sparsity=0.2, std=0.05), bias=0.0)
    for index in (0, 1):
        weight = model[index].weight
        expected = wt.sparse_(torch.empty(weight.shape), 0.2, 0.05, seed=wt.parameter_seed(5, f"{index}.weight"))
        assert torch.equal(weight, expected)


# Tensors: views, autograd --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_non_contiguous_tensors(dtype):
    name = NAMES[dtype]
    base = torch.full((40, 30), 9.0, dtype=dtype)
    transposed = base.T
    wt.normal_(transposed, seed=4)
    expected = wi.normal((30, 40), dtype=name, seed=4, device="cpu")
    assert np.array_equal(as_numpy(transposed.double().numpy()), as_numpy(expected))
    base.fill_(9.0)
    strided = base[:, ::2]
    wt.orthogonal_(strided, seed=5)
    assert np.array_equal(as_numpy(strided.double().numpy()),
                          as_numpy(wi.orthogonal((40, 15), dtype=name, seed=5, device="cpu")))
    assert torch.all(base[:, 1::2] == 9.0)  # the rest untouched
    offset = torch.full((10, 8), 9.0, dtype=dtype)
    wt.uniform_(offset[3:6], seed=6)  # contiguous view with a storage offset: filled in place
    assert np.array_equal(as_numpy(offset[3:6].double().numpy()),
                          as_numpy(wi.uniform((3, 8), dtype=name, seed=6, device="cpu")))
    assert torch.all(offset[:3] == 9.0) and torch.all(offset[6:] == 9.0)


def test_parameters_that_require_grad():
    weight = nn.Parameter(torch.zeros(8, 4))
    version = weight._version
    assert wt.kaiming_normal_(weight, seed=1) is weight
    assert weight.requires_grad and weight.grad_fn is None and weight._version > version
    assert weight.abs().sum() > 0


# initialize() -------------------------------------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.ConvTranspose1d(8, 4, 5))
        self.embed = nn.Embedding(50, 16, padding_idx=3)
        self.attention = nn.MultiheadAttention(16, 4, add_bias_kv=True)
        self.rnn = nn.LSTM(16, 12)
        self.bilinear = nn.Bilinear(6, 5, 7)
        self.mlp = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.LayerNorm(64), nn.Linear(64, 16), nn.Linear(16, 16))
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.embed.weight  # tied


def states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_initialize_draws_torchs_distributions():
    torch.manual_seed(0)
    theirs, ours = Net(), Net()
    assert wt.initialize(ours, seed=12) == 12
    reference = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        x, y = parameter.detach().numpy().ravel(), reference[name].detach().numpy().ravel()
        assert np.array_equal(x == 0, y == 0) or x.size < 5, name  # zero biases, padding row, LayerNorm
        if x.size >= 100:
            assert stats.ks_2samp(x, y).pvalue > ALPHA, name
    assert torch.all(ours.embed.weight[3] == 0) and ours.head.weight is ours.embed.weight
    assert not torch.equal(ours.mlp[0].weight, theirs.mlp[0].weight)


def test_initialize_equals_the_in_place_functions_with_parameter_seeds():
    model = nn.Sequential(nn.Linear(20, 30), nn.Conv1d(4, 6, 3))
    seed = wt.initialize(model, seed=99)
    weight = wt.kaiming_uniform_(torch.empty(30, 20), a=math.sqrt(5), seed=wt.parameter_seed(seed, "0.weight"))
    assert torch.equal(model[0].weight, weight)
    bias = wt.uniform_(torch.empty(30), -1 / math.sqrt(20), 1 / math.sqrt(20), seed=wt.parameter_seed(seed, "0.bias"))
    assert torch.equal(model[0].bias, bias)
    bound = 1 / math.sqrt(12)
    assert torch.equal(model[1].bias, wt.uniform_(torch.empty(6), -bound, bound, seed=wt.parameter_seed(99, "1.bias")))


def test_meta_model_equals_the_normally_built_one():
    torch.manual_seed(1)
    built = Net()
    with torch.device("meta"):
        deferred = Net()
    deferred.head.weight.custom_flag = True  # parameter attributes survive materialization
    assert deferred.head.weight is deferred.embed.weight
    wt.initialize(built, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left uninitialized
        assert wt.initialize(deferred, seed=3) == 3
    assert states_equal(built, deferred)
    assert deferred.head.weight is deferred.embed.weight and deferred.embed.weight.custom_flag
    assert all(not t.is_meta for t in list(deferred.parameters()) + list(deferred.buffers()))
    assert torch.all(deferred.features[1].running_var == 1)  # BatchNorm reset by its own reset_parameters
    # The materialized model runs, its LSTM included (it caches its flat weights).
    out, _ = deferred.rnn(torch.randn(3, 2, 16))
    assert out.shape == (3, 2, 12) and torch.isfinite(out).all()


def test_meta_materialization_refuses_tensors_nothing_initializes():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(4))

    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 4), Scale())
    with pytest.raises(ValueError, match=r"1 materialized tensor\(s\) would hold uninitialized memory.*: 1.scale"):
        wt.initialize(model, seed=0, device="cpu")
    assert model[1].scale.is_meta and model[0].weight.is_meta  # put back: nothing holds garbage
    wt.initialize(model, seed=0, device="cpu", allow_uninitialized=True)  # accepted explicitly
    assert model[1].scale.device.type == "cpu" and model[0].weight.device.type == "cpu"
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 4), Scale())
    wt.initialize(model, seed=0, device="cpu", init_fn=lambda m: (m[0].reset_parameters(), nn.init.ones_(m[1].scale)))
    assert torch.equal(model[1].scale, torch.ones(4))


def test_partly_meta_model_is_initialized_whole():
    norm = nn.LayerNorm(4)
    with torch.no_grad():
        norm.weight.fill_(5.0)
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 4))
    model.append(norm)
    wt.initialize(model, seed=0)
    # the meta part materialized, and the whole module initialized its own way (LayerNorm: ones)
    assert torch.all(model[1].weight == 1.0) and model[0].weight.device.type == "cpu"


def test_grouping_does_not_change_values(monkeypatch):
    def stack():
        return nn.Sequential(*[nn.Linear(32, 32) for _ in range(5)], nn.Linear(32, 8))

    batched = stack()
    wt.initialize(batched, seed=4)
    monkeypatch.setattr(_whole_model, "DIRECT_BYTES", 1)  # every parameter straight into its storage
    direct = stack()
    wt.initialize(direct, seed=4)
    assert states_equal(batched, direct)
    monkeypatch.setattr(_whole_model, "DIRECT_BYTES", 1 << 30)
    monkeypatch.setattr(_whole_model, "SCRATCH_BYTES", 32 * 32 * 4 * 2)  # chunks of two weights
    chunked = stack()
    wt.initialize(chunked, seed=4)
    assert states_equal(batched, chunked)
    # Same names in another arrangement (other groups, other containers): the same values.
    other = nn.ModuleDict({"2": nn.Linear(32, 32), "5": nn.Linear(32, 8), "9": nn.Conv2d(2, 2, 1)})
    wt.initialize(other, seed=4)
    for name, parameter in other.named_parameters():
        if not name.startswith("9."):
            assert torch.equal(parameter, batched.get_parameter(name)), name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_initialize_other_dtypes_and_channels_last(dtype):
    def make():
        return nn.Sequential(nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 8, 3), nn.Linear(8, 8),
                             nn.Linear(8, 8))

    model = make().to(dtype)
    model[:3].to(memory_format=torch.channels_last)  # a group of two and a lone one, both non-contiguous
    assert not model[0].weight.is_contiguous()
    wt.initialize(model, seed=2)
    reference = make().to(dtype)  # contiguous: the same values
    wt.initialize(reference, seed=2)
    for (name, ours), theirs in zip(model.named_parameters(), reference.parameters()):
        assert ours.dtype == dtype and torch.equal(ours, theirs), name
    if dtype != torch.float64:  # 16-bit: the float32 draws rounded (but for rare redraws at the bounds)
        single = make()
        wt.initialize(single, seed=2)
        ours, theirs = model[3].weight.double(), single[3].weight.double()
        assert (torch.isclose(ours, theirs, rtol=1e-2, atol=0).double().mean()) > 0.95
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_initialize_weight_and_bias_choices():
    def make():
        return nn.Sequential(nn.Linear(16, 32), nn.Linear(32, 8), nn.Embedding(10, 8, padding_idx=0))

    model = make()
    # torch's trunc_normal_ bounds are absolute: +-2 standard deviations of 0.02 are a, b = -+0.04
    wt.initialize(model, seed=1, weight=functools.partial(wt.trunc_normal_, std=0.02, a=-0.04, b=0.04), bias=0.0)
    assert all(torch.all(layer.bias == 0) for layer in model[:2])
    assert model[0].weight.abs().max() <= 0.04 and torch.all(model[2].weight[0] == 0)
    expected = wt.trunc_normal_(torch.empty(32, 16), std=0.02, a=-0.04, b=0.04, seed=wt.parameter_seed(1, "0.weight"))
    assert torch.equal(model[0].weight, expected)

    model = make()
    wt.initialize(model, seed=1, weight="orthogonal")
    w = model[0].weight.detach()
    assert torch.allclose(w.T @ w, torch.eye(16), atol=1e-5)

    model = make()
    wt.initialize(model, seed=1, weight={nn.Embedding: functools.partial(wt.normal_, 0.0, 0.02)},
                  bias={nn.Linear: nn.init.ones_})  # any callable: called as is
    assert model[2].weight.std() < 0.05 and torch.all(model[0].bias == 1)
    assert model[0].weight.abs().max() <= 1 / 4  # Linear weights keep torch's default
    default = make()
    wt.initialize(default, seed=1)
    assert torch.equal(model[0].weight, default[0].weight)


@pytest.mark.parametrize("arguments, error, match", [
    ({"weight": "glorot"}, ValueError, "unknown weight initializer 'glorot'"),
    ({"weight": functools.partial(wt.normal_, seed=3)}, ValueError, "fixes seed="),
    ({"weight": functools.partial(wt.normal_, nope=3)}, TypeError, "does not fit normal_"),
    ({"bias": "xavier_uniform"}, ValueError, "parameter '0.bias'.*fewer than 2 dimensions"),
    ({"weight": {"Linear": wt.normal_}}, TypeError, "Module classes"),
    ({"weight": True}, TypeError, "weight"),
    ({"seed": 2**64}, ValueError, "seed"),
    ({"seed": 1, "generator": torch.Generator()}, ValueError, "not both"),
    ({"device": "cpu"}, ValueError, "has none"),
])
def test_initialize_errors_leave_the_module_untouched(arguments, error, match):
    model = nn.Sequential(nn.Linear(4, 4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error, match=match):
        wt.initialize(model, **{"seed": 0, **arguments})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        wt.initialize(torch.empty(3))
    with pytest.raises(ValueError, match="lazy"):
        wt.initialize(nn.LazyLinear(3))


def test_initialize_wrappers_and_parametrizations():
    model = nn.Sequential(nn.Linear(6, 6), nn.Linear(6, 3))
    wrapper = nn.Module()
    wrapper._orig_mod = nn.Sequential(nn.Linear(6, 6), nn.Linear(6, 3))  # as torch.compile wraps a model
    wt.initialize(model, seed=8)
    wt.initialize(wrapper, seed=8)
    assert states_equal(model, wrapper._orig_mod)  # the model's own names, not "_orig_mod.0.weight"
    layer = nn.utils.parametrizations.orthogonal(nn.Linear(5, 5))
    original = layer.parametrizations.weight.original.detach().clone()
    wt.initialize(layer, seed=8)  # a parametrized weight is the parametrization's business: left alone
    assert torch.equal(layer.parametrizations.weight.original, original)
    assert torch.equal(layer.bias, wt.uniform_(torch.empty(5), -1 / math.sqrt(5), 1 / math.sqrt(5),
                                               seed=wt.parameter_seed(8, "bias")))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without a GPU")
def test_initialize_on_cuda_without_a_gpu_fails_before_materializing():
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    with pytest.raises(RuntimeError, match="device='cuda' needs a CUDA GPU with CuPy"):
        wt.initialize(model, seed=0, device="cuda")
    assert model.weight.is_meta


def test_initialize_seed_none_and_progress(capsys):
    torch.manual_seed(7)
    a = nn.Linear(8, 8)
    seed = wt.initialize(a, progress=True)
    assert "warpinit: [" in capsys.readouterr().err
    torch.manual_seed(7)
    b = nn.Linear(8, 8)
    assert wt.initialize(b) == seed and states_equal(a, b)
    c = nn.Linear(8, 8)
    wt.initialize(c, seed=seed)
    assert states_equal(a, c)


# CUDA: runs only where a GPU, torch's CUDA build and CuPy are present (bench/gpu_check.sh) ---------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU with torch's CUDA build and CuPy")


@cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_tensors_are_filled_on_the_gpu(dtype):
    pytest.importorskip("cupy")
    for name, arguments in [("normal_", (0.0, 2.0)), ("trunc_normal_", (0.0, 1.0, -1.0, 2.0)), ("orthogonal_", ())]:
        gpu = getattr(wt, name)(torch.empty(64, 48, dtype=dtype, device="cuda"), *arguments, seed=5)
        cpu = getattr(wt, name)(torch.empty(64, 48, dtype=dtype), *arguments, seed=5)
        assert gpu.device.type == "cuda"
        tolerance = {torch.float16: 2e-3, torch.bfloat16: 2e-2}.get(dtype, 1e-5)
        assert torch.allclose(gpu.cpu().double(), cpu.double(), rtol=tolerance, atol=tolerance), name
    transposed = torch.empty(48, 64, dtype=dtype, device="cuda").T
    assert torch.equal(wt.normal_(transposed, seed=5).cpu(), wt.normal_(torch.empty(64, 48, dtype=dtype, device="cuda"),
                                                                     seed=5).cpu())


@cuda
def test_cuda_initialize_and_meta_materialization():
    pytest.importorskip("cupy")
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64), nn.LayerNorm(64))
    wt.initialize(model, seed=3, device="cuda")
    reference = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64), nn.LayerNorm(64))
    wt.initialize(reference, seed=3)
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert ours.device.type == "cuda"
        assert torch.allclose(ours.cpu(), theirs, rtol=1e-5, atol=1e-6)
