"""Megalodon (Ma et al., arXiv 2404.08801) as a paperloom plugin.

Cheap to import: the model lives in `paperloom_megalodon.model` (imports torch/transformers).
"""

__version__ = "0.2.0"
