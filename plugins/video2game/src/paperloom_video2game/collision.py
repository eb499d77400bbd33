"""Collision shapes (Video2Game Sec. 3.4, "physics"): every movable object is decomposed into convex hulls (CoACD,
the reference's choice; V-HACD through vhacdx as the alternative) and becomes a rigid body with mass, friction and
restitution; the static scene (ground, walls) is cut into square tiles and each tile gets one convex hull (a slab:
the tile's surface swept `thickness` down), so large, open, non-watertight reconstructed surfaces still collide.

Coordinates are the scene box's (z up, part 1's normalisation). A body is

    {"name", "type": "static" | "dynamic", "mass", "friction", "restitution",
     "position": [x, y, z] (the hulls' volume-weighted centroid for dynamic bodies, 0 for static ones),
     "hulls": [{"vertices": (n, 3) relative to position, "faces": (m, 3) outward, counter-clockwise}]}
"""

from __future__ import annotations

import numpy as np

UP = np.array([0.0, 0.0, 1.0])


def convex_hull(points: np.ndarray):
    """The convex hull of points (qhull through trimesh): watertight, faces wound outward."""
    import trimesh

    hull = trimesh.convex.convex_hull(np.asarray(points, np.float64), repair=True)
    hull.fix_normals()
    return hull


def directions(n: int) -> np.ndarray:
    """n near-uniform unit vectors (Fibonacci sphere) plus the six axes."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    r = np.sqrt(1 - z * z)
    a = np.pi * (1 + 5**0.5) * k
    return np.concatenate([np.eye(3), -np.eye(3), np.stack([r * np.cos(a), r * np.sin(a), z], 1)])


def bounded(hull, max_faces: int):
    """A hull with at most ~max_faces planar faces that contains `hull` (a k-DOP: the intersection of the support
    half-spaces of `hull` along fixed directions); `hull` itself when it already has few enough. Physics engines'
    convex-convex tests cost grows with the faces of both shapes."""
    from scipy.spatial import HalfspaceIntersection

    if len(polygons(hull)[1]) <= max_faces:
        return hull
    v = np.asarray(hull.vertices)
    d = directions(max(max_faces - 6, 4))
    h = (v @ d.T).max(0)
    centre = v.mean(0)
    inter = HalfspaceIntersection(np.concatenate([d, -h[:, None]], 1), centre)
    return convex_hull(inter.intersections)


def polygons(hull, decimals: int = 7) -> tuple[np.ndarray, list[list[int]]]:
    """A convex hull's faces merged into planar polygons (vertex indices counter-clockwise seen from outside)."""
    v = np.asarray(hull.vertices, np.float64)
    f = np.asarray(hull.faces)
    n = np.asarray(hull.face_normals)
    scale = max(1.0, float(np.abs(v).max()))
    key = np.round(np.concatenate([n, ((n * v[f[:, 0]]).sum(1) / scale)[:, None]], 1), decimals - 3)
    _, group = np.unique(key, axis=0, return_inverse=True)
    out = []
    for g in range(group.max() + 1):
        idx = np.unique(f[group.reshape(-1) == g])
        normal = n[group.reshape(-1) == g].mean(0)
        normal /= np.linalg.norm(normal)
        c = v[idx].mean(0)
        a = np.cross(normal, [1.0, 0, 0] if abs(normal[0]) < 0.9 else [0, 1.0, 0])
        a /= np.linalg.norm(a)
        b = np.cross(normal, a)
        ang = np.arctan2((v[idx] - c) @ b, (v[idx] - c) @ a)
        out.append(idx[np.argsort(ang)].tolist())  # counter-clockwise about the outward normal
    return v, out


def decompose(mesh, method: str = "coacd", threshold: float = 0.05, max_hulls: int = 0, seed: int = 0,
              preprocess: bool = False) -> list:
    """A mesh -> convex hulls (trimesh meshes) whose union covers it. Each piece CoACD / V-HACD returns is hulled
    again with qhull, so every hull is exactly convex and watertight whatever the decomposer's own output.
    max_hulls = 0: as many as the concavity threshold needs (CoACD's hull merging is slow on large meshes);
    preprocess: CoACD's manifold repair first (for non-watertight input; minutes on a marching-cubes mesh)."""
    import trimesh

    mesh = trimesh.Trimesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64))  # merges seams
    v, f = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)
    if len(f) == 0:
        return []
    pieces: list[np.ndarray] = []
    if method == "coacd":
        import coacd

        coacd.set_log_level("error")
        parts = coacd.run_coacd(coacd.Mesh(v, f), threshold=threshold, max_convex_hull=max_hulls or -1,
                                preprocess_mode="on" if preprocess else "off", preprocess_resolution=30,
                                resolution=1000, mcts_nodes=10, mcts_iterations=40, mcts_max_depth=2, seed=seed)
        pieces = [np.asarray(pv) for pv, _ in parts]
    elif method == "vhacd":
        parts = trimesh.decomposition.convex_decomposition(mesh, maxConvexHulls=max_hulls or 16, resolution=20000)
        parts = parts if isinstance(parts, list) else [parts]
        pieces = [np.asarray(p["vertices"] if isinstance(p, dict) else p.vertices) for p in parts]
    elif method == "hull":
        pieces = [v]
    else:
        raise ValueError(f"unknown decomposition method {method!r}")
    hulls = []
    for p in pieces:
        if len(p) >= 4 and np.linalg.matrix_rank(p - p.mean(0), tol=1e-9) == 3:
            hulls.append(convex_hull(p))
    return hulls or [convex_hull(_thicken(v))]


def _thicken(v: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Flat point sets (a single planar patch) get a tiny thickness so qhull has a volume."""
    return np.concatenate([v, v - eps * UP])


def clip_polygon(poly: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: a 3-d polygon (n, 3) clipped to lo <= (x, y) <= hi."""
    for axis in (0, 1):
        for bound, sign in ((lo[axis], 1.0), (hi[axis], -1.0)):
            if len(poly) == 0:
                return poly
            d = sign * (poly[:, axis] - bound)  # >= 0 inside
            out = []
            for k in range(len(poly)):
                p, q, dp, dq = poly[k], poly[(k + 1) % len(poly)], d[k], d[(k + 1) % len(poly)]
                if dp >= 0:
                    out.append(p)
                if (dp >= 0) != (dq >= 0):
                    out.append(p + (q - p) * (dp / (dp - dq)))
            poly = np.asarray(out).reshape(-1, 3)
    return poly


def tiles(mesh, size: float, thickness: float) -> list:
    """Static scene -> one slab hull per `size` x `size` tile (xy) of its surface: the tile's piece of the surface
    (triangles clipped exactly at the tile's borders) and the same points `thickness` lower, hulled."""
    if len(mesh.faces) == 0:
        return []
    lo, hi = mesh.bounds[0, :2], mesh.bounds[1, :2]
    n = np.maximum(np.ceil((hi - lo) / size - 1e-9).astype(int), 1)
    tri = np.asarray(mesh.triangles)
    tmin, tmax = tri[:, :, :2].min(1), tri[:, :, :2].max(1)
    out = []
    for i in range(n[0]):
        for j in range(n[1]):
            a = lo + np.array([i, j]) * size
            b = a + size
            sel = np.flatnonzero(np.all(tmax >= a, 1) & np.all(tmin <= b, 1))
            pts = [clip_polygon(tri[f], a, b) for f in sel]
            pts = [p for p in pts if len(p)]
            if not pts:
                continue
            pts = np.unique(np.round(np.concatenate(pts), 9), axis=0)
            pts = np.concatenate([pts, pts - thickness * UP])
            if len(pts) >= 4 and np.linalg.matrix_rank(pts - pts.mean(0), tol=1e-9) == 3:
                out.append(convex_hull(pts))
    return out


def body(name: str, kind: str, hulls: list, mass: float, friction: float, restitution: float,
         max_faces: int = 0) -> dict:
    """A rigid body of hulls; a dynamic body's origin is its hulls' volume-weighted centroid (its centre of mass)."""
    if kind == "dynamic":
        vols = np.array([max(h.volume, 1e-12) for h in hulls])
        centre = (np.stack([h.center_mass for h in hulls]) * vols[:, None]).sum(0) / vols.sum()
    else:
        centre = np.zeros(3)
    out = []
    for h in hulls:
        v, faces = polygons(bounded(h, max_faces) if max_faces else h)
        out.append({"vertices": (v - centre).tolist(), "faces": faces})
    return {"name": name, "type": kind, "mass": float(mass) if kind == "dynamic" else 0.0,
            "friction": float(friction), "restitution": float(restitution), "position": centre.tolist(),
            "hulls": out}


def face_planes(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals (Newell's method, any planar polygon) and a point of each face."""
    v = np.asarray(vertices, np.float64)
    normals, points = [], []
    for face in faces:
        p = v[list(face)]
        q = np.roll(p, -1, 0)
        n = np.stack([((p[:, 1] - q[:, 1]) * (p[:, 2] + q[:, 2])).sum(),
                      ((p[:, 2] - q[:, 2]) * (p[:, 0] + q[:, 0])).sum(),
                      ((p[:, 0] - q[:, 0]) * (p[:, 1] + q[:, 1])).sum()])
        normals.append(n / (np.linalg.norm(n) + 1e-300))
        points.append(p.mean(0))
    return np.asarray(normals), np.asarray(points)


def is_convex(vertices, faces, points: np.ndarray | None = None, tol: float = 1e-7) -> bool:
    """Every point (default: the hull's own vertices) lies on the inner side of every face plane (outward normals;
    faces are triangles or planar polygons)."""
    v = np.asarray(vertices, np.float64)
    n, c = face_planes(v, faces)
    p = v if points is None else np.asarray(points, np.float64)
    side = np.einsum("pfk,fk->pf", p[:, None] - c[None], n)  # signed distance to each face plane
    return bool((side <= tol * max(1.0, np.abs(v).max())).all())
