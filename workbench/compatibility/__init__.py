"""Model-update studies: negative flips (``flips``), positive-congruent training (``pc_training``) and
backward-compatible embeddings (``bct``)."""
