"""Task functions (``core run video2game:<task>``): prepare -> fit -> mesh -> bake, each reading the previous stage's
run folder (checked by the core: finished, artifact intact) and writing its own artifact folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from paperloom import UserError
from paperloom.io import atomic_write_json, read_json

from .config import BakeConfig, ExportConfig, FitConfig, MeshConfig, PlayConfig, PrepareConfig

DATASET_DIR, NERF_DIR, MESH_DIR, BAKED_DIR, GAME_DIR = "dataset", "nerf", "mesh", "baked", "game"


def upstream(folder: str, sub: str, task: str) -> Path:
    """The artifact folder `sub` of a previous run folder (or the artifact folder itself)."""
    p = Path(folder).expanduser()
    if (p / sub).is_dir():
        return p / sub
    if p.is_dir() and p.name == sub:
        return p
    raise UserError(f"{folder}: no {sub}/ folder; pass the run folder of video2game:{task}")


# --------------------------------------------------------------------------- prepare


def detect_format(path: Path) -> str:
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "transforms"
        return "video"
    if not path.is_dir():
        raise UserError(f"input = {str(path)!r}: no such file or folder")
    if (path / "transforms.json").is_file():
        return "transforms"
    if any((path / f"cameras.{e}").is_file() for e in ("txt", "bin")):
        return "colmap"
    return "images"


def prepare_frames(cfg: PrepareConfig, ctx, work: Path):
    """Frames with poses (not yet normalised) and a report {sfm_registered, fallback, pose errors, ...}."""
    from .data import Frames, read_colmap, read_image_folder, read_transforms, read_video, resize

    if not cfg.input:
        raise UserError("input is empty; set input=PATH (a video, an image folder, transforms.json or a COLMAP model)")
    src = Path(cfg.input).expanduser()
    fmt = cfg.format if cfg.format != "auto" else detect_format(src)
    report: dict = {"format": fmt}
    if fmt == "transforms" and cfg.poses != "sfm":
        return read_transforms(src), report
    if fmt == "colmap" and cfg.poses != "sfm":
        images = Path(cfg.images) if cfg.images else next(
            (p for p in (src.parent.parent / "images", src / "images", src.parent / "images") if p.is_dir()), None)
        if images is None:
            raise UserError(f"{src}: no image folder found beside the COLMAP model; set images=FOLDER")
        return read_colmap(src, images)[0], report
    if cfg.poses == "given":
        raise UserError(f"poses = given, but format {fmt} carries no poses; use poses=sfm (or auto)")
    index = None
    if fmt == "video":
        imgs, index = read_video(src, cfg.fps, cfg.max_frames, cfg.sfm_size, with_index=True)
        names = [f"frame_{i:05d}.png" for i in index]
    elif fmt == "images":
        imgs, names = read_image_folder(src, cfg.sfm_size)
    else:  # transforms / colmap with poses=sfm: re-pose their images
        f = read_transforms(src) if fmt == "transforms" else read_colmap(src, Path(cfg.images))[0]
        f = resize(f, cfg.sfm_size) if cfg.sfm_size else f
        imgs, names = f.images, [Path(n).with_suffix(".png").name for n in f.names]
    if cfg.max_frames:
        imgs, names = imgs[:cfg.max_frames], names[:cfg.max_frames]
    known = read_transforms(cfg.known_poses) if cfg.known_poses else None
    if known is not None and index is not None and len(known) > len(imgs) and max(index) < len(known):
        known = Frames(known.images[index], known.c2w[index], known.intrinsics[index], [known.names[i] for i in index])
    if known is not None and len(known) != len(imgs):
        raise UserError(f"known_poses = {cfg.known_poses!r} has {len(known)} frames but the input gave {len(imgs)}; "
                        "they must be the same frames in the same order")
    from .sfm import pose_errors, run_sfm

    n = len(imgs)
    try:
        frames, _, registered = run_sfm(imgs, names, work / "sfm", max_features=cfg.max_features, log=ctx.log)
    except UserError as e:
        if known is None:
            raise
        ctx.log.warning(f"{e}; falling back to the known poses")
        frames, registered = None, 0
    report["sfm_registered"] = float(registered)
    report["sfm_frames"] = float(n)
    if known is not None and frames is not None and registered >= 3:
        ref = known.c2w[[names.index(x) for x in frames.names]]
        err = pose_errors(frames.c2w, ref)
        sc, r, t = err.pop("similarity")  # SfM frame -> known frame; keep the inverse (known -> SfM)
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = sc * r, t
        report["known_to_poses"] = np.linalg.inv(m).tolist()
        report.update({f"sfm_{k}": v for k, v in err.items()})
    if frames is None or registered < max(3, cfg.min_registered * n):
        if known is None:
            raise UserError(f"structure from motion registered {registered}/{n} frames (< min_registered = "
                            f"{cfg.min_registered}); give known_poses=transforms.json, lower min_registered, or film "
                            "with more texture and overlap")
        ctx.log.warning(f"SfM registered only {registered}/{n} frames (< {cfg.min_registered:.0%}): using the known "
                        "poses instead")
        report["fallback_known_poses"] = 1.0
        report["known_to_poses"] = np.eye(4).tolist()
        k = resize(known, max(imgs.shape[1:3])) if known.width != imgs.shape[2] else known
        return Frames(imgs, k.c2w, k.intrinsics, names), report
    report["fallback_known_poses"] = 0.0
    # the registered frames, at the resolution they were read (SfM ran on them)
    return frames, report


def prepare(cfg: PrepareConfig, ctx) -> dict[str, float]:
    from .data import Frames, apply_similarity, normalization, resize, write_transforms

    frames, report = prepare_frames(cfg, ctx, ctx.out)
    t = normalization(frames.c2w, cfg.radius)
    frames = Frames(frames.images, apply_similarity(t, frames.c2w), frames.intrinsics, frames.names)
    if cfg.size:
        frames = resize(frames, cfg.size)
    write_transforms(ctx.out / DATASET_DIR, frames, {
        "applied_transform": t.tolist(), "paperloom": {"source": str(cfg.input), **report}})
    ctx.log.info(f"{len(frames)} posed frames {frames.width}x{frames.height} -> {ctx.out / DATASET_DIR}")
    return {"frames": float(len(frames)), **{k: v for k, v in report.items() if isinstance(v, float)}}


# --------------------------------------------------------------------------- fit


def fit_frames(cfg: FitConfig, ctx, frames, source: dict) -> dict[str, float]:
    """Train the field on `frames` (Lightning, resumable), save nerf/ and source.json (where the frames came from),
    evaluate the held-out views."""
    import torch

    from paperloom.training import fit as lightning_fit
    from paperloom.training import make_trainer, shuffled_loader

    from .data import all_rays, camera_rays
    from .nerf import NeRFModule, RayBatches, evaluate_views, first, save_nerf
    from .plots import side_by_side, turntable

    train_idx, test_idx = frames.split(cfg.holdout_every)
    if not train_idx:
        raise UserError(f"holdout_every = {cfg.holdout_every} leaves no training frames; raise it or set 0")
    o, d, rgb = all_rays(frames, train_idx)
    rays = {"o": o, "d": d, "rgb": rgb}
    field = ctx.build(cfg.model, **asdict(cfg.field), **cfg.model_args)
    val_views = [camera_rays(frames.c2w[i], frames.intrinsics[i], frames.height, frames.width)
                 + (torch.from_numpy(frames.images[i].reshape(-1, 3).astype(np.float32) / 255),) for i in test_idx[:2]]
    module = NeRFModule(field, cfg.march, cfg.optim, cfg.trainer.max_steps, rays, val_views, asdict(cfg.loss),
                        cfg.grid.every, cfg.grid.warmup, cfg.grid.threshold, cfg.grid.decay, seed=ctx.seed)
    train = shuffled_loader(RayBatches(len(o), cfg.rays, cfg.trainer.max_steps, ctx.seed), 1, ctx.seed,
                            collate_fn=first)
    val = (torch.utils.data.DataLoader(list(range(len(val_views))), batch_size=1, collate_fn=first)
           if val_views else None)
    trainer = make_trainer(ctx, cfg.trainer, limit_val_batches=len(val_views) if val_views else 0)
    lightning_fit(ctx, trainer, module, train, val)
    if not trainer.is_global_zero:
        return {}
    field.eval()
    atomic_write_json(ctx.out / "source.json", source)
    save_nerf(ctx.out / NERF_DIR, field, cfg.march, {"holdout_every": cfg.holdout_every})
    out = {"steps": float(trainer.global_step), "occupied_fraction": float(field.grid.mask.float().mean())}
    if test_idx:
        m, renders = evaluate_views(field, cfg.march, frames, test_idx, ctx.device)
        out.update({"nerf_psnr": m["psnr"], "nerf_ssim": m["ssim"], "views": float(len(test_idx))})
        gts = [frames.images[i].astype(np.float32) / 255 for i in test_idx]
        side_by_side(ctx.out / "validation.png", [gts, renders], ["ground truth", "NeRF"])
    if cfg.turntable:
        turntable(ctx.out / "turntable.mp4", field, cfg.march, frames, cfg.turntable, ctx.device)
    ctx.log.info("NeRF: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()))
    return out


def load_dataset(data: str, dataset: str):
    from .data import read_transforms

    if data:
        return read_transforms(upstream(data, DATASET_DIR, "prepare") / "transforms.json")
    if dataset:
        return read_transforms(dataset)
    raise UserError("no input: set data=RUN_FOLDER (of video2game:prepare) or dataset=transforms.json")


def fit(cfg: FitConfig, ctx) -> dict[str, float]:
    frames = load_dataset(cfg.data, cfg.dataset)
    return fit_frames(cfg, ctx, frames, {"data": str(Path(cfg.data).resolve()) if cfg.data else "",
                                         "dataset": str(Path(cfg.dataset).resolve()) if cfg.dataset else ""})


def dataset_of_nerf(nerf_run: Path):
    """The dataset a fit run trained on (its source.json)."""
    src = read_json(Path(nerf_run) / "source.json")
    return load_dataset(src.get("data", ""), src.get("dataset", ""))


# --------------------------------------------------------------------------- mesh


def check_mesh_config(cfg: MeshConfig) -> None:
    b = cfg.bounds
    if len(b) != 6 or any(abs(v) >= 2 for v in b) or any(b[k] >= b[k + 3] for k in range(3)):
        raise UserError(f"bounds = {b}: expected xmin ymin zmin xmax ymax zmax with min < max inside (-2, 2) "
                        "(contracted coordinates)")
    for name, box in cfg.boxes.items():
        if not (isinstance(box, list) and len(box) == 6 and all(isinstance(v, (int, float)) for v in box)):
            raise UserError(f"boxes.{name} = {box!r}: expected [xmin, ymin, zmin, xmax, ymax, zmax]")


def mesh_field(cfg: MeshConfig, ctx, field, out_dir: Path) -> dict[str, float]:
    """Extract, clean, un-contract and split the field's mesh into out_dir (scene.ply, <object>.ply, meshes.json)."""
    from .mesh import extract, split_by_boxes

    check_mesh_config(cfg)
    b = cfg.bounds
    world, raw = extract(field.density, b, cfg.resolution, cfg.level or None, cfg.min_component, cfg.faces)
    if len(world.faces) == 0:
        raise UserError(f"no surface at density level {cfg.level} in bounds {b}: the field never reaches it; lower "
                        "level (or train longer)")
    out_dir.mkdir(parents=True, exist_ok=True)
    world.export(out_dir / "scene.ply")
    parts = split_by_boxes(world, cfg.boxes)
    for name, m in parts.items():
        m.export(out_dir / f"{name}.ply")
    atomic_write_json(out_dir / "meshes.json", {"scene": "scene.ply", "objects": {k: f"{k}.ply" for k in parts},
                                                "boxes": cfg.boxes, "level": cfg.level, "bounds": b,
                                                "triangles": len(world.faces)})
    out = {"triangles": float(len(world.faces)), "raw_triangles": float(len(raw.faces)),
           "vertices": float(len(world.vertices)), "objects": float(len(parts))}
    out.update({f"triangles_{k}": float(len(m.faces)) for k, m in parts.items()})
    ctx.log.info(f"mesh: {len(raw.faces)} -> {len(world.faces)} triangles, objects {sorted(parts)}")
    return out


def mesh(cfg: MeshConfig, ctx) -> dict[str, float]:
    from .nerf import load_nerf

    check_mesh_config(cfg)
    if not cfg.nerf:
        raise UserError("nerf is empty; set nerf=RUN_FOLDER of video2game:fit")
    field, _, _ = load_nerf(upstream(cfg.nerf, NERF_DIR, "fit"), ctx.device)
    atomic_write_json(ctx.out / "source.json", {"nerf": str(Path(cfg.nerf).resolve())})
    return mesh_field(cfg, ctx, field, ctx.out / MESH_DIR)


# --------------------------------------------------------------------------- bake


def bake_mesh(cfg: BakeConfig, ctx, mesh_dir: Path, frames, holdout_every: int, field=None, march=None):
    """UV atlas, per-view hits, optimise the baked appearance (resumable), export; PSNR of baked (and of the NeRF,
    when given) on the held-out views' covered pixels."""
    import torch
    import trimesh

    from paperloom.checkpoint import Checkpoint

    from .bake import atlas, export, render_baked, view_hits
    from .nerf import psnr
    from .plots import side_by_side

    meta = read_json(mesh_dir / "meshes.json")
    pieces, names = [], []
    for name, rel in meta["objects"].items():
        pieces.append(trimesh.load(mesh_dir / rel, force="mesh", process=False))
        names.append(name)
    scene = trimesh.util.concatenate(pieces)
    owner = np.concatenate([np.full(len(p.faces), k) for k, p in enumerate(pieces)])
    mesh_uv, uv, _ = atlas(scene)
    train_idx, test_idx = frames.split(holdout_every)
    hits = view_hits(mesh_uv, uv, frames, list(range(len(frames))))
    train = {k: torch.cat([hits[i][k] for i in train_idx]) for k in ("uv", "dir", "rgb")}
    if len(train["uv"]) == 0:
        raise UserError(f"{mesh_dir}: the mesh covers no pixel of the training views; check the mesh stage")
    model = ctx.build(cfg.model, texture=cfg.texture, specular_dim=cfg.specular_dim, hidden=cfg.hidden,
                      quantize=cfg.quantize)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    import hashlib

    # one checkpoint per mesh: a resumed bake continues only on the geometry it was optimising
    sizes = f"{cfg.texture},{cfg.specular_dim},{cfg.hidden}".encode()
    digest = hashlib.sha256(np.ascontiguousarray(mesh_uv.faces).tobytes() + uv.tobytes() + sizes).hexdigest()[:12]
    ckpt = Checkpoint(ctx, f"bake-{digest}")
    start = ckpt.restore(model, opt)
    g = torch.Generator().manual_seed(ctx.seed)
    n = len(train["uv"])
    first = last = None
    for step in ctx.progress(range(start, cfg.steps), description="bake"):
        g.manual_seed(ctx.seed * 1_000_003 + step)
        idx = torch.randint(n, (min(cfg.pixels, n) if cfg.pixels else n,), generator=g)
        loss = (model(train["uv"][idx], train["dir"][idx]) - train["rgb"][idx]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        first = float(loss) if first is None else first
        last = float(loss)
        if (step + 1) % 25 == 0 or step + 1 == cfg.steps:
            ctx.log_metrics({"bake_loss": last}, step=step + 1)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            ckpt.save(step + 1, model, opt)
    model.eval()
    out_dir = ctx.out / BAKED_DIR
    export(out_dir, model, mesh_uv, uv, {name: np.flatnonzero(owner == k) for k, name in enumerate(names)})
    out = {"triangles": float(len(scene.faces)), "bake_steps": float(cfg.steps)}
    if first is not None:
        out.update({"bake_first_loss": first, "bake_final_loss": last})
    if not test_idx:
        return out
    bp, np_, cover, gts, baked_imgs, nerf_imgs = [], [], [], [], [], []
    for i in test_idx:
        img, mask = render_baked(model, hits[i], frames.height, frames.width)
        gt = frames.images[i].astype(np.float32) / 255
        m = torch.from_numpy(mask)
        bp.append(psnr(torch.from_numpy(img)[m], torch.from_numpy(gt)[m]))
        cover.append(float(mask.mean()))
        gts.append(gt)
        baked_imgs.append(img)
        if field is not None:
            from .data import camera_rays
            from .render import render_rays

            o, d = camera_rays(frames.c2w[i], frames.intrinsics[i], frames.height, frames.width)
            nerf = render_rays(field, o, d, march)["rgb"].view(frames.height, frames.width, 3)
            np_.append(psnr(nerf[m], torch.from_numpy(gt)[m]))
            nerf_imgs.append(nerf.numpy())
    out.update({"baked_psnr": float(np.mean(bp)), "coverage": float(np.mean(cover))})
    rows, labels = [gts, baked_imgs], ["ground truth", "baked mesh"]
    if np_:
        out.update({"nerf_psnr_masked": float(np.mean(np_)), "baked_gap_db": float(np.mean(np_) - np.mean(bp))})
        rows, labels = [gts, nerf_imgs, baked_imgs], ["ground truth", "NeRF", "baked mesh"]
    side_by_side(ctx.out / "side_by_side.png", rows, labels)
    ctx.log.info("bake: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()))
    return out


def bake(cfg: BakeConfig, ctx) -> dict[str, float]:
    from .nerf import load_nerf

    if not cfg.mesh:
        raise UserError("mesh is empty; set mesh=RUN_FOLDER of video2game:mesh")
    mesh_run = Path(cfg.mesh).expanduser()
    mesh_dir = upstream(cfg.mesh, MESH_DIR, "mesh")
    src = read_json(mesh_run / "source.json") if (mesh_run / "source.json").is_file() else {}
    if not src.get("nerf"):
        raise UserError(f"{mesh_run}: no source.json naming the fit run; pass the run folder of video2game:mesh")
    nerf_run = Path(src["nerf"])
    field, march, meta = load_nerf(upstream(str(nerf_run), NERF_DIR, "fit"), ctx.device)
    frames = dataset_of_nerf(nerf_run)
    return bake_mesh(cfg, ctx, mesh_dir, frames, int(meta.get("holdout_every", 8)), field, march)


# --------------------------------------------------------------------------- export (part 2)


def export(cfg: ExportConfig, ctx) -> dict[str, float]:
    """Collision hulls + GLB + MLP JSON + the bundled web page of a bake run, into game/."""
    from .gltf import baked_folder, export_game

    baked = baked_folder(cfg.scene)
    atomic_write_json(ctx.out / "source.json", {"baked": str(baked.resolve())})
    return export_game(cfg, ctx, baked, ctx.out / GAME_DIR)


# --------------------------------------------------------------------------- play


def play(cfg: PlayConfig, ctx) -> dict[str, float]:
    """Serve an export's game/ folder on localhost until Ctrl-C / SIGTERM (or `seconds`), printing the URL."""
    import signal
    import threading
    import time

    from .serve import start

    if not cfg.scene:
        raise UserError("scene is empty; set scene=RUN_FOLDER of video2game:export")
    folder = upstream(cfg.scene, GAME_DIR, "export")
    server, url = start(folder, cfg.host, cfg.port)
    ctx.log.info(f"serving {folder} at {url} (Ctrl-C stops)")
    print(f"open {url}", flush=True)
    stop = threading.Event()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored there)
        try:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        except ValueError:  # not the main thread: Ctrl-C raises KeyboardInterrupt as usual
            pass
    t0 = time.monotonic()
    try:
        while not stop.is_set() and (not cfg.seconds or time.monotonic() - t0 < cfg.seconds):
            stop.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.shutdown()
        server.server_close()
        ctx.log.info("stopped")
    return {"served_s": float(time.monotonic() - t0), "port": float(server.server_address[1])}
