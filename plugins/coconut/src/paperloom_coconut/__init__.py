"""paperloom plugin for COCONut (Deng et al., "COCONut: Modernizing COCO Segmentation", CVPR 2024).

Cheap to import: no torch here. `plugin` declares, `config` holds the task schemas, `components` the
builders (`panoptic` dataset, `baseline` model, `pq` evaluator), `tasks` / `demo` the tasks. The pieces:
`panoptic` (ids, lazy index), `data` (torch datasets), `convert`, `pq` (PQ / mIoU / AP), `visualize`,
`model` (the baseline), `synthetic` (the demo's generated data), `categories`.
"""
