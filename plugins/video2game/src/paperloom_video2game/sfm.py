"""Camera poses of unposed frames by structure from motion with pycolmap (SIFT features, exhaustive matching,
incremental mapping; Video2Game Sec. 3.1 takes COLMAP poses), and the pose error against known poses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paperloom import UserError

from .data import Frames, reconstruction_frames


def run_sfm(images: np.ndarray, names: list[str], work: Path, single_camera: bool = True,
            max_features: int = 4096, log=None, threads: int = 1) -> tuple[Frames, np.ndarray, int]:
    """Poses of `images` (n, H, W, 3): (registered Frames in name order, 3D points, registered count).
    The COLMAP database and model are kept in `work` (sparse/0 in COLMAP's own format)."""
    import pycolmap
    from PIL import Image

    pycolmap.logging.minloglevel = 2  # COLMAP's per-image INFO lines would flood run.log
    work = Path(work)
    img_dir = work / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for im, name in zip(images, names):
        Image.fromarray(im).save(img_dir / name)
    db = work / "database.db"
    db.unlink(missing_ok=True)
    ext = pycolmap.FeatureExtractionOptions()
    ext.sift.max_num_features = max_features
    ext.num_threads = threads
    mode = pycolmap.CameraMode.SINGLE if single_camera else pycolmap.CameraMode.AUTO
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_PINHOLE"  # rendered / undistorted frames; distortion would need undistorting
    pycolmap.extract_features(db, img_dir, image_names=list(names), camera_mode=mode, reader_options=reader,
                              extraction_options=ext, device=pycolmap.Device.cpu)
    match = pycolmap.FeatureMatchingOptions()
    match.num_threads = threads
    pycolmap.match_exhaustive(db, matching_options=match, device=pycolmap.Device.cpu)
    sparse = work / "sparse"
    sparse.mkdir(exist_ok=True)
    opts = pycolmap.IncrementalPipelineOptions()
    opts.num_threads = threads
    recs = pycolmap.incremental_mapping(db, img_dir, sparse, options=opts)
    if not recs:
        raise UserError(f"structure from motion registered no images of {len(names)} (too little texture or "
                        "overlap); film more slowly with more overlap, or give known_poses=transforms.json")
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    if log:
        log.info(f"SfM: {rec.num_reg_images()}/{len(names)} frames registered, {rec.num_points3D()} points, "
                 f"{len(recs)} model(s)")
    frames, points = reconstruction_frames(rec, img_dir, str(sparse))
    return frames, points, rec.num_reg_images()


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |dst - (s R src + t)|^2 (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    e = np.eye(3)
    if np.linalg.det(u @ vt) < 0:
        e[2, 2] = -1
    r = u @ e @ vt
    s = float(np.trace(np.diag(sig) @ e) / a.var(0).sum())
    return s, r, mu_d - s * r @ mu_s


def pose_errors(est: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Errors of estimated camera-to-worlds against reference ones (same frames, any similarity apart):
    relative rotation error (deg) and relative translation-direction error (deg) over all frame pairs (medians),
    and the camera-centre RMSE after a similarity alignment, as a fraction of the reference cameras' spread."""
    n = len(est)
    if n < 3:
        raise UserError(f"pose error needs at least 3 registered frames, got {n}")
    rot_err, dir_err = [], []
    for i in range(n):
        for j in range(i + 1, n):
            re, rr = est[i, :3, :3].T @ est[j, :3, :3], ref[i, :3, :3].T @ ref[j, :3, :3]
            rot_err.append(_angle(re.T @ rr))
            te = est[i, :3, :3].T @ (est[j, :3, 3] - est[i, :3, 3])
            tr = ref[i, :3, :3].T @ (ref[j, :3, 3] - ref[i, :3, 3])
            cos = te @ tr / (np.linalg.norm(te) * np.linalg.norm(tr) + 1e-12)
            dir_err.append(float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
    s, r, t = umeyama(est[:, :3, 3], ref[:, :3, 3])
    aligned = s * est[:, :3, 3] @ r.T + t
    spread = np.linalg.norm(ref[:, :3, 3] - ref[:, :3, 3].mean(0), axis=1).mean()
    rmse = float(np.sqrt(((aligned - ref[:, :3, 3]) ** 2).sum(1).mean()) / spread)
    return {"rot_err_deg": float(np.median(rot_err)), "trans_dir_err_deg": float(np.median(dir_err)),
            "centre_rmse_rel": rmse, "similarity": (s, r, t)}


def _angle(r: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))
