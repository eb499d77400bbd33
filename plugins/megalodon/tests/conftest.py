"""Run Triton kernels through the Triton interpreter on CPU; keep every test on one thread."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
