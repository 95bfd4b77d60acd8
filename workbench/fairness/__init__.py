"""Fairness studies: intrinsic association tests (WEAT, SEAT, CEAT) on word and contextual embeddings,
their random-effects meta-analysis, and extrinsic metrics of downstream classifiers.

Import the submodules directly (``workbench.fairness.association``, ``.meta``, ``.contexts``,
``.contextual``, ...); this package file deliberately imports nothing. Notebooks 04 and 05 run their
experiments through ``workbench.fairness.studies`` (configs, study functions, tables, run records).
"""
