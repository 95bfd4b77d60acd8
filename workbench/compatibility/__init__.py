"""Model-update studies: negative flips (``flips``), positive-congruent training (``pc_training``),
backward-compatible embeddings (``bct``), and notebooks 06 and 07's experiments as study functions (``studies``)."""
