"""Baking (Video2Game Sec. 3.3, the mesh distillation of MobileNeRF / NeRF2Mesh): the fixed mesh gets a UV atlas
(xatlas); every training pixel's triangle and barycentrics come from a ray caster (trimesh + embree), precomputed
per view; per-texel diffuse colour and specular features, quantised to 8 bits with a straight-through estimator,
and a tiny view-dependent MLP are optimised so that

    rgb(pixel) = clamp(diffuse(uv) + MLP([specular(uv), view_dir]), 0, 1)

matches the images. The export is what part 2's browser shader evaluates: two PNG textures, an OBJ with UVs and
``mlp.json`` (format below, and `mlp_numpy` is its reference evaluation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

MLP_FORMAT = "paperloom-video2game-mlp/1"


def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    """Forward: round(255 x) / 255 (what an 8-bit PNG stores); backward: identity (straight-through)."""
    return x + (torch.round(x * 255) / 255 - x).detach()


class BakedAppearance(nn.Module):
    """Textures (S, S, 3) diffuse and (S, S, C) specular features in [0, 1] (sigmoid of free logits) and the MLP
    [specular features (C), view direction (3)] -> hidden -> hidden -> rgb offset (3)."""

    def __init__(self, texture: int = 512, specular_dim: int = 3, hidden: int = 32, quantize: bool = True) -> None:
        super().__init__()
        self.size, self.specular_dim, self.quantize = texture, specular_dim, quantize
        self.diffuse_logit = nn.Parameter(torch.zeros(texture, texture, 3))
        self.specular_logit = nn.Parameter(torch.zeros(texture, texture, specular_dim))
        self.mlp = nn.Sequential(nn.Linear(specular_dim + 3, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 3))
        nn.init.zeros_(self.mlp[-1].weight)  # start view-independent
        nn.init.zeros_(self.mlp[-1].bias)

    def textures(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored values: (S, S, 3) and (S, S, C), 8-bit steps when quantising."""
        d, s = torch.sigmoid(self.diffuse_logit), torch.sigmoid(self.specular_logit)
        return (quantize_ste(d), quantize_ste(s)) if self.quantize else (d, s)

    def forward(self, uv: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        """uv (P, 2) in [0, 1] (row = v), unit view directions (P, 3) -> rgb (P, 3)."""
        diffuse, spec = self.textures()
        grid = (uv * 2 - 1)[None, None]  # (1, 1, P, 2): x = u, y = v
        tex = torch.cat([diffuse, spec], -1).permute(2, 0, 1)[None]  # (1, 3 + C, S, S)
        feats = nn.functional.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
        feats = feats[0, :, 0].T  # (P, 3 + C)
        return (feats[:, :3] + self.mlp(torch.cat([feats[:, 3:], dirs], -1))).clamp(0, 1)


# --------------------------------------------------------------------------- export / shader reference


def mlp_json(model: BakedAppearance) -> dict:
    """The MLP as plain lists: layers[k] = {"weight": out x in, "bias": out, "activation": relu | none}."""
    linears = [m for m in model.mlp if isinstance(m, nn.Linear)]
    return {
        "format": MLP_FORMAT,
        "input": [f"specular[{i}]" for i in range(model.specular_dim)] + ["dir.x", "dir.y", "dir.z"],
        "specular_scale": "texel / 255 (specular.png channels, in order)",
        "direction": "unit vector from the camera to the surface point, world coordinates",
        "output": "rgb = clamp(diffuse.png / 255 + y, 0, 1)",
        "layers": [{"weight": lin.weight.detach().cpu().tolist(), "bias": lin.bias.detach().cpu().tolist(),
                    "activation": "relu" if k < len(linears) - 1 else "none"} for k, lin in enumerate(linears)],
    }


def mlp_numpy(spec: np.ndarray, dirs: np.ndarray, mlp: dict) -> np.ndarray:
    """The exported MLP evaluated from its JSON with numpy (what the browser shader computes): (P, 3) offsets."""
    h = np.concatenate([spec, dirs], -1).astype(np.float32)
    for layer in mlp["layers"]:
        h = h @ np.asarray(layer["weight"], np.float32).T + np.asarray(layer["bias"], np.float32)
        if layer["activation"] == "relu":
            h = np.maximum(h, 0)
    return h


def shade_numpy(diffuse: np.ndarray, spec: np.ndarray, dirs: np.ndarray, mlp: dict) -> np.ndarray:
    """Texel values already looked up (P, 3) and (P, C) in [0, 1] -> rgb (P, 3) in [0, 1]."""
    return np.clip(diffuse + mlp_numpy(spec, dirs, mlp), 0, 1)


def export(folder: Path, model: BakedAppearance, mesh, uv: np.ndarray, objects: dict[str, np.ndarray]) -> dict:
    """baked/: diffuse.png, specular.png, mlp.json, scene.obj (+ .mtl) and objects/<name>.obj (faces of each)."""
    from PIL import Image

    from paperloom.io import atomic_write_text

    folder = Path(folder)
    (folder / "objects").mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        d, s = model.textures()
    d8 = np.round(d.cpu().numpy() * 255).astype(np.uint8)
    s8 = np.round(s.cpu().numpy() * 255).astype(np.uint8)
    if s8.shape[-1] < 3:
        s8 = np.concatenate([s8, np.zeros((*s8.shape[:2], 3 - s8.shape[-1]), np.uint8)], -1)
    Image.fromarray(d8).save(folder / "diffuse.png")
    Image.fromarray(s8, "RGBA" if s8.shape[-1] == 4 else "RGB").save(folder / "specular.png")
    atomic_write_text(folder / "mlp.json", json.dumps(mlp_json(model)))
    atomic_write_text(folder / "scene.mtl", "newmtl baked\nKa 1 1 1\nKd 1 1 1\nmap_Kd diffuse.png\n")
    write_obj(folder / "scene.obj", mesh.vertices, mesh.faces, uv, "scene.mtl")
    for name, faces in objects.items():
        write_obj(folder / "objects" / f"{name}.obj", mesh.vertices, mesh.faces[faces], uv, "../scene.mtl")
    return {"texture": model.size, "specular_dim": model.specular_dim}


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, mtl: str) -> None:
    """OBJ with per-vertex UVs (vt = (u, 1 - v): OBJ's v points up; the PNGs are stored row = v)."""
    from paperloom.io import atomic_write_text

    used = np.unique(faces)
    remap = np.full(len(vertices), -1)
    remap[used] = np.arange(len(used))
    lines = [f"mtllib {mtl}", "usemtl baked"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices[used]]
    lines += [f"vt {u:.6f} {1 - v:.6f}" for u, v in uv[used]]
    lines += ["f " + " ".join(f"{i}/{i}" for i in tri) for tri in remap[faces] + 1]
    atomic_write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- geometry: atlas + ray casting


def atlas(mesh) -> tuple:
    """xatlas UV unwrap: (mesh with seams split, uv (V', 2) in [0, 1], original vertex of each new one)."""
    import trimesh
    import xatlas

    vmapping, faces, uv = xatlas.parametrize(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.uint32))
    return trimesh.Trimesh(np.asarray(mesh.vertices)[vmapping], faces.astype(np.int64), process=False), uv, vmapping


def cast(mesh, uv: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First hits of rays: (ray index, triangle id, barycentric-interpolated uv (H, 2)) - embree through trimesh
    when embreex is installed, trimesh's own ray-triangle test otherwise."""
    import trimesh

    tri, ray, loc = mesh.ray.intersects_id(origins, dirs, multiple_hits=False, return_locations=True)
    if len(tri) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 2))
    bary = trimesh.triangles.points_to_barycentric(mesh.triangles[tri], loc)
    hit_uv = (uv[mesh.faces[tri]] * bary[..., None]).sum(1)
    return ray, tri, hit_uv


def view_hits(mesh, uv, frames, idx: list[int]) -> list[dict]:
    """Per view: the hit pixels, their uv and view directions (precomputed once; the geometry is fixed)."""
    from .data import camera_rays

    out = []
    for i in idx:
        o, d = camera_rays(frames.c2w[i], frames.intrinsics[i], frames.height, frames.width)
        ray, tri, huv = cast(mesh, uv, o.numpy().astype(np.float64), d.numpy().astype(np.float64))
        rgb = frames.images[i].reshape(-1, 3)[ray].astype(np.float32) / 255
        out.append({"pixel": torch.from_numpy(ray), "tri": torch.from_numpy(tri),
                    "uv": torch.from_numpy(huv.astype(np.float32)), "dir": d[ray], "rgb": torch.from_numpy(rgb)})
    return out


def render_baked(model: BakedAppearance, hits: dict, height: int, width: int, background=(1.0, 1.0, 1.0)):
    """The baked mesh's image of one view (H, W, 3) and its coverage mask (H, W)."""
    img = torch.tensor(background, dtype=torch.float32).expand(height * width, 3).clone()
    with torch.no_grad():
        if len(hits["pixel"]):
            img[hits["pixel"]] = model(hits["uv"], hits["dir"])
    mask = torch.zeros(height * width, dtype=torch.bool)
    mask[hits["pixel"]] = True
    return img.view(height, width, 3).numpy(), mask.view(height, width).numpy()
