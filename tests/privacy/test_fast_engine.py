"""The fast DP engine against Opacus (hooks mode) and against materialised per-sample gradients."""
import copy

import pytest
import torch
from torch import nn

from workbench.models import MLP
from workbench.privacy.fast_dp import GhostClippingEngine, UnsupportedLayerError, check_model
from workbench.textmodels import BagOfEmbeddings, RecurrentClassifier

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook:UserWarning")

VOCAB, N, L = 40, 24, 10


def token_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (N, L), generator=g)
    ids[:, :5] = torch.randint(1, 5, (N, 5), generator=g)  # many repeated tokens within a sample
    lengths = torch.randint(1, L + 1, (N,), generator=g)
    ids[torch.arange(L).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    ids[0] = 0  # an all-padding row
    ids[0, 0] = 3
    return ids, torch.randint(0, 3, (N,), generator=g)


def make(name):
    torch.manual_seed(1)
    if name == "bag":
        return BagOfEmbeddings(VOCAB, dim=8), *token_batch()
    if name == "gru":
        return RecurrentClassifier(VOCAB, dim=6, hidden=5), *token_batch()
    g = torch.Generator().manual_seed(2)
    return MLP(in_features=7, out_features=3, hidden=(9,)), torch.randn(N, 7, generator=g), torch.randint(0, 3, (N,), generator=g)


def materialised_grads(model, x, y):
    """Per-sample gradients by one backward pass per sample: an implementation independent of the engine."""
    params = [p for p in model.parameters() if p.requires_grad]
    out = []
    for i in range(len(x)):
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), params, allow_unused=True)
        out.append([torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)])
    return params, out


KERNELS = pytest.mark.parametrize("kernel", ["numba", "torch"])  # the two implementations of the embedding rule


@KERNELS
@pytest.mark.parametrize("name", ["bag", "gru", "mlp"])
def test_every_per_sample_norm_matches_materialised(name, kernel):
    model, x, y = make(name)
    engine = GhostClippingEngine(model, max_grad_norm=1.0, embedding_kernel=kernel)
    assert engine.embedding_kernel == kernel
    by_param = engine.per_sample_norms(x, y, by_parameter=True)
    total = engine.per_sample_norms(x, y)
    engine.remove()
    params, grads = materialised_grads(model, x, y)
    names = {p: n for n, p in model.named_parameters()}
    for j, p in enumerate(params):
        expected = torch.stack([g[j].norm() for g in grads])
        torch.testing.assert_close(by_param[names[p]], expected, atol=1e-5, rtol=1e-4, msg=f"{name}: {names[p]}")
    expected_total = torch.stack([torch.sqrt(sum(t.pow(2).sum() for t in g)) for g in grads])
    torch.testing.assert_close(total, expected_total, atol=1e-5, rtol=1e-4)
    assert (expected_total > 0).all()


@KERNELS
@pytest.mark.parametrize("name", ["bag", "gru", "mlp"])
@pytest.mark.parametrize("clip", [0.05, 1.0, 100.0])
def test_clipped_sum_equals_opacus_hooks(name, clip, kernel):
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    model, x, y = make(name)
    twin = copy.deepcopy(model)
    engine = GhostClippingEngine(model, max_grad_norm=clip, embedding_kernel=kernel)
    out = engine.clipped_grad(x, y)
    engine.remove()

    gsm = GradSampleModule(twin, batch_first=True, loss_reduction="mean")
    opt = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=0.0), noise_multiplier=0.0, max_grad_norm=clip, expected_batch_size=N)
    nn.functional.cross_entropy(gsm(x), y).backward()
    opt.clip_and_accumulate()
    for (pname, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.summed_grad, atol=1e-5, rtol=0, msg=f"{name}: {pname}")
    # clipping did happen for small C and did not for huge C
    assert (out["clip_factors"] < 1).all() if clip == 0.05 else True
    assert (out["clip_factors"] == 1).all() if clip == 100.0 else True
    gsm._close()


@KERNELS
@pytest.mark.parametrize("name", ["bag", "gru"])
def test_each_clipped_contribution_has_norm_at_most_c(name, kernel):
    model, x, y = make(name)
    clip = 0.1
    engine = GhostClippingEngine(model, max_grad_norm=clip, embedding_kernel=kernel)
    out = engine.clipped_grad(x, y)
    engine.remove()
    clipped = out["norms"] * out["clip_factors"]
    assert (clipped <= clip * (1 + 1e-5)).all()
    # the clipped sum is then bounded by N * C (triangle inequality)
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert total <= N * clip + 1e-5


def test_hooks_are_inert_outside_a_dp_step_and_removable():
    model, x, y = make("bag")
    before = model(x).detach().clone()
    engine = GhostClippingEngine(model, max_grad_norm=1.0)
    torch.testing.assert_close(model(x), before)
    nn.functional.cross_entropy(model(x), y).backward()  # ordinary training still works with the engine attached
    assert model.embedding.weight.grad is not None
    assert all(p.requires_grad for p in model.parameters())
    engine.remove()
    assert not model.embedding._forward_hooks


def test_frozen_layers_are_ignored():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    engine = GhostClippingEngine(model, max_grad_norm=1.0)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 0, 1, 1, 0])
    engine.clipped_grad(x, y)
    assert model[0].weight.grad is None and model[2].weight.grad is not None


@pytest.mark.parametrize(
    "layer, words",
    [
        (nn.BatchNorm1d(4), ["BatchNorm1d", "GroupNorm"]),
        (nn.GRU(4, 4, batch_first=True), ["GRU", "RecurrentClassifier"]),
        (nn.Conv1d(4, 4, 1), ["Conv1d", "opacus-hooks"]),
        (nn.GroupNorm(2, 4), ["GroupNorm", "Freeze", "register_rule", "Linear, Embedding, LayerNorm"]),
    ],
)
def test_unsupported_layers_raise_clear_errors(layer, words):
    model = nn.Sequential(nn.Linear(4, 4), layer)
    with pytest.raises(UnsupportedLayerError) as err:
        check_model(model)
    for word in words:
        assert word in str(err.value)
    assert "'1'" in str(err.value)  # names the layer


def test_tied_weights_rejected():
    emb, out = nn.Embedding(10, 4), nn.Linear(4, 10, bias=False)
    out.weight = emb.weight
    with pytest.raises(UnsupportedLayerError, match="share a parameter"):
        check_model(nn.ModuleDict({"emb": emb, "out": out}))


def test_bad_clip_norm():
    with pytest.raises(ValueError, match="max_grad_norm"):
        GhostClippingEngine(nn.Linear(2, 2), max_grad_norm=0)


class SequenceModel(nn.Module):
    """A Linear applied to every position of a sequence, then flattened into a head: the 'sequence' rule."""

    def __init__(self, t, d_in, d_out):
        super().__init__()
        self.proj, self.head = nn.Linear(d_in, d_out), nn.Linear(t * d_out, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.proj(x)).flatten(1))


@pytest.mark.parametrize("t, d_in, d_out", [(3, 8, 16), (12, 2, 3)], ids=["ghost-gram", "materialised"])
def test_sequence_linear_norms_by_either_rule(t, d_in, d_out):
    """T^2 <= d_in d_out takes the Gram (ghost) route, otherwise the per-sample gradient is formed: both exact."""
    torch.manual_seed(0)
    model = SequenceModel(t, d_in, d_out)
    x, y = torch.randn(N, t, d_in), torch.randint(0, 3, (N,))
    engine = GhostClippingEngine(model, max_grad_norm=1.0)
    by_param = engine.per_sample_norms(x, y, by_parameter=True)
    engine.remove()
    params, grads = materialised_grads(model, x, y)
    names = {p: n for n, p in model.named_parameters()}
    for j, p in enumerate(params):
        torch.testing.assert_close(by_param[names[p]], torch.stack([g[j].norm() for g in grads]), atol=1e-5, rtol=1e-4)


@KERNELS
def test_scale_and_accumulate_add_onto_existing_gradients(kernel):
    model, x, y = make("bag")
    engine = GhostClippingEngine(model, max_grad_norm=0.1, embedding_kernel=kernel)
    engine.clipped_grad(x, y)
    plain = [p.grad.clone() for p in model.parameters()]
    start = [torch.full_like(p, 0.5) for p in model.parameters()]
    for p, s in zip(model.parameters(), start):
        p.grad = s.clone()
    engine.clipped_grad(x, y, scale=0.25, accumulate=True)
    engine.remove()
    for p, s, g in zip(model.parameters(), start, plain):
        torch.testing.assert_close(p.grad, s + 0.25 * g)


def test_numba_kernel_is_the_default_and_bad_kernel_names_are_rejected():
    model, x, y = make("bag")
    engine = GhostClippingEngine(model, max_grad_norm=1.0)
    assert engine.embedding_kernel == "numba"  # numba is a dependency: "auto" must find it
    engine.remove()
    with pytest.raises(ValueError, match="'embedding_kernel'"):
        GhostClippingEngine(model, max_grad_norm=1.0, embedding_kernel="cuda")


@pytest.mark.parametrize("padding_idx", [None, 0, 7])
def test_embedding_kernels_agree_with_and_without_padding(padding_idx):
    """Both embedding rules, on a plain Embedding + sum-pooling model, with the padding row anywhere or absent."""
    torch.manual_seed(3)
    ids, y = token_batch()
    ids[ids == 0] = 7 if padding_idx == 7 else 0
    grads, norms = {}, {}
    for kernel in ("numba", "torch"):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Embedding(VOCAB, 6, padding_idx=padding_idx), nn.Flatten(), nn.Linear(L * 6, 3))
        engine = GhostClippingEngine(model, max_grad_norm=0.5, embedding_kernel=kernel)
        out = engine.clipped_grad(ids, y)
        engine.remove()
        grads[kernel], norms[kernel] = model[0].weight.grad.clone(), out["norms"]
        if padding_idx is not None:
            assert (model[0].weight.grad[padding_idx] == 0).all()
    torch.testing.assert_close(norms["numba"], norms["torch"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads["numba"], grads["torch"], atol=1e-6, rtol=1e-5)
    torch.manual_seed(3)
    ref = nn.Sequential(nn.Embedding(VOCAB, 6, padding_idx=padding_idx), nn.Flatten(), nn.Linear(L * 6, 3))
    params, per_sample = materialised_grads(ref, ids, y)
    expected = torch.stack([torch.sqrt(sum(g.pow(2).sum() for g in gs)) for gs in per_sample])
    torch.testing.assert_close(norms["numba"], expected, atol=1e-5, rtol=1e-4)
