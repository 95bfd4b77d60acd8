"""BCT: retrieval metrics against scikit-learn, the influence loss's gradients, and compatibility of a
BCT-trained model on Fashion-MNIST against an independently trained one."""
import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from workbench.compatibility import bct


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("similarity", ["cosine", "euclidean"])
def test_retrieval_metrics_match_sklearn(similarity):
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(40, 5)), rng.normal(size=(120, 5))
    ql, gl = rng.integers(0, 4, 40), rng.integers(0, 4, 120)
    got = bct.retrieval_metrics(q, ql, g, gl, similarity=similarity, chunk=7)
    if similarity == "cosine":
        qn, gn = q / np.linalg.norm(q, axis=1, keepdims=True), g / np.linalg.norm(g, axis=1, keepdims=True)
        sim = qn @ gn.T
    else:
        sim = -np.linalg.norm(q[:, None] - g[None], axis=2)
    aps = [average_precision_score(gl == ql[i], sim[i]) for i in range(len(q))]
    top1 = np.mean(gl[sim.argmax(1)] == ql)
    assert got["map"] == pytest.approx(np.mean(aps), abs=1e-5)
    assert got["top1"] == pytest.approx(top1)


def test_identical_models_are_trivially_compatible():
    torch.manual_seed(0)
    net = bct.EmbeddingNet(in_features=6, embedding_dim=4, n_classes=3, hidden=(8,))
    x, y = torch.randn(60, 6), torch.randint(0, 3, (60,))
    m = bct.retrieval_matrix({"a": net, "b": net}, (x[:20], y[:20]), (x[20:], y[20:]))
    assert len(m) == 4 and m["top1"].nunique() == 1 and m["map"].nunique() == 1


def test_influence_loss_trains_embeddings_not_the_old_head():
    torch.manual_seed(0)
    old = bct.EmbeddingNet(in_features=4, embedding_dim=3, n_classes=2, hidden=())
    x, y = torch.randn(30, 4), torch.randint(0, 3, (30,))  # class 2 is new to the old model
    head = bct.extend_classifier(old, (x, y), n_classes=3)
    assert torch.equal(head.weight[:2], old.head.weight) and not head.weight.requires_grad
    assert torch.allclose(head.weight[2], bct.embed(old, x[y == 2]).mean(0))
    e = torch.randn(30, 3, requires_grad=True)
    bct.influence_loss(e, y, old.head).backward()  # old head: only classes 0, 1 count
    assert e.grad is not None and torch.all(e.grad[y == 2] == 0) and e.grad[y < 2].abs().sum() > 0


def test_linear_map_recovers_a_linear_relation():
    torch.manual_seed(0)
    new = bct.EmbeddingNet(in_features=5, embedding_dim=4, n_classes=2, hidden=(6,))
    A, b = torch.randn(4, 4), torch.randn(4)

    class Old(torch.nn.Module):
        def embed(self, x):
            return new.embed(x) @ A + b

    x = torch.randn(200, 5)
    mapped = bct.fit_linear_map(new, Old(), x, ridge=0.0)
    assert torch.allclose(bct.embed(mapped, x), Old().embed(x), atol=1e-3)


def test_validation():
    with pytest.raises(ValueError, match="'similarity'"):
        bct.retrieval_metrics([[0.0]], [0], [[0.0]], [0], similarity="dot")
    with pytest.raises(ValueError, match="'embedding_dim' parameter of BCTConfig must equal"):
        old = bct.EmbeddingNet(in_features=2, embedding_dim=3, n_classes=2, hidden=())
        bct.train_embedding_model((torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])), config=bct.BCTConfig(embedding_dim=5), old_model=old)


@pytest.mark.slow
def test_bct_new_queries_work_on_old_gallery():
    from workbench.datasets import load_fashion_mnist

    tr = load_fashion_mnist(split="train", n=5000)
    te = load_fashion_mnist(split="test", n=3000)
    X, y = tr.features(), tr.labels
    gallery, query = (te.features()[:2500], te.labels[:2500]), (te.features()[2500:], te.labels[2500:])
    old = bct.train_embedding_model((X[:1500], y[:1500]), config=bct.BCTConfig(hidden=(64,), epochs=3), seed=0)
    cfg = bct.BCTConfig(hidden=(256, 128), epochs=5)
    independent = bct.train_embedding_model((X, y), config=cfg, seed=1)
    compatible = bct.train_embedding_model((X, y), config=cfg, old_model=old, seed=1)
    m = bct.retrieval_matrix({"old": old, "independent": independent, "bct": compatible}, query, gallery)
    s_bct = bct.compatibility_summary(m, new="bct", metric="map")
    s_ind = bct.compatibility_summary(m, new="independent", metric="map")
    top1 = {(r.query_model, r.gallery_model): r.top1 for r in m.itertuples()}
    # without compatibility, new queries against the old gallery are near or below chance (10 classes)
    assert top1[("independent", "old")] < 0.2
    # BCT's new-query / old-gallery accuracy beats the incompatible baseline by a wide margin ...
    assert top1[("bct", "old")] > top1[("independent", "old")] + 0.4
    # ... and meets the compatibility criterion on mAP, while the independent model does not
    assert s_bct["compatible"] and not s_ind["compatible"], (s_bct, s_ind)
    # the new model is a real improvement in its own space
    assert s_bct["new_new"] > s_bct["old_old"]


def test_retrieval_panel_reports_matrix_metrics():
    from workbench.widgets.compatibility import retrieval_panel

    torch.manual_seed(0)
    a = bct.EmbeddingNet(in_features=16, embedding_dim=4, n_classes=3, hidden=(8,))
    x, y = torch.rand(50, 16), torch.randint(0, 3, (50,))
    imgs = x.reshape(50, 4, 4).numpy()
    panel = retrieval_panel({"a": a, "b": a}, (x[:10], y[:10]), (x[10:], y[10:]), query_images=imgs[:10],
                            gallery_images=imgs[10:], classes=["x", "y", "z"], k=3)
    info = [c for c in panel.children if type(c).__name__ == "HTML"][1]
    expected = bct.retrieval_metrics(bct.embed(a, x[:10]), y[:10], bct.embed(a, x[10:]), y[10:])
    assert f"top-1 {expected['top1']:.3f}" in info.value


def test_cosine_head_and_its_extension_to_new_classes():
    torch.manual_seed(0)
    old = bct.EmbeddingNet(in_features=6, embedding_dim=4, n_classes=2, hidden=(8,), head="cosine")
    x, y = torch.rand(40, 6), torch.arange(40) % 3
    head = bct.extend_classifier(old, (x, y), n_classes=3)
    assert isinstance(head, bct.CosineClassifier) and head.out_features == 3
    assert torch.equal(head.weight[:2], old.head.weight)
    logits = head(bct.embed(old, x))
    assert logits.abs().max() <= float(head.scale) + 1e-4  # scaled cosines
    model = bct.train_embedding_model((x, y), config=bct.BCTConfig(hidden=(8,), embedding_dim=4, epochs=1, head="cosine"), old_model=old)
    assert isinstance(model.head, bct.CosineClassifier)
    with pytest.raises(ValueError, match="'head' parameter of BCTConfig"):
        bct.BCTConfig(head="arcface")
