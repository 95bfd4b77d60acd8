"""Teacher cache, student construction, the distillation loss and loop, on a tiny random Llama (fast)."""
import numpy as np
import pytest
import torch

from workbench.distillation.student import count_parameters, make_student
from workbench.distillation.teacher import teacher_targets, target_distribution
from workbench.distillation.train import distill, distillation_loss


def _tiny_llama(seed=0, layers=4):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 40, (12, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0  # one padded row
    return ids, mask


def test_student_keeps_every_other_layer_and_leaves_the_teacher_alone():
    teacher = _tiny_llama(layers=4)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = make_student(teacher, keep_every=2, selection="spread")
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    for new, old in ((0, 0), (1, 2)):
        for (n1, p1), (n2, p2) in zip(student.model.layers[new].named_parameters(), teacher.model.layers[old].named_parameters()):
            assert n1 == n2 and torch.equal(p1, p2) and p1.data_ptr() != p2.data_ptr()
    assert count_parameters(student) < count_parameters(teacher)
    with torch.no_grad():
        student.model.layers[0].mlp.up_proj.weight.add_(1.0)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    out = student.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=3, do_sample=False)  # KV cache indices fit
    assert out.shape == (1, 6)


@pytest.mark.parametrize("keep_every, selection, expected", [(2, "ends", [0, 3]), (1, "ends", [0, 1, 2, 3]),
                                                             (3, "spread", [0, 3]), (4, "ends", [0])])
def test_student_layer_selections(keep_every, selection, expected):
    from workbench.distillation.student import student_layers

    teacher = _tiny_llama(layers=4)
    assert student_layers(4, keep_every=keep_every, selection=selection) == expected
    student = make_student(teacher, keep_every=keep_every, selection=selection)
    assert student.config.num_hidden_layers == len(expected)
    for new, old in enumerate(expected):
        assert torch.equal(student.model.layers[new].mlp.up_proj.weight, teacher.model.layers[old].mlp.up_proj.weight)
    with pytest.raises(ValueError, match="'selection' parameter of student_layers must be one of"):
        make_student(teacher, selection="random")


def test_teacher_targets_are_the_teachers_topk_and_are_cached(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    teacher = _tiny_llama()
    ids, mask = tiny_data
    gender = np.array([3, 4, 5, 6])
    t = teacher_targets(teacher, ids, attention_mask=mask, k=5, gender_ids=gender)
    assert not t.cached and t.path.exists() and t.topk_ids.shape == (12, 10, 5)
    with torch.no_grad():
        logp = torch.log_softmax(teacher(input_ids=ids, attention_mask=mask).logits, -1)
    assert np.allclose(t.topk_logp, logp.topk(5, dim=-1).values.numpy(), atol=2e-3)
    assert np.allclose(t.gender_logp, logp[..., gender].numpy(), atol=2e-3)
    again = teacher_targets(teacher, ids, attention_mask=mask, k=5, gender_ids=gender)
    assert again.cached and again.seconds == 0 and np.array_equal(again.topk_ids, t.topk_ids)
    other = teacher_targets(teacher, ids[:, :9], attention_mask=mask[:, :9], k=5, gender_ids=gender)
    assert not other.cached  # other rows: another cache file


@pytest.mark.parametrize("perturbation", [None, "swap", "equalize"])
def test_targets_are_distributions_and_perturbation_only_moves_gendered_mass(tiny_data, perturbation):
    ids, mask = tiny_data
    t = teacher_targets(_tiny_llama(), ids, attention_mask=mask, k=6, gender_ids=[3, 4, 5, 6], cache=False)
    support, p = target_distribution(t, np.arange(12), temperature=2.0, perturbation=perturbation)
    _, base = target_distribution(t, np.arange(12), temperature=2.0)
    assert p.shape == support.shape == (12, 10, 10)
    assert torch.allclose(p.sum(-1), torch.ones(12, 10), atol=1e-5)
    assert torch.equal(p[..., :6], base[..., :6])  # non-gendered tokens unchanged
    gendered_in_topk = torch.isin(support[..., :6], torch.tensor([3, 4, 5, 6]))
    assert (p[..., :6][gendered_in_topk] == 0).all()  # a gendered token is counted once, in its own column
    if perturbation == "swap":
        assert torch.equal(p[..., 6], base[..., 7]) and torch.equal(p[..., 9], base[..., 8])


def test_loss_is_zero_kl_for_the_teacher_itself_and_positive_otherwise(tiny_data):
    teacher = _tiny_llama()
    ids, mask = tiny_data
    t = teacher_targets(teacher, ids, attention_mask=mask, k=40, gender_ids=[], cache=False)  # full support
    support, p = target_distribution(t, np.arange(12), temperature=1.0)
    with torch.no_grad():
        logits = teacher(input_ids=ids, attention_mask=mask).logits
        _, kl, _ = distillation_loss(logits, support_ids=support, teacher_probs=p, input_ids=ids, attention_mask=mask,
                                     temperature=1.0)
        other = _tiny_llama(seed=1)(input_ids=ids, attention_mask=mask).logits
        _, kl_other, _ = distillation_loss(other, support_ids=support, teacher_probs=p, input_ids=ids,
                                           attention_mask=mask, temperature=1.0)
    # independent reference: KL of the full softmaxes, averaged over the unpadded positions
    ref = torch.nn.functional.kl_div(torch.log_softmax(other, -1), torch.log_softmax(logits, -1), log_target=True,
                                     reduction="none").sum(-1)
    ref = float((ref * mask).sum() / mask.sum())
    assert float(kl) < 1e-5 and ref > 1e-3
    assert float(kl_other) == pytest.approx(ref, rel=2e-3)


def test_distillation_moves_the_student_towards_the_teacher(tiny_data):
    teacher = _tiny_llama(layers=4)
    ids, mask = tiny_data
    t = teacher_targets(teacher, ids, attention_mask=mask, k=10, gender_ids=[3, 4], cache=False)
    student = make_student(teacher, keep_every=2, freeze_embeddings=False)
    history = distill(student, t, epochs=15, batch_size=4, lr=1e-2, temperature=1.0, alpha=1.0, seed=0)
    first, last = np.mean([h["kl"] for h in history[:3]]), np.mean([h["kl"] for h in history[-3:]])
    assert last < 0.5 * first
    assert history[-1]["tokens"] == 15 * int(mask.sum())
    again = make_student(teacher, keep_every=2, freeze_embeddings=False)
    assert distill(again, t, epochs=15, batch_size=4, lr=1e-2, temperature=1.0, alpha=1.0, seed=0) == history  # seeded
    frozen = make_student(teacher, keep_every=2)  # the default: the tied embedding / head keeps the teacher's values
    steps = distill(frozen, t, epochs=15, batch_size=4, lr=1e-2, temperature=1.0, alpha=1.0, seed=0)
    assert torch.equal(frozen.get_input_embeddings().weight, teacher.get_input_embeddings().weight)
    assert not torch.equal(frozen.model.layers[1].mlp.up_proj.weight, teacher.model.layers[2].mlp.up_proj.weight)
    assert np.mean([h["kl"] for h in steps[-3:]]) < np.mean([h["kl"] for h in steps[:3]])
