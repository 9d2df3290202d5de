"""Real Hugging Face transformers models (built from configs, nothing downloaded) under warpinit.torch.

For Llama, GPT-2, BERT, T5 and ViT at about a million parameters: ``fast_init`` around
``from_config``, meta-device construction + ``initialize``, and re-initialization of a model built
normally, each against transformers' own ``from_config``: per-kind mean and standard deviation within
sampling tolerance, constants and buffers bit for bit, truncation bounds, tied weights still tied,
nothing NaN, an untrained loss of ln(vocab) and a finite optimizer step, the same bits for the same
seed (and the same bits from all three routes), no two random tensors equal. Then plain torch modules,
uninitialized tensors, and the context's bad uses.
"""

import copy
import math
import re
import threading
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import warpinit.torch as wt  # noqa: E402

nn = torch.nn
VOCABULARY = 8000
SEED = 1234
# Mean and standard deviation agree with transformers' own draw within this many standard errors
# (each check fails by chance with probability < 1e-8).
Z = 6.0


def _config(name):
    t = transformers
    if name == "llama":
        return t.LlamaConfig(vocab_size=VOCABULARY, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    if name == "gpt2":
        return t.GPT2Config(vocab_size=VOCABULARY, n_embd=128, n_layer=2, n_head=4, n_positions=128)
    if name == "bert":
        return t.BertConfig(vocab_size=VOCABULARY, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=256, max_position_embeddings=128)
    if name == "t5":
        return t.T5Config(vocab_size=VOCABULARY, d_model=128, d_kv=32, d_ff=256, num_layers=2, num_heads=4,
                          decoder_start_token_id=0, pad_token_id=0)
    return t.ViTConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                       image_size=32, patch_size=8)


_CLASSES = {"llama": "AutoModelForCausalLM", "gpt2": "AutoModelForCausalLM", "bert": "AutoModelForMaskedLM",
            "t5": "AutoModelForSeq2SeqLM", "vit": "AutoModel"}
MODELS = list(_CLASSES)


def _build(name):
    transformers.logging.set_verbosity_error()
    return getattr(transformers, _CLASSES[name]).from_config(_config(name))


def _routes(name):
    """{route: model} for the three ways warpinit initializes a model, all with SEED."""
    with wt.fast_init(seed=SEED):
        constructed = _build(name)
    with torch.device("meta"):
        meta = _build(name)
    wt.initialize(meta, seed=SEED, device="cpu")
    torch.manual_seed(7)
    rebuilt = _build(name)
    wt.initialize(rebuilt, seed=SEED)
    return {"fast_init": constructed, "meta + initialize": meta, "initialize a built model": rebuilt}


@pytest.fixture(scope="module", params=MODELS)
def model_case(request):
    name = request.param
    torch.manual_seed(0)
    reference = _build(name)
    torch.manual_seed(1)
    again = _build(name)  # transformers' own draw with another seed: which tensors are deterministic
    return name, reference, again, _routes(name)


def _kind(name: str) -> str:
    """A parameter's kind: its name with layer indices taken out (every layer's q_proj pooled)."""
    return re.sub(r"\.\d+\.", ".*.", name)


def _loss(name, model):
    rng = np.random.default_rng(0)
    if name == "vit":
        pixels = torch.from_numpy(rng.standard_normal((2, 3, 32, 32)).astype("float32"))
        output = model(pixel_values=pixels).last_hidden_state
        return output.pow(2).mean(), None
    tokens = torch.from_numpy(rng.integers(0, VOCABULARY, (2, 16)))
    labels = torch.from_numpy(rng.integers(0, VOCABULARY, (2, 16)))
    if name == "t5":
        output = model(input_ids=tokens, labels=labels)
    else:
        output = model(input_ids=tokens, labels=labels)
    return output.loss, math.log(VOCABULARY)


def test_statistics_constants_and_buffers_match_transformers(model_case):
    name, reference, again, routes = model_case
    theirs = dict(reference.named_parameters())
    theirs_again = dict(again.named_parameters())
    for route, model in routes.items():
        ours = dict(model.named_parameters())
        assert ours.keys() == theirs.keys(), route
        pooled = {}
        for key, parameter in ours.items():
            mine = parameter.detach()
            assert torch.isfinite(mine).all(), (route, key)
            if torch.equal(theirs[key], theirs_again[key]):  # deterministic (ones, zeros): exactly theirs
                assert torch.equal(mine, theirs[key].detach()), (route, key)
                continue
            pooled.setdefault(_kind(key), []).append((mine, theirs[key].detach()))
        for kind, pairs in pooled.items():
            x = torch.cat([a.double().ravel() for a, _ in pairs]).numpy()
            y = torch.cat([b.double().ravel() for _, b in pairs]).numpy()
            sigma, n = y.std(), x.size
            assert abs(x.mean() - y.mean()) <= Z * sigma * math.sqrt(2.0 / n), (route, kind, x.mean(), y.mean())
            assert abs(x.std() - sigma) <= Z * sigma * math.sqrt(1.0 / n), (route, kind, x.std(), sigma)
        for key, buffer in reference.named_buffers():
            assert torch.equal(dict(model.named_buffers())[key], buffer), (route, key)


def test_truncation_bounds_ties_and_distinct_tensors(model_case):
    name, reference, again, routes = model_case
    for route, model in routes.items():
        if name == "vit":  # trunc_normal_(std=0.02) with torch's absolute default bounds +-2
            for key, parameter in model.named_parameters():
                assert parameter.detach().abs().max() <= 2.0, (route, key)
        embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
        if head is not None and getattr(model.config, "tie_word_embeddings", False):
            assert head.weight is embeddings.weight, route
        digests = {}
        for key, parameter in model.named_parameters():  # named_parameters lists a tied tensor once
            values = parameter.detach()
            if values.numel() > 1 and values.std() > 0:
                digests.setdefault(values.numpy().tobytes(), []).append(key)
        assert all(len(keys) == 1 for keys in digests.values()), [k for k in digests.values() if len(k) > 1]


def test_untrained_loss_and_one_optimizer_step(model_case):
    name, reference, _, routes = model_case
    if name == "t5":  # T5's own init (unit-variance lm_head) starts above ln(vocab): compare with its own
        expected = _loss(name, copy.deepcopy(reference))[0].item()
    for route, model in routes.items():
        model = copy.deepcopy(model)  # the fixture's models stay as initialized
        loss, language_model = _loss(name, model)
        expected = language_model if name != "t5" else expected
        assert torch.isfinite(loss), route
        if expected is not None:
            assert abs(loss.item() - expected) < 0.5, (route, loss.item())
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loss, _ = _loss(name, model)
        assert torch.isfinite(loss), route


def test_same_seed_same_bits_on_every_route(model_case):
    name, _, _, routes = model_case
    with wt.fast_init(seed=SEED):
        twice = _build(name)
    states = [model.state_dict() for model in routes.values()] + [twice.state_dict()]
    for state in states[1:]:
        assert state.keys() == states[0].keys()
        for key in state:
            assert torch.equal(state[key], states[0][key]), key
    with wt.fast_init(seed=SEED + 1):
        other = _build(name)
    random = [key for key, value in states[0].items() if value.is_floating_point() and value.numel() > 1
              and value.std() > 0]
    assert random and all(not torch.equal(other.state_dict()[key], states[0][key]) for key in random)


def test_a_fill_nothing_holds_at_the_end_is_not_drawn(monkeypatch):
    """An output layer's own weight, replaced by the tied embedding before the context ends, is not
    drawn (nobody can read it); tensors still held - by a name, or only through a view - are."""
    import weakref

    from warpinit import _whole_model

    shapes, run = [], _whole_model.run

    def spy(requests, *args, **kwargs):
        shapes.extend(tuple(request.shape) for request in requests)
        return run(requests, *args, **kwargs)

    monkeypatch.setattr(_whole_model, "run", spy)
    with wt.fast_init(seed=SEED):
        embedding, head = nn.Embedding(7, 5), nn.Linear(5, 7, bias=False)
        nn.init.normal_(head.weight, std=0.02)
        dropped = weakref.ref(head.weight)
        head.weight = embedding.weight
        kept = torch.empty(3, 11)
        nn.init.normal_(kept)
        viewed = torch.empty(2, 13)
        view = viewed.view(26)
        nn.init.normal_(viewed)
        del viewed
    assert dropped() is None
    assert sorted(shapes) == [(2, 13), (3, 11), (7, 5)]  # one (7, 5): the embedding's
    assert kept.std() > 0.5 and view.std() > 0.5 and embedding.weight.std() > 0.5


def test_one_parameter_redrawn_alone_from_its_name():
    with wt.fast_init(seed=SEED):
        model = _build("llama")
    weight = model.model.layers[1].mlp.up_proj.weight
    again = torch.empty_like(weight)
    wt.normal_(again, 0.0, model.config.initializer_range, seed=wt.parameter_seed(SEED, "model.layers.1.mlp.up_proj.weight"))
    assert torch.equal(again, weight)


def test_seed_none_follows_torch_manual_seed():
    torch.manual_seed(3)
    with wt.fast_init() as first:
        a = _build("gpt2")
    torch.manual_seed(3)
    with wt.fast_init() as second:
        b = _build("gpt2")
    assert first.seed == second.seed
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# Plain torch modules -----------------------------------------------------------------------------


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        self.norm = nn.BatchNorm2d(16)
        self.embed = nn.Embedding(400, 32, padding_idx=1)
        self.rnn = nn.GRU(32, 48)
        self.attention = nn.MultiheadAttention(32, 4)
        self.layer_norm = nn.LayerNorm(32)
        self.linear = nn.Linear(32, 300)


def test_plain_modules_follow_reset_parameters():
    torch.manual_seed(0)
    theirs = _Net()
    with wt.fast_init(seed=5):
        ours = _Net()
    reference = dict(theirs.state_dict())
    for key, value in ours.state_dict().items():
        expected = reference[key]
        if not value.is_floating_point() or value.numel() < 2 or expected.std() == 0:
            assert torch.equal(value, expected), key
            continue
        if key == "embed.weight":
            assert torch.equal(value[1], torch.zeros(32)) and value[0].abs().sum() > 0
            value, expected = value[2:], expected[2:]
        x, y = value.double().ravel().numpy(), expected.double().ravel().numpy()
        assert abs(x.std() - y.std()) <= Z * y.std() * math.sqrt(1.0 / x.size), key
        if y.min() >= -np.abs(y).max() * 1.01 and np.allclose(-y.min(), y.max(), rtol=0.1):  # uniform: bound
            bound = max(-y.min(), y.max())
            assert np.abs(x).max() <= bound * 1.05, key


def test_a_tensor_nothing_initializes_is_named():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 4)
            self.gate = nn.Parameter(torch.empty(4))  # no reset_parameters writes it

    with torch.device("meta"):
        model = Gate()
    with pytest.raises(ValueError, match=r"uninitialized memory.*: gate"):
        wt.initialize(model, seed=0, device="cpu")
    assert model.gate.is_meta and model.linear.weight.is_meta


def test_empty_init_keeps_buffers_and_initialize_materializes():
    with wt.empty_init():
        model = _build("bert")
    assert all(p.is_meta for p in model.parameters())
    assert not any(b.is_meta for b in model.buffers())
    wt.initialize(model, seed=SEED, device="cpu")
    with torch.device("meta"):
        meta = _build("bert")
    wt.initialize(meta, seed=SEED, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), meta.state_dict().values()))


# Bad uses ------------------------------------------------------------------------------------------


def test_bad_arguments_are_refused_before_anything_runs():
    with pytest.raises(TypeError, match="module"):
        wt.initialize("a model", seed=0)
    with pytest.raises(TypeError, match="seed"):
        with wt.fast_init(seed="0"):
            pass
    with pytest.raises(ValueError, match="seed"):
        with wt.fast_init(seed=-1):
            pass
    with pytest.raises(ValueError, match="device"):
        with wt.fast_init(seed=0, device="nowhere"):
            pass
    with pytest.raises(TypeError, match="init_fn"):
        wt.initialize(nn.Linear(2, 2), seed=0, init_fn="reset")


def test_nested_fast_init_is_an_error_and_leaves_no_trace():
    with wt.fast_init(seed=0):
        with pytest.raises(RuntimeError, match="already open"):
            with wt.fast_init(seed=1):
                pass
        with pytest.raises(RuntimeError, match="already open"):
            wt.initialize(nn.Linear(2, 2), seed=0)
        layer = nn.Linear(8, 8)
    assert layer.weight.abs().max() <= 1 / math.sqrt(8)
    assert torch.nn.init._no_grad_trunc_normal_.__module__ == "torch.nn.init"  # the route is closed


def test_init_fn_that_raises_leaves_the_model_consistent():
    def failing(model):
        nn.init.normal_(model[0].weight)
        raise KeyError("broken init")

    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    with pytest.raises(KeyError, match="broken init"):
        wt.initialize(model, seed=0, device="cpu", init_fn=failing)
    assert all(p.is_meta for p in model.parameters())  # put back, nothing half-initialized
    built = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    before = [p.detach().clone() for p in built.parameters()]
    with pytest.raises(KeyError):
        wt.initialize(built, seed=0, init_fn=failing)
    for old, parameter in zip(before, built.parameters()):  # the pending fill was never drawn
        assert torch.equal(old, parameter.detach())


def test_contexts_in_several_threads_are_independent():
    with wt.fast_init(seed=11):
        expected = _build("gpt2").state_dict()
    results, errors = [None] * 3, []

    def work(index):
        try:
            with wt.fast_init(seed=11):
                results[index] = _build("gpt2").state_dict()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    layer = nn.Linear(16, 16)  # this thread has no context: torch's own init, untouched
    for thread in threads:
        thread.join(timeout=300)
    assert not errors and all(result is not None for result in results)
    for result in results:
        assert all(torch.equal(result[key], expected[key]) for key in expected)
    assert layer.weight.abs().max() <= 0.25


def test_fills_warpinit_does_not_serve_run_torchs_own():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with wt.fast_init(seed=0):
            complex_values = torch.empty(100, dtype=torch.complex64).normal_()
            integers = torch.empty(100, dtype=torch.int64).random_(0, 10)
    assert complex_values.abs().sum() > 0 and integers.max() < 10
