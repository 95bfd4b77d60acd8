"""Study 08: counterfactual role-reversal distillation of a language model (Gupta et al., Findings of ACL 2022).

SmolLM2-135M (the teacher) is distilled into a student made of half of its layers (the first 6 and the last 9), plainly or with
counterfactual role reversal: gender-swapped copies of the training text (:mod:`.role_reversal`, CDA) and/or the
teacher's next-token probabilities swapped between gendered token pairs. The models are compared on gender
disparity in open-ended generation, perplexity on held-out text, and the fairness of a downstream tweet classifier
built on their features.

Modules: :mod:`.role_reversal` (pure CDA and perturbation), :mod:`.corpus` (passages), :mod:`.teacher` (cached
top-k teacher distributions), :mod:`.student`, :mod:`.train` (the loss and loop), :mod:`.evaluate`,
:mod:`.studies` (config, study function, run record). Heavy imports (torch, transformers) happen inside them, not
here.
"""
from .role_reversal import (CDA_MODES, PERTURBATIONS, augment_texts, cda_swap, gendered_word_counts, perturb_probabilities,
                            training_rows)
from .studies import VARIANTS, DistillationStudy, DistillationStudyConfig, distillation_metrics, distillation_record, distillation_study

__all__ = ["CDA_MODES", "PERTURBATIONS", "augment_texts", "cda_swap", "gendered_word_counts", "perturb_probabilities",
           "training_rows",
           "VARIANTS", "DistillationStudy", "DistillationStudyConfig", "distillation_metrics", "distillation_record",
           "distillation_study"]
