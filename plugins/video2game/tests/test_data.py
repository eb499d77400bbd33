"""Input formats: transforms.json (nerfstudio / instant-ngp), COLMAP text models, videos, image folders; their
errors; normalisation into the scene box."""

import json
import math

import numpy as np
import pytest
from paperloom_video2game.data import (
    Frames,
    apply_similarity,
    camera_rays,
    normalization,
    read_colmap,
    read_image_folder,
    read_transforms,
    read_video,
    write_transforms,
)
from paperloom_video2game.synthetic import orbit, write_video

from paperloom import UserError


def frames_fixture(n=4, size=24):
    g = np.random.default_rng(0)
    imgs = g.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    return Frames(imgs, orbit(n), np.tile([30.0, 31.0, 12.0, 11.5], (n, 1)), [f"f{i}.png" for i in range(n)])


def test_transforms_round_trip(tmp_path):
    f = frames_fixture()
    write_transforms(tmp_path, f)
    g = read_transforms(tmp_path)
    assert np.array_equal(g.images, f.images) and np.allclose(g.c2w, f.c2w) and np.allclose(g.intrinsics, f.intrinsics)


def test_instant_ngp_camera_angle_and_missing_extension(tmp_path):
    from PIL import Image

    (tmp_path / "train").mkdir()
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(tmp_path / "train" / "r_0.png")
    meta = {"camera_angle_x": 0.6911112070083618, "frames": [{"file_path": "./train/r_0",
                                                               "transform_matrix": np.eye(4).tolist()}]}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    f = read_transforms(tmp_path / "transforms.json")
    fx = 0.5 * 40 / math.tan(0.5 * 0.6911112070083618)
    assert np.allclose(f.intrinsics[0], [fx, fx, 20, 10])


@pytest.mark.parametrize("edit,match", [
    (lambda m, d: m["frames"][1].update(file_path="images/nope.png"), "frame missing"),
    (lambda m, d: m.update(frames=[]), "'frames' is missing or empty"),
    (lambda m, d: m["frames"][0].update(w=99), "w=99"),
    (lambda m, d: m["frames"][0].update(k1=0.2), "distorted cameras"),
    (lambda m, d: m["frames"][0].update(transform_matrix=[[1, 0], [0, 1]]), "4x4"),
    (lambda m, d: [fr.pop("fl_x") for fr in m["frames"]], "no intrinsics"),
])
def test_transforms_errors_name_the_problem(tmp_path, edit, match):
    write_transforms(tmp_path, frames_fixture())
    meta = json.loads((tmp_path / "transforms.json").read_text())
    edit(meta, tmp_path)
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=match):
        read_transforms(tmp_path)


def test_bad_json_names_file_and_line(tmp_path):
    (tmp_path / "transforms.json").write_text('{"frames": [\n  {"file_path": }\n]}')
    with pytest.raises(UserError, match="transforms.json"):
        read_transforms(tmp_path)


def _write_colmap_text(folder, frames):
    """A COLMAP text model of `frames` written by hand from the documented format (world-to-camera, OpenCV axes)."""
    from scipy.spatial.transform import Rotation

    folder.mkdir(parents=True)
    fx, fy, cx, cy = frames.intrinsics[0]
    (folder / "cameras.txt").write_text(f"1 PINHOLE {frames.width} {frames.height} {fx} {fy} {cx} {cy}\n")
    lines = []
    for k, (m, name) in enumerate(zip(frames.c2w, frames.names)):
        w2c = np.linalg.inv(m @ np.diag([1, -1, -1, 1]))
        qx, qy, qz, qw = Rotation.from_matrix(w2c[:3, :3]).as_quat()
        t = w2c[:3, 3]
        lines += [f"{k + 1} {qw} {qx} {qy} {qz} {t[0]} {t[1]} {t[2]} 1 {name}", ""]
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    (folder / "points3D.txt").write_text("")


def test_colmap_text_model_gives_the_same_poses(tmp_path):
    pytest.importorskip("scipy")
    f = frames_fixture()
    write_transforms(tmp_path / "ds", f)
    _write_colmap_text(tmp_path / "sparse" / "0", f)
    g, pts = read_colmap(tmp_path / "sparse" / "0", tmp_path / "ds" / "images")
    assert np.allclose(g.c2w, f.c2w, atol=1e-6) and np.allclose(g.intrinsics, f.intrinsics) and pts.shape == (0, 3)
    import pycolmap  # the binary format of the same model reads the same

    rec = pycolmap.Reconstruction(str(tmp_path / "sparse" / "0"))
    (tmp_path / "bin").mkdir()
    rec.write_binary(str(tmp_path / "bin"))
    h, _ = read_colmap(tmp_path / "bin", tmp_path / "ds" / "images")
    assert np.allclose(h.c2w, f.c2w, atol=1e-6)


def test_colmap_errors(tmp_path):
    with pytest.raises(UserError, match="no COLMAP model"):
        read_colmap(tmp_path, tmp_path)


def test_video_frames_and_rate(tmp_path):
    f = frames_fixture(n=12, size=32)
    smooth = np.repeat(np.linspace(0, 255, 32, dtype=np.uint8)[None, None, :, None], 32, 1).repeat(3, 3)
    imgs = np.stack([np.roll(smooth[0], k, axis=1) for k in range(12)])
    write_video(tmp_path / "v.mp4", imgs, fps=12)
    got = read_video(tmp_path / "v.mp4")
    assert got.shape == (12, 32, 32, 3) and np.abs(got.astype(int) - imgs).mean() < 6
    assert len(read_video(tmp_path / "v.mp4", fps=4)) == 4
    assert len(read_video(tmp_path / "v.mp4", max_frames=5)) == 5
    assert read_video(tmp_path / "v.mp4", max_side=16).shape[1:3] == (16, 16)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(UserError, match="not a readable video"):
        read_video(tmp_path / "bad.mp4")
    del f


def test_image_folder_checks_sizes(tmp_path):
    from PIL import Image

    for k in range(3):
        Image.fromarray(np.zeros((8, 8 + (k == 2), 3), np.uint8)).save(tmp_path / f"{k}.png")
    with pytest.raises(UserError, match="differs"):
        read_image_folder(tmp_path)
    (tmp_path / "2.png").unlink()
    with pytest.raises(UserError, match="at least 3"):
        read_image_folder(tmp_path)


def test_normalization_centres_scales_and_levels_the_cameras():
    c2w = orbit(12, radius=5.0, height=2.0, target=(1.0, -2.0, 0.5))
    tilt = np.eye(4)
    tilt[:3, :3] = np.array([[1, 0, 0], [0, math.cos(0.4), -math.sin(0.4)], [0, math.sin(0.4), math.cos(0.4)]])
    c2w = apply_similarity(tilt * np.r_[[3.0] * 3, 1][:, None], c2w)  # rotate and scale the whole capture
    t = normalization(c2w, radius=2.5)
    out = apply_similarity(t, c2w)
    centres = out[:, :3, 3]
    assert np.isclose(np.linalg.norm(centres, axis=1).mean(), 2.5)
    assert np.allclose(out[:, :3, 1].mean(0) / np.linalg.norm(out[:, :3, 1].mean(0)), [0, 0, 1], atol=1e-6)
    assert np.allclose(np.linalg.det(out[:, :3, :3]), 1)
    # every optical axis passes through the origin (they all looked at the target)
    fwd = -out[:, :3, 2]
    dist = np.linalg.norm(np.cross(fwd, -centres), axis=1)
    assert dist.max() < 1e-6


def test_camera_rays_hit_the_principal_point():
    o, d = camera_rays(np.eye(4), (10.0, 10.0, 2.0, 2.0), 4, 4)
    assert o.shape == (16, 3) and np.allclose(np.linalg.norm(d.numpy(), axis=1), 1)
    # pixel (1, 1) has centre (1.5, 1.5): direction ((1.5 - 2) / 10, -(1.5 - 2) / 10, -1)
    want = np.array([-0.05, 0.05, -1.0])
    assert np.allclose(d[5].numpy(), want / np.linalg.norm(want))
