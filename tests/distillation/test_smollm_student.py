"""Issue 14's "students do not learn": the real SmolLM2-135M teacher, its 15-layer students, held-out perplexity.

Slow (loads the 135M-parameter teacher and trains a 15-layer student for a few steps on one thread).
"""
import pytest
import torch

from workbench.distillation.corpus import make_passages, tokenize_passages
from workbench.distillation.evaluate import perplexity
from workbench.distillation.student import make_student


@pytest.fixture(scope="module")
def smollm_setup():
    from workbench.datasets import load_corpus
    from workbench.datasets.smollm import load_smollm2

    tokenizer, teacher = load_smollm2()
    passages = make_passages(load_corpus(["wiki"], max_documents=120, seed=0), tokenizer, seq_len=32, seed=0)
    heldout = tokenize_passages(passages.heldout[:8], tokenizer, seq_len=32)
    train = tokenize_passages(passages.train[:16], tokenizer, seq_len=32)
    return tokenizer, teacher, heldout, train


@pytest.mark.slow
def test_untrained_ends_student_is_a_language_model_and_spread_student_is_broken(smollm_setup):
    _, teacher, (ids, mask), _ = smollm_setup
    teacher_ppl = perplexity(teacher, ids, attention_mask=mask)
    ends = perplexity(make_student(teacher, keep_every=2), ids, attention_mask=mask)
    spread = perplexity(make_student(teacher, keep_every=2, selection="spread"), ids, attention_mask=mask)
    print(f"held-out perplexity: teacher {teacher_ppl:.1f}, ends {ends:.1f}, spread {spread:.1f}")
    assert 5 < teacher_ppl < 1_000
    # "spread" (layers 0, 2, ..., 28) is worse than a uniform guess over the 49,152 tokens: confidently wrong
    assert teacher_ppl < ends < 10_000 < 49_152 < spread


@pytest.mark.slow
def test_distillation_lowers_the_students_heldout_perplexity(smollm_setup):
    from workbench.distillation.role_reversal import gender_token_pairs
    from workbench.distillation.teacher import teacher_targets
    from workbench.distillation.train import distill

    tokenizer, teacher, (ids, mask), (train_ids, train_mask) = smollm_setup
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        targets = teacher_targets(teacher, train_ids, attention_mask=train_mask, k=32,
                                  gender_ids=gender_token_pairs(tokenizer).reshape(-1))
        torch.manual_seed(0)
        student = make_student(teacher, keep_every=2)
        before = perplexity(student, ids, attention_mask=mask)
        distill(student, targets, batch_size=4, lr=1e-3, seed=0)
        after = perplexity(student, ids, attention_mask=mask)
    finally:
        torch.set_num_threads(threads)
    print(f"student held-out perplexity before {before:.1f}, after 4 steps {after:.1f}")
    assert after < 0.8 * before
