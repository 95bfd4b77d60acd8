"""The fast DP engine on the real MiniLM (all-MiniLM-L6-v2) against per-sample clipping computed independently.

The model is MiniLM's own architecture and weights (``load_encoder("minilm")``), truncated to its first two
encoder layers to keep the tests fast, in float64, on a padded batch with an attention mask. The reference is a
loop over single samples, each with only its own tokens (no padding), through plain autograd: an implementation
that shares nothing with the engine. With noise off, the engine's clipped sum must equal the loop's within 1e-6
relative for every parameter.
"""
import copy

import pytest
import torch
from torch import nn

from workbench.privacy.clipping_rules import ClippingRule, register_rule, stack_calls, unregister_rule
from workbench.privacy.fast_dp import GhostClippingEngine, UnsupportedLayerError, check_model
from workbench.privacy.trainable import select_trainable

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook:UserWarning")

TEXTS = [
    "I love this so much!",
    "worst day ever",
    "ok",
    "the the the cat sat on the mat, the end",
    "@user not sure what to think about tomorrow's game",
]
LABELS = torch.tensor([2, 0, 1, 1, 0])


@pytest.fixture(scope="module")
def encoder():
    from workbench.datasets import load_encoder

    return load_encoder("minilm")


_BASE = {}


def minilm(encoder, *, layers=2, attention="sdpa", pooler=True):
    """MiniLM's configuration and real weights, first ``layers`` encoder layers, float64, dropout off (train mode: Opacus
    records activations only in train mode)."""
    from transformers import BertModel

    if layers not in _BASE:  # built once per depth (random initialisation of 22M parameters is slow), then copied
        config = copy.deepcopy(encoder.model.config)
        config.num_hidden_layers = layers
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
        model = BertModel(config, add_pooling_layer=True)
        missing, _ = model.load_state_dict(encoder.model.state_dict(), strict=False)
        assert not missing
        _BASE[layers] = model.double()
    model = copy.deepcopy(_BASE[layers]).train()
    model.config._attn_implementation = attention
    if not pooler:
        model.pooler = None  # what BertModel(config, add_pooling_layer=False) builds
    return model


class Classifier(nn.Module):
    """MiniLM + a linear head on the mean of the unpadded token states (or on the pooler's output)."""

    def __init__(self, bert, *, use_pooler=False, per_sample_ids=False):
        super().__init__()
        self.bert, self.use_pooler, self.per_sample_ids = bert, use_pooler, per_sample_ids
        torch.manual_seed(0)
        self.head = nn.Linear(bert.config.hidden_size, 3).double()

    def forward(self, input_ids, attention_mask):
        extra = {}
        if self.per_sample_ids:  # Opacus hooks mode needs (N, T) ids for every embedding
            n, t = input_ids.shape
            extra = {"position_ids": torch.arange(t).repeat(n, 1), "token_type_ids": torch.zeros(n, t, dtype=torch.long)}
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, **extra)
        if self.use_pooler:
            return self.head(out.pooler_output)
        h, m = out.last_hidden_state, attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        return self.head((h * m).sum(1) / m.sum(1))


@pytest.fixture(scope="module")
def batch(encoder):
    tok = encoder.tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert (tok["attention_mask"] == 0).any()  # padded
    return {"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"]}, LABELS


WORDS = "bert.embeddings.word_embeddings.weight"  # 30,522 x 384: compared on the rows of the batch's tokens only


def used_rows(x):
    return torch.unique(x["input_ids"])


def compress(name, grad, x, *, dim=0):
    """The word-embedding gradient on the rows of the batch's tokens (every other row is zero; checked separately)."""
    return grad.index_select(dim, used_rows(x)) if name == WORDS else grad


def per_sample_grads(model, x, y):
    """``{name: (N, *shape)}``: each sample's gradient of its own loss, alone and unpadded, by plain autograd."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    out = {n: [] for n, _ in named}
    for i in range(len(y)):
        length = int(x["attention_mask"][i].sum())
        xi = {k: v[i : i + 1, :length] for k, v in x.items()}
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(**xi), y[i : i + 1]), [p for _, p in named],
                                    allow_unused=True)
        for (n, p), g in zip(named, grads):
            out[n].append(compress(n, torch.zeros_like(p) if g is None else g, x))
    return {n: torch.stack(v) for n, v in out.items()}


def loop_grads(model, x, y):
    """``{name: (N, *shape)}`` for a model of one tensor input: each sample's gradient of its own loss, one backward
    pass per sample through plain autograd (trainable parameters only)."""
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    per = {n: [] for n in named}
    for i in range(len(y)):
        for n, g in zip(named, torch.autograd.grad(nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]),
                                                   list(named.values()))):
            per[n].append(g)
    return {n: torch.stack(v) for n, v in per.items()}


def clip_and_sum(grads, groups, bounds):
    """The definition: clip each sample's gradient group by group (``groups``: name -> group) and sum."""
    labels = sorted(set(groups.values()))
    sq = {g: sum(grads[n].flatten(1).pow(2).sum(1) for n in grads if groups[n] == g) for g in labels}
    factor = {g: (bounds[g] / (sq[g].sqrt() + 1e-6)).clamp(max=1.0) for g in labels}
    summed = {n: torch.einsum("n,n...->...", factor[groups[n]], grads[n]) for n in grads}
    return summed, factor, sq


def assert_grads_equal(model, expected, *, rtol=1e-6, x=None):
    """Every trainable parameter's ``.grad`` equals ``expected`` within ``rtol`` of the whole gradient's scale (a few
    entries are zero in exact arithmetic, e.g. attention's key bias, whose gradient is rounding noise ~1e-18). With
    ``x``, the word embeddings' expected gradient holds the rows of ``x``'s tokens only, and all others must be 0."""
    scale = max(float(g.abs().max()) for g in expected.values())
    for name, p in model.named_parameters():
        if name in expected:
            got = p.grad
            if name == WORDS and x is not None:
                rest = got.clone()
                rest[used_rows(x)] = 0
                assert rest.abs().max() == 0, "gradient on rows of tokens the batch does not hold"
                got = compress(name, got, x)
            assert got.shape == expected[name].shape, name
            error = float(((got - expected[name]).abs() - rtol * expected[name].abs()).max())  # one pass: 4M entries
            assert error <= 1e-9 * scale, f"{name}: off by {error:.3g} beyond rtol={rtol}"


@pytest.mark.slow  # MiniLM's real weights, a per-sample reference loop
@pytest.mark.parametrize(
    "attention, pooler, use_pooler, kernel, layers",
    [("sdpa", True, False, "numba", 2), ("eager", False, False, "torch", 1), ("sdpa", True, True, "numba", 1)],
    ids=["sdpa-unused-pooler", "eager-no-pooler-torch-kernel", "sdpa-head-on-pooler"],
)
def test_clipped_sum_and_norms_equal_per_sample_loop(encoder, batch, attention, pooler, use_pooler, kernel, layers):
    x, y = batch
    model = Classifier(minilm(encoder, layers=layers, attention=attention, pooler=pooler), use_pooler=use_pooler)
    grads = per_sample_grads(model, x, y)
    full = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))
    clip = float(full.median())  # some samples clipped, some not
    engine = GhostClippingEngine(model, max_grad_norm=clip, embedding_kernel=kernel)
    by_param = engine.per_sample_norms(x, y, by_parameter=True)
    out = engine.clipped_grad(x, y)
    engine.remove()
    assert not model.head._forward_hooks
    for name, g in grads.items():  # every per-sample norm, parameter by parameter
        if name in by_param:
            torch.testing.assert_close(by_param[name], g.flatten(1).norm(dim=1), rtol=1e-6, atol=1e-12, msg=name)
        else:  # no norm recorded: the parameter did not reach the loss (the unused pooler)
            assert name.startswith("bert.pooler") and not use_pooler and g.abs().max() == 0
    torch.testing.assert_close(out["norms"], full, rtol=1e-9, atol=0)
    assert (out["clip_factors"] < 1).any() and (out["clip_factors"] == 1).any()
    expected, _, _ = clip_and_sum(grads, {n: "all" for n in grads}, {"all": clip})
    assert_grads_equal(model, expected, x=x)
    if pooler and not use_pooler:
        assert model.bert.pooler.dense.weight.grad.abs().max() == 0  # unused pooler: zero gradient, no error


@pytest.mark.slow  # MiniLM's real weights, a per-sample reference loop
def test_equals_opacus_hooks_with_its_workarounds(encoder, batch):
    """Eager attention, (N, T) position and token-type ids, no pooler: what Opacus hooks mode needs to run."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    x, y = batch
    model = Classifier(minilm(encoder, layers=1, attention="eager", pooler=False), per_sample_ids=True)
    twin = copy.deepcopy(model)
    clip = 5.0
    engine = GhostClippingEngine(model, max_grad_norm=clip)
    out = engine.clipped_grad(x, y)
    engine.remove()
    assert (out["clip_factors"] < 1).any()
    gsm = GradSampleModule(twin, batch_first=True, loss_reduction="mean")
    opt = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=0.0), noise_multiplier=0.0, max_grad_norm=clip,
                      expected_batch_size=len(y))
    nn.functional.cross_entropy(gsm(**x), y).backward()
    opt.clip_and_accumulate()
    expected = {n: compress(n, q.summed_grad, x) for n, q in twin.named_parameters()}
    gsm._close()
    assert_grads_equal(model, expected, x=x)


@pytest.mark.slow  # MiniLM's real weights, a per-sample reference loop
def test_per_layer_clipping_matches_its_definition(encoder, batch):
    x, y = batch
    model = Classifier(minilm(encoder, layers=1, pooler=False))
    grads = per_sample_grads(model, x, y)
    clip = 1.0
    engine = GhostClippingEngine(model, max_grad_norm=clip, clipping="per_layer")
    out = engine.clipped_grad(x, y)
    engine.remove()
    layer_of = {n: n.rsplit(".", 1)[0] for n in grads}
    assert set(engine.groups) == set(layer_of.values()) and len(engine.groups) == 4 + 8 + 1  # embeddings, one encoder layer, head
    bounds = dict(zip(engine.groups, engine.group_max_norms))
    assert sum(c * c for c in engine.group_max_norms) == pytest.approx(clip ** 2)
    assert all(c == pytest.approx(clip / len(engine.groups) ** 0.5) for c in engine.group_max_norms)
    expected, factor, sq = clip_and_sum(grads, layer_of, bounds)
    assert_grads_equal(model, expected, x=x)
    k = {g: i for i, g in enumerate(engine.groups)}
    for g in engine.groups:
        torch.testing.assert_close(out["group_norms"][:, k[g]], sq[g].sqrt(), rtol=1e-6, atol=1e-12)
        torch.testing.assert_close(out["clip_factors"][:, k[g]], factor[g], rtol=1e-6, atol=1e-12)
    # each sample's clipped gradient has norm <= C: the noise sigma * C keeps its meaning
    clipped = (out["group_norms"] * out["clip_factors"]).pow(2).sum(1).sqrt()
    assert (clipped <= clip * (1 + 1e-9)).all() and (out["clip_factors"] < 1).any()


@pytest.mark.slow  # MiniLM's real weights, a per-sample reference loop
def test_user_groups_with_a_budget_split(encoder, batch):
    """Groups from a callable (embeddings / encoder / head) and shares 1 : 2 : 1, so C_k = C sqrt(s_k / 4)."""
    x, y = batch
    model = Classifier(minilm(encoder, layers=1, pooler=False))
    grads = per_sample_grads(model, x, y)

    def group(name):
        return "head" if name.startswith("head") else name.split(".")[1]

    engine = GhostClippingEngine(model, max_grad_norm=2.0, clipping=group,
                                 group_budget={"embeddings": 1, "encoder": 2, "head": 1})
    engine.clipped_grad(x, y)
    engine.remove()
    assert engine.groups == ("embeddings", "encoder", "head")
    assert engine.group_max_norms == pytest.approx((1.0, 2 ** 0.5, 1.0))
    expected, _, _ = clip_and_sum(grads, {n: group(n) for n in grads}, dict(zip(engine.groups, engine.group_max_norms)))
    assert_grads_equal(model, expected, x=x)


@pytest.mark.slow  # MiniLM's real weights, a per-sample reference loop
@pytest.mark.parametrize("part, k", [("bias", 0), ("last_layers", 1), ("head", 0)])
def test_trainable_parts_are_exactly_what_is_clipped(encoder, batch, part, k):
    x, y = batch
    model = Classifier(minilm(encoder, layers=2))
    chosen = select_trainable(model, part=part, last_layers=max(k, 1))
    names = set(chosen["names"])
    if part == "bias":
        assert names == {n for n, _ in model.named_parameters() if n.endswith("bias") or n.startswith("head.")}
    elif part == "last_layers":
        assert names == {n for n, _ in model.named_parameters()
                         if n.startswith(("bert.encoder.layer.1.", "bert.pooler.", "head."))}
    else:
        assert names == {"head.weight", "head.bias"}
    grads = per_sample_grads(model, x, y)
    assert set(grads) == names
    engine = GhostClippingEngine(model, max_grad_norm=0.5)
    assert {n for n, p in model.named_parameters() if any(p is q for q in engine.parameters)} == names
    out = engine.clipped_grad(x, y)
    engine.remove()
    full = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))
    torch.testing.assert_close(out["norms"], full, rtol=1e-9, atol=0)  # norms over exactly the selected parameters
    expected, _, _ = clip_and_sum(grads, {n: "all" for n in grads}, {"all": 0.5})
    assert_grads_equal(model, expected, x=x)
    for n, p in model.named_parameters():
        assert (p.grad is None) == (n not in names), n


def test_parameter_counts_of_each_part_on_minilm(encoder):
    """The counts the trainable module's docstring documents, on the full six-layer MiniLM with its pooler."""
    model = Classifier(copy.deepcopy(encoder.model).float())
    model.head.float()
    counts = {part: select_trainable(model, part=part, last_layers=2)["trainable"] for part in ("all", "last_layers", "bias", "head")}
    assert counts == {"all": 22_714_371, "last_layers": 3_697_923, "bias": 27_267, "head": 1_155}
    assert select_trainable(model, part="head")["total"] == 22_714_371


def test_select_trainable_rejects_bad_input(encoder):
    model = Classifier(minilm(encoder, layers=2))
    with pytest.raises(ValueError, match="'part' parameter of select_trainable must be one of"):
        select_trainable(model, part="lora")
    with pytest.raises(ValueError, match="at most the backbone's number of blocks \\(2\\)"):
        select_trainable(model, part="last_layers", last_layers=3)
    with pytest.raises(ValueError, match="'last_layers' parameter of select_trainable must be an int >= 1"):
        select_trainable(model, part="last_layers", last_layers=0)
    with pytest.raises(ValueError, match="selects no parameter"):
        select_trainable(model.bert, part="head")
    with pytest.raises(ValueError, match="holds no transformers model"):
        select_trainable(nn.Sequential(nn.Linear(2, 2)), part="bias")


def test_frozen_weight_with_trainable_bias_is_clipped_on_the_bias_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    model[0].weight.requires_grad_(False)
    x, y = torch.randn(6, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    engine = GhostClippingEngine(model, max_grad_norm=0.3)
    by_param = engine.per_sample_norms(x, y, by_parameter=True)
    engine.clipped_grad(x, y)
    engine.remove()
    assert "0.weight" not in by_param and model[0].weight.grad is None
    grads = loop_grads(model, x, y)
    for n, g in grads.items():
        torch.testing.assert_close(by_param[n], g.flatten(1).norm(dim=1))
    expected, _, _ = clip_and_sum(grads, {n: "all" for n in grads}, {"all": 0.3})
    assert_grads_equal(model, expected, rtol=1e-10)


def test_shared_ids_embedding_outside_bert():
    """An embedding looked up with ids of shape (1, T) and broadcast over the batch (a learned position table)."""

    class Pos(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos, self.head = nn.Embedding(9, 4), nn.Embedding(6, 4), nn.Linear(4, 2)

        def forward(self, ids):
            h = self.tok(ids) + self.pos(torch.arange(ids.shape[1]).unsqueeze(0))
            return self.head(torch.tanh(h).mean(1))

    torch.manual_seed(1)
    model = Pos().double()
    x, y = torch.randint(0, 9, (5, 6)), torch.tensor([0, 1, 1, 0, 1])
    engine = GhostClippingEngine(model, max_grad_norm=0.2)
    engine.clipped_grad(x, y)
    engine.remove()
    grads = loop_grads(model, x, y)
    expected, _, _ = clip_and_sum(grads, {n: "all" for n in grads}, {"all": 0.2})
    assert_grads_equal(model, expected, rtol=1e-10)


def test_engine_leaves_the_model_unchanged(encoder, batch):
    x, _ = batch
    model = Classifier(minilm(encoder, layers=1))
    forward_before = type(model.bert).forward
    before = model(**x).detach()
    engine = GhostClippingEngine(model, max_grad_norm=1.0)
    torch.testing.assert_close(model(**x), before, rtol=0, atol=0)  # hooks inert outside a DP step
    assert type(model.bert).forward is forward_before and "forward" not in vars(model.bert)
    engine.remove()
    assert all(not m._forward_hooks for m in model.modules())


def test_unsupported_layer_error_names_path_and_supported_types():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Identity(), nn.Conv1d(4, 4, 1)))
    with pytest.raises(UnsupportedLayerError) as err:
        check_model(model)
    message = str(err.value)
    for word in ("'1.1'", "Conv1d", "Linear", "Embedding", "LayerNorm", "register_rule"):
        assert word in message
    model[1][1].requires_grad_(False)  # frozen: no longer a problem
    assert [path for path, _ in check_model(model)] == ["0"]


def test_in_place_change_of_a_layer_output_is_handled_exactly():
    """nn.ReLU(inplace=True) overwrites the first Linear's output: the engine still clips its true gradient."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(inplace=True), nn.Linear(5, 2)).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 1, 0])
    engine = GhostClippingEngine(model, max_grad_norm=0.2)
    out = engine.clipped_grad(x, y)
    engine.remove()
    grads = loop_grads(model, x, y)
    expected, factor, _ = clip_and_sum(grads, {n: "all" for n in grads}, {"all": 0.2})
    torch.testing.assert_close(out["clip_factors"], factor["all"])
    assert_grads_equal(model, expected, rtol=1e-10)


def test_in_place_change_of_a_layer_input_is_refused():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2 = nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x):
            h = torch.tanh(self.l1(x))
            out = self.l2(h)
            h.mul_(2.0)  # l2's input changes after l2 ran: a record of it would be stale
            return out

    engine = GhostClippingEngine(Model(), max_grad_norm=1.0)
    with pytest.raises(UnsupportedLayerError, match="input of layer 'l2' was modified in place"):
        engine.clipped_grad(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    engine.remove()


def test_a_registered_rule_is_used_and_exact():
    """A user rule (elementwise scale, y = x * s) gives the same norms as materialised per-sample gradients."""

    class Scale(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.s = nn.Parameter(torch.linspace(0.5, 1.5, d))

        def forward(self, x):
            return x * self.s

    def prepare(layer, calls, ctx):
        a, b = stack_calls(calls, ctx)
        return (b * a).sum(1)

    rule = ClippingRule(prepare=prepare, sq_norms=lambda layer, g, ctx: {layer.s: g.pow(2).sum(1)},
                        accumulate=lambda layer, g, w, ctx: layer.s.grad.add_(w[layer.s] @ g))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), Scale(4), nn.Linear(4, 2)).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1, 0])
    with pytest.raises(UnsupportedLayerError, match="'1' \\(Scale\\)"):
        GhostClippingEngine(model, max_grad_norm=1.0)
    register_rule(Scale, rule)
    try:
        engine = GhostClippingEngine(model, max_grad_norm=0.1)
        norms = engine.per_sample_norms(x, y)
        engine.remove()
    finally:
        unregister_rule(Scale)
    expected = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in loop_grads(model, x, y).values()))
    torch.testing.assert_close(norms, expected)
    with pytest.raises(UnsupportedLayerError, match="must be a ClippingRule"):
        register_rule(Scale, lambda *a: None)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_grad_norm": 0}, "'max_grad_norm' parameter of GhostClippingEngine must be a float > 0. Got 0 instead."),
        ({"max_grad_norm": 1.0, "clipping": "per_head"}, "'clipping' parameter of GhostClippingEngine must be"),
        ({"max_grad_norm": 1.0, "group_budget": {"all": 1}}, "needs group-wise clipping"),
        ({"max_grad_norm": 1.0, "clipping": "per_layer", "group_budget": {"0": 1}}, "Missing \\['2'\\]"),
        ({"max_grad_norm": 1.0, "clipping": "per_layer", "group_budget": {"0": 1, "2": -1}}, "group_budget\\['2'\\]"),
    ],
)
def test_engine_options_are_validated(kwargs, match):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=match):
        GhostClippingEngine(model, **kwargs)


@pytest.mark.slow  # MiniLM's real weights, twice
def test_physical_batch_slices_give_the_same_result(encoder, batch):
    """max_physical_batch_size=2 on a batch of 5 (slices 2, 2, 1): the same norms, clip factors and clipped sum."""
    x, y = batch
    model = Classifier(minilm(encoder, layers=1, pooler=True))
    results = {}
    for size in (None, 2):
        engine = GhostClippingEngine(model, max_grad_norm=3.0, max_physical_batch_size=size, clipping="per_layer")
        by_param = engine.per_sample_norms(x, y, by_parameter=True)
        out = engine.clipped_grad(x, y, scale=0.5)
        engine.remove()
        results[size] = (by_param, out, {n: p.grad.clone() for n, p in model.named_parameters()})
        model.zero_grad(set_to_none=True)
    (p1, o1, g1), (p2, o2, g2) = results[None], results[2]
    assert p1.keys() == p2.keys() and o1.keys() == o2.keys()
    for k in p1:
        torch.testing.assert_close(p2[k], p1[k], rtol=1e-9, atol=1e-14)
    for k in ("norms", "clip_factors", "group_norms"):
        torch.testing.assert_close(o2[k], o1[k], rtol=1e-9, atol=1e-14)
    assert o2["loss"] == pytest.approx(o1["loss"], rel=1e-12)
    for n in g1:
        torch.testing.assert_close(g2[n], g1[n], rtol=1e-9, atol=1e-14, msg=n)


class NormModel(nn.Module):
    """Linear -> norm layer -> Linear, on vectors (N, d), sequences (N, T, d) or a 2-d normalised shape (N, T, 2, 3)."""

    def __init__(self, norm, shape):
        super().__init__()
        self.shape, self.inp, self.norm, self.out = shape, nn.Linear(4, 6), norm, nn.Linear(6, 3)

    def forward(self, x):
        h = self.norm(self.inp(x).reshape(*x.shape[:-1], *self.shape))
        h = torch.tanh(h.reshape(*x.shape[:-1], 6))
        return self.out(h if h.dim() == 2 else h.mean(1))


@pytest.mark.parametrize(
    "norm, shape, seq",
    [(nn.LayerNorm(6), (6,), False), (nn.LayerNorm(6), (6,), True), (nn.LayerNorm((2, 3)), (2, 3), True),
     (nn.LayerNorm(6, bias=False), (6,), True), (nn.RMSNorm(6), (6,), True)],
    ids=["layernorm-vectors", "layernorm-sequences", "layernorm-2d-shape", "layernorm-no-bias", "rmsnorm"],
)
def test_norm_layer_rules_match_materialised_gradients(norm, shape, seq):
    torch.manual_seed(4)
    model = NormModel(norm, shape).double()
    with torch.no_grad():  # affine parameters away from their (1, 0) start, so that every term matters
        for p in model.norm.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(*((5, 7, 4) if seq else (5, 4)), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1])
    engine = GhostClippingEngine(model, max_grad_norm=0.3)
    by_param = engine.per_sample_norms(x, y, by_parameter=True)
    engine.clipped_grad(x, y)
    engine.remove()
    grads = loop_grads(model, x, y)
    for n, g in grads.items():
        torch.testing.assert_close(by_param[n], g.flatten(1).norm(dim=1), msg=n)
    expected, _, _ = clip_and_sum(grads, {n: "all" for n in grads}, {"all": 0.3})
    assert_grads_equal(model, expected, rtol=1e-10)


@pytest.mark.slow  # MiniLM's real weights, a per-sample reference loop
def test_auto_slicing_on_minilm_equals_the_per_sample_loop(encoder, batch, monkeypatch):
    """max_physical_batch_size='auto' with every batch counted as large: the footprint probe runs on the padded
    mapping input, the batch is sliced, and the clipped sum still equals per-sample clipping within 1e-6."""
    from workbench.privacy import fast_dp

    monkeypatch.setattr(fast_dp, "AUTO_SLICE_MIN_BYTES", 0)
    x, y = batch
    model = Classifier(minilm(encoder, layers=1, pooler=True))
    grads = per_sample_grads(model, x, y)
    clip = float(torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values())).median())
    engine = GhostClippingEngine(model, max_grad_norm=clip, max_physical_batch_size="auto")
    out = engine.clipped_grad(x, y)
    engine.remove()
    assert 1 <= engine.last_slice_size < len(y) and all(v > 0 for v in engine.footprint)
    expected, factor, _ = clip_and_sum(grads, {n: "all" for n in grads}, {"all": clip})
    torch.testing.assert_close(out["clip_factors"], factor["all"], rtol=1e-9, atol=0)
    assert_grads_equal(model, expected, x=x)
