"""paperloom plugin tr-dpo: trust-region DPO / IPO / KTO on trl (Gorbatovski et al., arXiv 2404.09656).

Importing this package is cheap (no torch); the heavy modules are imported when a task runs.
"""
