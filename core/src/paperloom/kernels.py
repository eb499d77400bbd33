"""Choosing between a plugin's Triton kernel and its PyTorch path (megalodon, dynamic-typography, video2game).

"auto" uses Triton for CUDA tensors when Triton is installed and PyTorch otherwise; "triton" forces the kernel
(CPU tensors need TRITON_INTERPRET=1, the Triton interpreter the tests use); "torch" forces the reference path.
Kernels themselves live in the plugins and are defined on first use, so TRITON_INTERPRET may be set any time
before that.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

BACKENDS = ("auto", "torch", "triton")
HAS_TRITON = importlib.util.find_spec("triton") is not None


def backend_for(backend: str, x: Any, option: str = "backend") -> str:
    """"torch" or "triton" for tensor `x`; `option` names the config key in the errors."""
    if backend not in BACKENDS:
        raise ValueError(f"{option}={backend!r}; expected one of {BACKENDS}")
    if backend == "torch":
        return "torch"
    if backend == "triton":
        if not HAS_TRITON:
            raise RuntimeError(f"{option}='triton' but triton is not installed; pip install triton or use 'torch'")
        if not x.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError(f"{option}='triton' on CPU tensors needs TRITON_INTERPRET=1 (the Triton "
                               f"interpreter); use {option}='torch' or 'auto' on CPU")
        return "triton"
    return "triton" if HAS_TRITON and x.is_cuda else "torch"
