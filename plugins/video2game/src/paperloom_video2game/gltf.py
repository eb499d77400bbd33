"""Game export (Video2Game Sec. 3.4-3.5): the baked scene as a glTF 2.0 binary (GLB, written by trimesh), its
collision hulls, the shader MLP and the web page.

glTF is y-up; part 1's scene box is z-up. The export rotates the scene by `Y_UP` (x, y, z) -> (x, z, -y); the page's
shader turns view directions back into scene coordinates before the MLP, so it computes exactly part 1's

    rgb = clamp(diffuse(uv) + MLP([specular(uv), dir]), 0, 1)

GLB layout: one node per object (named after it; a dynamic object's node sits at its centre of mass), a material
whose baseColorTexture is diffuse.png and whose emissiveTexture slot carries specular.png (the page reads both as
raw features, never as colours), TEXCOORD_0 = part 1's uv (origin top-left, as glTF has it), `extras.physics` per
mesh, the scene's extras (format, up axis, gravity, files). Files of an export folder:

    index.html, app.js (bundled three.js + cannon-es + web/src), scene.glb, colliders.json, mlp.json,
    diffuse.png, specular.png, scene.json (camera, spawn, physics world, files)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from paperloom import UserError

EXPORT_FORMAT = "paperloom-video2game-game/1"
Y_UP = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # scene (z up) -> glTF (y up): (x, y, z) -> (x, z, -y)


# --------------------------------------------------------------------------- reading part 1's baked/ folder


def baked_folder(scene: str) -> Path:
    """A bake run folder (or its baked/ folder) -> the baked/ folder."""
    if not scene:
        raise UserError("scene is empty; set scene=RUN_FOLDER of video2game:bake (or a baked/ folder)")
    p = Path(scene).expanduser()
    if not p.is_dir():
        raise UserError(f"scene = {scene!r}: no such folder; pass the run folder of video2game:bake")
    if (p / "baked").is_dir():
        return p / "baked"
    if (p / "mlp.json").is_file() or (p / "diffuse.png").is_file():
        return p
    raise UserError(f"{p}: no baked/ folder; pass the run folder of video2game:bake (it holds baked/)")


def read_mlp(path: Path) -> dict:
    """mlp.json, checked: the format tag and layer shapes that chain, ReLU between, none at the end."""
    from .bake import MLP_FORMAT

    if not path.is_file():
        raise UserError(f"{path}: missing; re-run video2game:bake (it writes mlp.json)")
    try:
        mlp = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        why = e.msg if hasattr(e, "msg") else e
        raise UserError(f"{path}: not valid JSON ({why}); re-run video2game:bake") from None
    if not isinstance(mlp, dict) or mlp.get("format") != MLP_FORMAT:
        raise UserError(f"{path}: format is {mlp.get('format') if isinstance(mlp, dict) else None!r}, expected "
                        f"{MLP_FORMAT!r}; re-run video2game:bake")
    layers = mlp.get("layers")
    if not isinstance(layers, list) or not layers:
        raise UserError(f"{path}: no layers; re-run video2game:bake")
    prev = None
    for k, layer in enumerate(layers):
        try:
            w, b = np.asarray(layer["weight"], np.float64), np.asarray(layer["bias"], np.float64)
            act = layer["activation"]
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}: layers[{k}] needs weight (out x in), bias (out) and activation; re-run "
                            "video2game:bake") from None
        if w.ndim != 2 or b.shape != (w.shape[0],) or (prev is not None and w.shape[1] != prev) or \
                not np.isfinite(w).all() or not np.isfinite(b).all():
            raise UserError(f"{path}: layers[{k}] has weight {w.shape} / bias {b.shape} that do not chain (or are "
                            "not finite); re-run video2game:bake")
        if act != ("none" if k == len(layers) - 1 else "relu"):
            raise UserError(f"{path}: layers[{k}].activation = {act!r}; expected relu between layers and none last")
        prev = w.shape[0]
    if prev != 3 or not 4 <= np.asarray(layers[0]["weight"]).shape[1] <= 7:
        raise UserError(f"{path}: the MLP maps {np.asarray(layers[0]['weight']).shape[1]} inputs to {prev} outputs; "
                        "expected specular (1-4) + direction (3) -> rgb (3)")
    return mlp


def read_texture(path: Path, channels: int) -> np.ndarray:
    """A square 8-bit PNG as uint8 (S, S, >= channels)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise UserError(f"{path}: missing; re-run video2game:bake (it writes {path.name})")
    try:
        img = np.asarray(Image.open(path))
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{path}: not a readable PNG ({e}); re-run video2game:bake") from None
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[0] != img.shape[1] or img.shape[2] < channels:
        raise UserError(f"{path}: {img.shape} {img.dtype}; expected a square 8-bit image with >= {channels} channels")
    return img


def load_baked(folder: Path) -> dict:
    """baked/ -> {mlp, specular_dim, diffuse (S, S, 3), specular (S, S, 3|4) uint8, objects {name: trimesh with uv in
    part 1's convention (row = v)}}."""
    import trimesh

    mlp = read_mlp(folder / "mlp.json")
    c = int(np.asarray(mlp["layers"][0]["weight"]).shape[1]) - 3
    diffuse = read_texture(folder / "diffuse.png", 3)[..., :3]
    specular = read_texture(folder / "specular.png", c)
    if specular.shape[0] != diffuse.shape[0]:
        raise UserError(f"{folder}: diffuse.png is {diffuse.shape[0]}^2 but specular.png {specular.shape[0]}^2; "
                        "re-run video2game:bake")
    files = sorted((folder / "objects").glob("*.obj")) or ([folder / "scene.obj"] if (folder / "scene.obj").is_file()
                                                           else [])
    if not files:
        raise UserError(f"{folder}: no objects/*.obj and no scene.obj; re-run video2game:bake")
    objects = {}
    for f in files:
        try:
            m = trimesh.load(f, force="mesh", process=False, maintain_order=True)
        except Exception as e:  # noqa: BLE001 (trimesh raises many kinds)
            raise UserError(f"{f}: cannot be read as an OBJ ({e}); re-run video2game:bake") from None
        uv = getattr(m.visual, "uv", None)
        if uv is None or len(uv) != len(m.vertices):
            raise UserError(f"{f}: no texture coordinates (vt) per vertex; re-run video2game:bake")
        if len(m.faces) == 0:
            continue
        uv = np.asarray(uv, np.float64).copy()
        uv[:, 1] = 1 - uv[:, 1]  # OBJ vt = (u, 1 - v) -> part 1's (u, v), row = v
        objects[f.stem] = trimesh.Trimesh(np.asarray(m.vertices), np.asarray(m.faces), process=False,
                                          metadata={"uv": uv})
    if not objects:
        raise UserError(f"{folder}: every OBJ is empty; re-run video2game:mesh / bake")
    return {"mlp": mlp, "specular_dim": c, "diffuse": diffuse, "specular": specular, "objects": objects}


# --------------------------------------------------------------------------- GLB


def to_gltf(p: np.ndarray) -> np.ndarray:
    return np.asarray(p, np.float64) @ Y_UP.T


def from_gltf(p: np.ndarray) -> np.ndarray:
    return np.asarray(p, np.float64) @ Y_UP


def write_glb(path: Path, baked: dict, bodies: list[dict], extras: dict) -> dict:
    """The scene as GLB: a node per object (at its body's position, glTF coordinates), textures, extras."""
    import trimesh
    from PIL import Image

    mat = trimesh.visual.material.PBRMaterial(
        name="baked", baseColorTexture=Image.fromarray(baked["diffuse"]),
        emissiveTexture=Image.fromarray(baked["specular"]), emissiveFactor=[0.0, 0.0, 0.0],
        metallicFactor=0.0, roughnessFactor=1.0, doubleSided=True)
    scene = trimesh.Scene(metadata=dict(extras))
    by_name = {b["name"]: b for b in bodies}
    counts = {}
    for name, m in baked["objects"].items():
        b = by_name[name]
        pos = np.asarray(b["position"])
        v = to_gltf(np.asarray(m.vertices) - pos)
        uv = m.metadata["uv"].copy()
        uv[:, 1] = 1 - uv[:, 1]  # trimesh keeps OBJ's convention and flips to glTF's when it writes
        phys = {k: b[k] for k in ("type", "mass", "friction", "restitution")}
        geom = trimesh.Trimesh(v, np.asarray(m.faces), process=False,
                               visual=trimesh.visual.TextureVisuals(uv=uv, material=mat),
                               metadata={"physics": {**phys, "body": b["body"], "colliders": "colliders.json"}})
        node = np.eye(4)
        node[:3, 3] = to_gltf(pos)
        scene.add_geometry(geom, node_name=name, geom_name=name, transform=node)
        counts[name] = (len(v), len(m.faces))
    path.write_bytes(trimesh.exchange.gltf.export_glb(scene, include_normals=False))
    return counts


def colliders_gltf(bodies: list[dict]) -> list[dict]:
    """Bodies in glTF coordinates (the page's physics world: y up)."""
    out = []
    for b in bodies:
        out.append({**{k: b[k] for k in ("name", "type", "mass", "friction", "restitution")},
                    "position": to_gltf(b["position"]).tolist(),
                    "hulls": [{"vertices": np.round(to_gltf(h["vertices"]), 6).tolist(), "faces": h["faces"]}
                              for h in b["hulls"]]})
    return out


# --------------------------------------------------------------------------- reference render (Python side)


def bilinear(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """LINEAR / CLAMP_TO_EDGE lookup of a (S, S, C) texture in [0, 1], texel centres at (i + 0.5) / S, row = v."""
    s = tex.shape[0]
    x, y = uv[:, 0] * s - 0.5, uv[:, 1] * s - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    t = lambda i, j: tex[np.clip(j, 0, s - 1), np.clip(i, 0, s - 1)]  # noqa: E731
    return ((1 - fx) * (1 - fy) * t(x0, y0) + fx * (1 - fy) * t(x0 + 1, y0) + (1 - fx) * fy * t(x0, y0 + 1)
            + fx * fy * t(x0 + 1, y0 + 1))


def perspective_intrinsics(fov_deg: float, width: int, height: int) -> tuple[float, float, float, float]:
    """three.js's PerspectiveCamera: `fov` is the vertical field of view."""
    f = 0.5 * height / np.tan(np.radians(fov_deg) / 2)
    return f, f, width / 2, height / 2


def reference_render(baked: dict, c2w: np.ndarray, fov_deg: float, width: int, height: int,
                     background=(0.0, 0.0, 0.0), offsets: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What the page's shader draws for a camera (scene coordinates, OpenGL c2w), by ray casting the meshes:
    rgb float (H, W, 3) in [0, 1] and the coverage mask. `offsets` moves objects (name -> translation)."""
    import trimesh

    from .bake import cast, shade_numpy
    from .data import camera_rays

    parts, uvs = [], []
    for name, m in baked["objects"].items():
        v = np.asarray(m.vertices) + (np.asarray(offsets[name]) if offsets and name in offsets else 0)
        parts.append(trimesh.Trimesh(v, m.faces, process=False))
        uvs.append(m.metadata["uv"])
    mesh = trimesh.util.concatenate(parts)
    uv = np.concatenate(uvs)
    o, d = camera_rays(c2w, perspective_intrinsics(fov_deg, width, height), height, width)
    o, d = o.numpy().astype(np.float64), d.numpy().astype(np.float64)
    ray, _, huv = cast(mesh, uv, o, d)
    img = np.tile(np.asarray(background, np.float64), (height * width, 1))
    c = baked["specular_dim"]
    if len(ray):
        dif = bilinear(baked["diffuse"].astype(np.float64) / 255, huv)
        spec = bilinear(baked["specular"][..., :c].astype(np.float64) / 255, huv)
        img[ray] = shade_numpy(dif, spec, d[ray], baked["mlp"])
    mask = np.zeros(height * width, bool)
    mask[ray] = True
    return img.reshape(height, width, 3), mask.reshape(height, width)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


# --------------------------------------------------------------------------- the whole export


def look_at(eye, target) -> np.ndarray:
    from .synthetic import look_at as _look_at

    return _look_at(np.asarray(eye, np.float64), np.asarray(target, np.float64))


def safe_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "object"


def collision_bodies(cfg, objects: dict, seed: int = 0, log=None) -> tuple[list[dict], dict]:
    """Per object: static (tiles of slab hulls) or dynamic (convex decomposition), with its physics parameters."""
    from .collision import body, decompose, tiles

    unknown = sorted(set(cfg.objects) - set(objects))
    if unknown:
        raise UserError(f"collision.objects names {unknown}, but the scene has only {sorted(objects)}")
    bodies, stats = [], {"hulls": 0.0, "hulls_static": 0.0, "hulls_dynamic": 0.0}
    for name, m in objects.items():
        over = cfg.objects.get(name, {}) or {}
        if not isinstance(over, dict) or set(over) - {"mass", "friction", "restitution", "dynamic"}:
            raise UserError(f"collision.objects.{name} = {over!r}: expected a mapping of mass, friction, restitution, "
                            "dynamic")
        dynamic = bool(over.get("dynamic", name not in cfg.static))
        if dynamic:
            hulls = decompose(m, cfg.method, cfg.threshold, cfg.max_hulls, seed, cfg.preprocess)
        else:
            hulls = tiles(m, cfg.tile, cfg.thickness)
        if not hulls:
            if log:
                log.warning(f"collision: {name} has no collision hull (too small or flat); it is drawn only")
            continue
        kind = "dynamic" if dynamic else "static"
        bodies.append(body(name, kind, hulls, over.get("mass", cfg.mass), over.get("friction", cfg.friction),
                           over.get("restitution", cfg.restitution), cfg.max_faces))
        stats["hulls"] += len(hulls)
        stats[f"hulls_{kind}"] += len(hulls)
        stats[f"hulls_{name}"] = float(len(hulls))
        if dynamic and m.is_watertight and m.volume > 0:
            import trimesh

            vol = sum(trimesh.Trimesh(*_tri(h)).volume for h in bodies[-1]["hulls"])
            stats[f"hull_volume_ratio_{name}"] = float(vol / m.volume)
    return bodies, stats


def _tri(hull: dict) -> tuple[np.ndarray, np.ndarray]:
    """A polygon-faced hull as triangles (fans)."""
    faces = [[f[0], f[k], f[k + 1]] for f in hull["faces"] for k in range(1, len(f) - 1)]
    return np.asarray(hull["vertices"]), np.asarray(faces)


def export_game(cfg, ctx, baked_dir: Path, out: Path) -> dict[str, float]:
    """baked/ -> game/ (GLB, colliders.json, mlp.json, textures, scene.json, and index.html + app.js)."""
    import shutil

    from paperloom.io import atomic_write_json, atomic_write_text

    from . import web
    from .collision import is_convex

    baked = load_baked(baked_dir)
    for key, n in (("eye", 3), ("target", 3), ("background", 3)):
        if len(getattr(cfg, key)) != n:
            raise UserError(f"{key} = {getattr(cfg, key)}: expected {n} numbers")
    if cfg.spawn and len(cfg.spawn) != 3:
        raise UserError(f"spawn = {cfg.spawn}: expected 3 numbers (x y z) or [] for automatic")
    baked["objects"] = {safe_name(k): v for k, v in baked["objects"].items()}
    bodies, stats = collision_bodies(cfg.collision, baked["objects"], ctx.seed, ctx.log)
    # a mesh without a body (no hull) is still drawn, as static scenery
    for name in baked["objects"]:
        if name not in {b["name"] for b in bodies}:
            bodies.append({"name": name, "type": "static", "mass": 0.0, "friction": 0.0, "restitution": 0.0,
                           "position": [0.0, 0.0, 0.0], "hulls": []})
    convex = all(is_convex(h["vertices"], h["faces"]) for b in bodies for h in b["hulls"])
    allv = np.concatenate([np.asarray(m.vertices) for m in baked["objects"].values()])
    static_v = [np.asarray(baked["objects"][b["name"]].vertices) for b in bodies
                if b["type"] == "static" and b["hulls"]]
    floor_z = float(np.concatenate(static_v)[:, 2].min()) if static_v else float(allv[:, 2].min())
    c = cfg.collision
    out.mkdir(parents=True, exist_ok=True)
    index = {b["name"]: k for k, b in enumerate(bodies)}
    for b in bodies:
        b["body"] = index[b["name"]]
    extras = {"format": EXPORT_FORMAT, "up": "y (the scene box's z: scene (x, y, z) = glTF (x, -z, y))",
              "shader": "rgb = clamp(baseColorTexture + MLP([emissiveTexture[:C], view dir (scene axes)]), 0, 1)",
              "mlp": "mlp.json", "colliders": "colliders.json", "gravity": c.gravity}
    counts = write_glb(out / "scene.glb", baked, bodies, extras)
    atomic_write_json(out / "colliders.json", {"format": EXPORT_FORMAT, "frame": "glTF (y up)",
                                               "bodies": colliders_gltf(bodies)})
    shutil.copyfile(baked_dir / "mlp.json", out / "mlp.json")
    shutil.copyfile(baked_dir / "diffuse.png", out / "diffuse.png")
    shutil.copyfile(baked_dir / "specular.png", out / "specular.png")
    radius = 0.08
    spawn = list(cfg.spawn) if cfg.spawn else [float(allv[:, 0].mean()), float(allv[:, 1].min()) - 0.3,
                                               floor_z + radius + 0.05]
    c2w = look_at(cfg.eye, cfg.target)
    meta = {"format": EXPORT_FORMAT, "files": {"glb": "scene.glb", "mlp": "mlp.json", "colliders": "colliders.json"},
            "background": list(cfg.background),
            "camera": {"c2w": c2w.reshape(-1).tolist(), "fov": cfg.fov, "eye": list(cfg.eye),
                       "target": list(cfg.target)},
            "physics": {"gravity": c.gravity, "floor": float(to_gltf([0, 0, floor_z])[1]) if c.floor else None,
                        "iterations": 10, "dt": 1 / 60},
            "player": {"spawn": spawn, "radius": radius, "eye": 0.25, "speed": cfg.speed, "jump": 2.0,
                       "yaw": 0.0, "pitch": -0.35},
            "objects": {b["name"]: {"type": b["type"], "hulls": len(b["hulls"])} for b in bodies}}
    atomic_write_json(out / "scene.json", meta)
    triangles = sum(f for _, f in counts.values())
    result = {**stats, "triangles": float(triangles), "vertices": float(sum(v for v, _ in counts.values())),
              "bodies": float(sum(1 for b in bodies if b["hulls"])), "hulls_convex": float(convex),
              "glb_bytes": float((out / "scene.glb").stat().st_size)}
    if cfg.web:
        result.update(web.build(out, cfg.npm_cache, cfg.minify, ctx.log))
    else:
        atomic_write_text(out / "README.txt", "web page not built (web=false); run video2game:export again\n")
    ctx.log.info(f"export: {len(bodies)} bodies, {int(stats['hulls'])} hulls, {triangles} triangles -> {out}")
    return result

