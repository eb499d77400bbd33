"""paperloom plugin for COCONut (Deng et al., "COCONut: Modernizing COCO Segmentation", CVPR 2024).

Cheap to import: no torch here. The pieces live in `panoptic` (ids, lazy index), `data` (torch
datasets), `convert`, `pq` (evaluators), `visualize`, `model`, `synth` (demo data) and `tasks`.
"""
