"""A generated scene for the demo and the tests: textured ground, a vase (a surface of revolution with a glossy
glaze) and a textured box, rendered by ray casting (trimesh + embree) along an orbit with known poses into frames,
an MP4 and a ``transforms.json``. World units; z is up."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from paperloom.io import atomic_write_json

LIGHT = np.array([0.45, -0.35, 0.82]) / np.linalg.norm([0.45, -0.35, 0.82])
GROUND, VASE, BOX = 0, 1, 2


class Scene:
    """The three objects as one trimesh mesh with a per-face object id, and their world boxes."""

    def __init__(self, seed: int = 0) -> None:
        import trimesh

        rng = np.random.default_rng(seed)
        self.vase_at = np.array([-0.4, 0.12, 0.0]) + rng.uniform(-0.05, 0.05, 3) * [1, 1, 0]
        self.box_at = np.array([0.42, -0.3, 0.0]) + rng.uniform(-0.05, 0.05, 3) * [1, 1, 0]
        self.box_angle = math.radians(25 + rng.uniform(-10, 10))
        self.hue = rng.uniform(-0.08, 0.08, 3)
        self.noise = [rng.uniform(0, 1, (n, n)) for n in (16, 48, 140)]  # value noise: a non-periodic ground for SfM
        g = 2.4
        ground = trimesh.Trimesh([[-g, -g, 0], [g, -g, 0], [g, g, 0], [-g, g, 0]], [[0, 1, 2], [0, 2, 3]])
        zs = np.linspace(0, 0.75, 24)
        profile = np.stack([0.13 + 0.09 * np.sin(zs / 0.75 * math.pi * 1.3) + 0.03 * (zs > 0.68), zs], 1)
        profile = np.vstack([[0, 0], profile, [0, 0.75]])
        vase = trimesh.creation.revolve(profile, sections=48)
        vase.apply_translation(self.vase_at)
        box = trimesh.creation.box(extents=[0.42, 0.42, 0.42])
        box.apply_transform(trimesh.transformations.rotation_matrix(self.box_angle, [0, 0, 1]))
        box.apply_translation(self.box_at + [0, 0, 0.21])
        self.parts = [ground, vase, box]
        self.mesh = trimesh.util.concatenate(self.parts)
        self.face_object = np.concatenate([np.full(len(p.faces), k) for k, p in enumerate(self.parts)])
        self.boxes = {"vase": _aabb(vase, 0.05), "box": _aabb(box, 0.05)}

    def _albedo(self, p: np.ndarray, obj: np.ndarray) -> np.ndarray:
        out = np.zeros((len(p), 3))
        g = obj == GROUND
        x, y = p[g, 0], p[g, 1]
        checker = ((np.floor(x / 0.6) + np.floor(y / 0.6)) % 2)[:, None]
        grain = (0.3 * self._noise(0, x, y) + 0.35 * self._noise(1, x, y) + 0.35 * self._noise(2, x, y))[:, None]
        out[g] = np.array([0.62, 0.52, 0.36]) * (0.1 + 0.15 * checker + 1.1 * grain)
        v = obj == VASE
        q = p[v] - self.vase_at
        ang = np.arctan2(q[:, 1], q[:, 0])
        bands = (np.sin(q[:, 2] * 40) > 0.3)[:, None]
        stripes = (np.sin(ang * 8) > 0)[:, None]
        out[v] = np.where(bands, [0.92, 0.9, 0.82], np.where(stripes, [0.15, 0.3, 0.7], [0.3, 0.5, 0.85]))
        b = obj == BOX
        c, s = math.cos(-self.box_angle), math.sin(-self.box_angle)
        q = p[b] - self.box_at
        local = np.stack([c * q[:, 0] - s * q[:, 1], s * q[:, 0] + c * q[:, 1], q[:, 2]], 1)
        cells = np.floor(local / 0.14 + 0.5).sum(1) % 2
        out[b] = np.where(cells[:, None] > 0, [0.8, 0.25, 0.15], [0.95, 0.8, 0.3])
        return np.clip(out + self.hue, 0, 1)

    def _noise(self, k: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        grid = self.noise[k]
        n = len(grid) - 1
        u, v = np.clip((x + 2.4) / 4.8, 0, 1) * n, np.clip((y + 2.4) / 4.8, 0, 1) * n
        i, j = np.minimum(u.astype(int), n - 1), np.minimum(v.astype(int), n - 1)
        fu, fv = u - i, v - j
        return ((1 - fu) * (1 - fv) * grid[i, j] + fu * (1 - fv) * grid[i + 1, j] + (1 - fu) * fv * grid[i, j + 1]
                + fu * fv * grid[i + 1, j + 1])

    def render(self, c2w: np.ndarray, intr, height: int, width: int, spp: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """An RGB uint8 image (H, W, 3) and a depth map (H, W) (inf on sky), `spp` x `spp` supersampled."""
        from .data import camera_rays

        fx, fy, cx, cy = intr
        o, d = camera_rays(c2w, (fx * spp, fy * spp, cx * spp, cy * spp), height * spp, width * spp)
        rgb, depth = self.shade(o.numpy().astype(np.float64), d.numpy().astype(np.float64))
        rgb = rgb.reshape(height, spp, width, spp, 3).mean((1, 3))
        depth = depth.reshape(height, spp, width, spp)[:, spp // 2, :, spp // 2]
        return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), depth

    def shade(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lambert + ambient, a Phong highlight on the vase glaze, and a sky gradient; (rgb (N, 3), depth (N,))."""
        import trimesh

        tri, ray, loc = self.mesh.ray.intersects_id(o, d, multiple_hits=False, return_locations=True)
        sky = np.clip(d[:, 2:3], 0, 1)
        rgb = (1 - sky) * np.array([0.86, 0.9, 0.97]) + sky * np.array([0.5, 0.66, 0.93])
        depth = np.full(len(o), np.inf)
        if len(tri):
            obj = self.face_object[tri]
            bary = trimesh.triangles.points_to_barycentric(self.mesh.triangles[tri], loc)
            n = (self.mesh.vertex_normals[self.mesh.faces[tri]] * bary[..., None]).sum(1)
            flat = obj != VASE  # ground and box are flat-shaded
            n[flat] = self.mesh.face_normals[tri[flat]]
            n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
            diffuse = np.clip(n @ LIGHT, 0, 1)[:, None]
            col = self._albedo(loc, obj) * (0.38 + 0.62 * diffuse)
            refl = 2 * (n @ LIGHT)[:, None] * n - LIGHT
            spec = np.clip((refl * -d[ray]).sum(1), 0, 1) ** 24 * (obj == VASE)
            rgb[ray] = col + 0.35 * spec[:, None]
            depth[ray] = np.linalg.norm(loc - o[ray], axis=1)
        return rgb, depth


def _aabb(mesh, pad: float) -> list[list[float]]:
    lo, hi = mesh.bounds
    return [(lo - pad).tolist(), (hi + pad).tolist()]


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenGL camera-to-world: -z toward the target."""
    z = eye - target
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, np.cross(z, x), z, eye
    return m


def orbit(n: int, radius: float = 2.4, height: float = 1.35, target=(0.0, 0.0, 0.2), turns: float = 1.0,
          phase: float = 0.0) -> np.ndarray:
    """n camera-to-world matrices on a circle around `target`, the height swaying a little (for SfM parallax)."""
    out = []
    for k in range(n):
        a = phase + 2 * math.pi * turns * k / n
        h = height + 0.2 * math.sin(3 * a)
        out.append(look_at(np.array([radius * math.cos(a), radius * math.sin(a), h]), np.asarray(target)))
    return np.stack(out)


def intrinsics(size: int, fov_deg: float = 50.0) -> tuple[float, float, float, float]:
    f = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    return f, f, size / 2, size / 2


def render_frames(scene: Scene, c2w: np.ndarray, size: int, spp: int = 2, fov: float = 50.0) -> np.ndarray:
    k = intrinsics(size, fov)
    return np.stack([scene.render(m, k, size, size, spp)[0] for m in c2w])


def make_capture(out: Path, frames: int = 30, size: int = 192, seed: int = 0, fps: int = 10, spp: int = 2,
                 fov: float = 50.0) -> dict:
    """Render the orbit: ``video.mp4`` (what a user films), ``known/transforms.json`` + images (the true poses,
    same frames) and ``scene.json`` (object boxes in world units). Returns their paths."""
    from .data import Frames, write_transforms

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scene = Scene(seed)
    c2w = orbit(frames, phase=0.3 * seed)
    imgs = render_frames(scene, c2w, size, spp, fov)
    write_video(out / "video.mp4", imgs, fps)
    k = np.tile(intrinsics(size, fov), (frames, 1))
    write_transforms(out / "known", Frames(imgs, c2w, k, [f"frame_{i:05d}.png" for i in range(frames)]))
    atomic_write_json(out / "scene.json", {"boxes": scene.boxes, "units": "world (z up)"})
    return {"video": out / "video.mp4", "known": out / "known" / "transforms.json", "scene": out / "scene.json"}


def write_video(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    import imageio.v2 as imageio

    with imageio.get_writer(str(path), format="FFMPEG", fps=fps, codec="libx264", quality=9,
                            macro_block_size=16, ffmpeg_log_level="error") as w:
        for f in frames:
            w.append_data(f)
    return path


def make_baked(out: Path, seed: int = 0, texture: int = 64, specular_dim: int = 3, hidden: int = 16,
               ground_size: float = 1.2) -> Path:
    """A small baked/ folder (what video2game:bake writes) of the generated scene's objects, without training:
    ground (a subdivided square, static), box and vase (dynamic) on one xatlas atlas, smooth feature textures and a
    random view-dependent MLP. For tests of the export and the game."""
    import torch
    import trimesh

    from .bake import BakedAppearance, atlas, export

    scene = Scene(seed)
    g = ground_size
    ground = trimesh.Trimesh([[-g, -g, 0], [g, -g, 0], [g, g, 0], [-g, g, 0]], [[0, 1, 2], [0, 2, 3]])
    ground = ground.subdivide().subdivide().subdivide()
    parts = {"background": ground, "vase": scene.parts[VASE], "box": scene.parts[BOX]}
    mesh = trimesh.util.concatenate(list(parts.values()))
    owner = np.concatenate([np.full(len(p.faces), k) for k, p in enumerate(parts.values())])
    mesh_uv, uv, _ = atlas(mesh)
    torch.manual_seed(seed)
    model = BakedAppearance(texture, specular_dim, hidden)
    s = (torch.arange(texture, dtype=torch.float32) + 0.5) / texture
    yy, xx = torch.meshgrid(s, s, indexing="ij")
    with torch.no_grad():
        model.diffuse_logit.copy_(torch.stack([torch.sin(6 * xx + 1), torch.cos(5 * yy), torch.sin(4 * (xx + yy))], -1)
                                  * 1.5)
        model.specular_logit.copy_(torch.stack([torch.sin(3 * xx * (k + 1) + k) for k in range(specular_dim)], -1) * 2)
        for p in model.mlp.parameters():
            p.normal_(0, 0.4)
    export(Path(out), model, mesh_uv, uv, {name: np.flatnonzero(owner == k) for k, name in enumerate(parts)})
    return Path(out)
