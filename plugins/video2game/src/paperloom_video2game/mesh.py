"""Mesh extraction (Video2Game Sec. 3.2): the NeRF density sampled on a grid over a region of the contracted cube,
marching cubes (scikit-image) at a density level, clean-up with trimesh (small pieces dropped), decimation to a
face budget (fast-simplification, quadric error), un-contraction to world space, and per-object meshes by box."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def density_grid(density: Callable, lo, hi, resolution: int, chunk: int = 1 << 16) -> np.ndarray:
    """density(y (M, 3) torch) -> (M,) sampled at resolution^3 points spanning [lo, hi] (corners included)."""
    import torch

    axes = [torch.linspace(float(a), float(b), resolution) for a, b in zip(lo, hi)]
    pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).view(-1, 3)
    with torch.no_grad():
        vals = torch.cat([density(pts[i:i + chunk]).float().cpu() for i in range(0, len(pts), chunk)])
    return vals.view(resolution, resolution, resolution).numpy()


def marching_cubes(values: np.ndarray, level: float, lo, hi):
    """Iso-surface {values = level} of a grid spanning [lo, hi] as a trimesh mesh (outward normals: density falls
    outward). Empty if the level is never crossed."""
    import trimesh
    from skimage import measure

    if not (values.min() < level < values.max()):
        return trimesh.Trimesh()
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    spacing = (hi - lo) / (np.array(values.shape) - 1)
    # pad with "empty" so surfaces touching the region's border close (watertight pieces)
    padded = np.pad(values, 1, constant_values=min(float(values.min()), level - 1))
    verts, faces, _, _ = measure.marching_cubes(padded, level, spacing=tuple(spacing), gradient_direction="descent")
    # skimage orders the triangles of a "descent" field clockwise seen from outside: flip to trimesh's outward winding
    return trimesh.Trimesh(verts + lo - spacing, faces[:, ::-1], process=True)


def clean(mesh, min_component: float = 0.01, faces: int = 0):
    """Drop connected pieces with fewer than `min_component` of the faces, then decimate to `faces`."""
    import trimesh

    if len(mesh.faces) == 0:
        return mesh
    parts = mesh.split(only_watertight=False)
    keep = [p for p in parts if len(p.faces) >= min_component * len(mesh.faces)]
    keep = keep or [max(parts, key=lambda p: len(p.faces))]
    mesh = trimesh.util.concatenate(keep)
    if faces and len(mesh.faces) > faces:
        import fast_simplification

        v, f = fast_simplification.simplify(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces),
                                            target_reduction=1 - faces / len(mesh.faces))
        mesh = trimesh.Trimesh(v, f, process=True)
    mesh.remove_unreferenced_vertices()
    return mesh


def uncontract_mesh(mesh):
    """Vertices from contracted coordinates back to the world (the inverse of model.contract)."""
    import torch

    from .model import uncontract

    mesh = mesh.copy()
    mesh.vertices = uncontract(torch.from_numpy(np.asarray(mesh.vertices, np.float64))).numpy()
    return mesh


def split_by_boxes(mesh, boxes: dict[str, list[float]]) -> dict:
    """{name: faces whose centroid lies in the box} for each box, and "background" for the rest."""
    centres = mesh.triangles_center
    taken = np.zeros(len(mesh.faces), bool)
    out = {}
    for name, b in boxes.items():
        lo, hi = np.asarray(b[:3]), np.asarray(b[3:])
        inside = (centres >= lo).all(1) & (centres <= hi).all(1) & ~taken
        taken |= inside
        if inside.any():
            out[name] = mesh.submesh([np.flatnonzero(inside)], append=True)
    if (~taken).any():
        out["background"] = mesh.submesh([np.flatnonzero(~taken)], append=True)
    return out


def extract(density: Callable, bounds, resolution: int, level: float | None, min_component: float = 0.01,
            faces: int = 0) -> tuple:
    """The whole stage on a density in contracted coordinates: (world mesh, contracted-space mesh before clean-up).
    level None: the sampled grid's median (an untrained field has no meaningful level)."""
    lo, hi = bounds[:3], bounds[3:]
    values = density_grid(density, lo, hi, resolution)
    raw = marching_cubes(values, float(np.median(values)) if level is None else level, lo, hi)
    if len(raw.faces) == 0:
        return raw, raw
    return uncontract_mesh(clean(raw, min_component, faces)), raw
