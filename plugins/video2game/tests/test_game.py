"""Part 2: collision hulls, the GLB export, the web page. Fidelity: every hull convex (all points on the inner side of
every face plane, checked here with planes computed independently) and covering its part; the GLB re-loads in trimesh
with the same counts, uv and textures; physics extras round-trip; the JS MLP equals the numpy MLP. Browser tests
(`-m browser`) drive the exported page in headless Chromium."""

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from paperloom import UserError

WEB_OK = shutil.which("node") is not None and shutil.which("npm") is not None


def _browser_reason():
    if shutil.which("chromium") is None:
        return "chromium not installed (apt-get install -y chromium)"
    if not WEB_OK:
        return "node / npm not installed"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright)"
    return None


BROWSER_MISSING = _browser_reason()


def need_browser():
    if BROWSER_MISSING:
        if os.environ.get("PAPERLOOM_REQUIRE_BROWSER"):
            pytest.fail(f"PAPERLOOM_REQUIRE_BROWSER is set but {BROWSER_MISSING}")
        pytest.skip(BROWSER_MISSING)


def planes(vertices, faces):
    """Face planes (unit outward normal n, offset c: n . x <= c inside) of triangles or planar polygons, with the
    vector area sum(p_i x p_i+1) (independent of collision.is_convex's Newell sums)."""
    v = np.asarray(vertices, np.float64)
    ns, cs = [], []
    for f in faces:
        p = v[list(f)]
        n = np.cross(p, np.roll(p, -1, 0)).sum(0)
        n /= np.linalg.norm(n)
        ns.append(n)
        cs.append(float(n @ p.mean(0)))
    return np.asarray(ns), np.asarray(cs)


def inside_hull(points, vertices, faces, tol=1e-6):
    n, c = planes(vertices, faces)
    return (points @ n.T <= c + tol).all(1)


@pytest.fixture(scope="module")
def baked(tmp_path_factory):
    from paperloom_video2game.synthetic import make_baked

    return make_baked(tmp_path_factory.mktemp("baked") / "baked", seed=0)


# --------------------------------------------------------------------------- collision


def shapes():
    import trimesh
    from paperloom_video2game.synthetic import BOX, VASE, Scene

    s = Scene(1)
    ring = trimesh.creation.annulus(r_min=0.2, r_max=0.4, height=0.15, sections=24)
    ell = trimesh.creation.capsule(height=0.5, radius=0.15, count=[12, 12])
    ell.apply_transform(trimesh.transformations.rotation_matrix(0.7, [1, 1, 0]))
    return {"vase": s.parts[VASE], "box": s.parts[BOX], "ring": ring, "capsule": ell}


@pytest.mark.parametrize("method,cover", [("coacd", 0.97), ("vhacd", 0.9), ("hull", 1.0)])
def test_every_hull_is_convex_watertight_and_covers_its_part(method, cover):
    """CoACD cuts the mesh by planes (its pieces' hulls cover it); V-HACD works on voxels, so it may miss a sliver
    along the surface: a looser bound for it."""
    from paperloom_video2game.collision import decompose, is_convex

    g = np.random.default_rng(0)
    for name, mesh in shapes().items():
        hulls = decompose(mesh, method, threshold=0.05, seed=0)
        assert hulls, name
        for h in hulls:
            v = np.asarray(h.vertices)
            assert h.is_watertight and h.volume > 0
            assert inside_hull(v, v, h.faces, 1e-9 * max(1, np.abs(v).max())).all(), (name, "not convex")
            assert is_convex(v, h.faces)
        # volume >= the part's (their union covers it); a small tolerance for the decomposers' voxel/plane cuts
        assert sum(h.volume for h in hulls) >= mesh.volume * (0.98 if method != "vhacd" else 0.95), (name, method)
        # and they cover it: random points inside the part lie in some hull
        lo, hi = mesh.bounds
        pts = g.uniform(lo, hi, (4000, 3))
        pts = pts[mesh.contains(pts)][:600]
        covered = np.zeros(len(pts), bool)
        for h in hulls:
            covered |= inside_hull(pts, h.vertices, h.faces, 2e-3)
        assert covered.mean() >= cover, (name, method, covered.mean())


@pytest.mark.parametrize("max_faces", [12, 32])
def test_bounded_hull_encloses_the_hull_with_few_planar_faces(max_faces):
    from paperloom_video2game.collision import bounded, convex_hull, is_convex, polygons

    for mesh in shapes().values():
        h = convex_hull(mesh.vertices)
        b = bounded(h, max_faces)
        v, faces = polygons(b)
        assert len(faces) <= max_faces and is_convex(v, faces)
        assert inside_hull(np.asarray(h.vertices), v, faces, 1e-7).all()  # it contains the original hull
        assert b.volume >= h.volume - 1e-9


def test_is_convex_rejects_a_concave_mesh():
    from paperloom_video2game.collision import is_convex

    ring = shapes()["ring"]
    assert not is_convex(ring.vertices, ring.faces)


@pytest.mark.parametrize("tile,seed", [(0.5, 0), (0.3, 1)])
def test_static_tiles_are_convex_slabs_under_every_surface_point(tile, seed):
    import trimesh
    from paperloom_video2game.collision import tiles

    g = np.random.default_rng(seed)
    ground = trimesh.creation.box(extents=[2.0, 1.6, 0.01])
    ground = trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(ground.vertices, ground.faces, 0.1))
    top = ground.vertices[:, 2] > 0
    ground.vertices[top, 2] += 0.05 * np.sin(3 * ground.vertices[top, 0]) + g.uniform(0, 0.01, top.sum())
    surface = trimesh.Trimesh(ground.vertices, ground.faces[top[ground.faces].all(1)])  # the open top surface
    hulls = tiles(surface, tile, thickness=0.1)
    assert len(hulls) == int(np.ceil(2.0 / tile - 1e-9) * np.ceil(1.6 / tile - 1e-9))
    for h in hulls:
        assert h.is_watertight and inside_hull(h.vertices, h.vertices, h.faces, 1e-9).all()
        assert np.ptp(h.vertices[:, :2], 0).max() <= tile + 1e-6  # clipped to its tile
    pts, _ = trimesh.sample.sample_surface(surface, 500, seed=seed)
    below = pts - [0, 0, 0.05]  # half the slab thickness under the surface
    ok = np.zeros(len(pts), bool)
    for h in hulls:
        ok |= inside_hull(below, h.vertices, h.faces, 1e-6)
    assert ok.all()


# --------------------------------------------------------------------------- GLB + colliders export


@pytest.fixture(scope="module")
def export_dir(baked, tmp_path_factory):
    from paperloom_video2game.config import CollisionConfig, ExportConfig
    from paperloom_video2game.gltf import export_game

    from paperloom.context import Run

    out = tmp_path_factory.mktemp("export")
    cfg = ExportConfig(web=WEB_OK, collision=CollisionConfig(
        objects={"box": {"mass": 2.5, "friction": 0.8, "restitution": 0.05}, "vase": {"restitution": 0.3}}))
    ctx = Run(out=out, plugin="video2game", task="test")
    metrics = export_game(cfg, ctx, baked, out / "game")
    return out / "game", metrics, cfg


def glb_json_and_bin(path):
    data = Path(path).read_bytes()
    jlen = struct.unpack_from("<I", data, 12)[0]
    tree = json.loads(data[20:20 + jlen])
    blen = struct.unpack_from("<I", data, 20 + jlen)[0]
    return tree, data[28 + jlen:28 + jlen + blen]


def accessor(tree, binary, index):
    acc = tree["accessors"][index]
    view = tree["bufferViews"][acc["bufferView"]]
    n = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[acc["type"]]
    dtype = {5126: np.float32, 5125: np.uint32, 5123: np.uint16}[acc["componentType"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(binary, dtype, acc["count"] * n, start).reshape(-1, n)


def test_glb_reloads_with_the_same_meshes_uv_textures_and_physics_extras(export_dir, baked):
    import trimesh
    from paperloom_video2game.gltf import Y_UP, load_baked
    from PIL import Image

    game, metrics, cfg = export_dir
    src = load_baked(baked)
    bodies = {b["name"]: b for b in json.loads((game / "colliders.json").read_text())["bodies"]}
    scene = trimesh.load(game / "scene.glb", force="scene")
    diffuse = np.asarray(Image.open(baked / "diffuse.png").convert("RGB"))
    specular = np.asarray(Image.open(baked / "specular.png").convert("RGB"))
    assert set(scene.geometry) == set(src["objects"]) == {"background", "vase", "box"}
    for name, mesh in src["objects"].items():
        geom = scene.geometry[name]
        assert (len(geom.vertices), len(geom.faces)) == (len(mesh.vertices), len(mesh.faces))
        # vertices: node transform (body position) + local -> scene coordinates through the inverse of Y_UP
        tf, _ = scene.graph[name]
        world = trimesh.transform_points(geom.vertices, tf) @ Y_UP  # glTF -> scene
        assert np.allclose(world, mesh.vertices, atol=1e-5)
        assert np.allclose(tf[:3, 3], np.asarray(bodies[name]["position"]), atol=1e-6)
        # textures: the exact PNG pixels
        mat = geom.visual.material
        assert np.array_equal(np.asarray(mat.baseColorTexture.convert("RGB")), diffuse)
        assert np.array_equal(np.asarray(mat.emissiveTexture.convert("RGB")), specular)
        # uv as trimesh reads it back (OBJ convention, v up) = part 1's (u, 1 - v)
        assert np.allclose(geom.visual.uv[:, 0], mesh.metadata["uv"][:, 0], atol=1e-6)
        assert np.allclose(geom.visual.uv[:, 1], 1 - mesh.metadata["uv"][:, 1], atol=1e-6)
        # physics extras round-trip (with the per-object overrides of the config)
        phys = geom.metadata["physics"]
        over = cfg.collision.objects.get(name, {})
        want_type = "static" if name in cfg.collision.static else "dynamic"
        assert phys["type"] == want_type == bodies[name]["type"]
        assert phys["friction"] == over.get("friction", cfg.collision.friction)
        assert phys["restitution"] == over.get("restitution", cfg.collision.restitution)
        assert phys["mass"] == (over.get("mass", cfg.collision.mass) if want_type == "dynamic" else 0.0)
        assert list(bodies)[phys["body"]] == name
    # the raw GLB: TEXCOORD_0 is part 1's uv with glTF's top-left origin, the scene extras name the files
    tree, binary = glb_json_and_bin(game / "scene.glb")
    for mesh_def in tree["meshes"]:
        uv = accessor(tree, binary, mesh_def["primitives"][0]["attributes"]["TEXCOORD_0"])
        assert np.allclose(uv, src["objects"][mesh_def["name"]].metadata["uv"], atol=1e-6)
    assert tree["scenes"][0]["extras"]["mlp"] == "mlp.json"
    assert metrics["triangles"] == sum(len(m.faces) for m in src["objects"].values())
    assert metrics["hulls_convex"] == 1.0 and metrics["hulls"] == sum(len(b["hulls"]) for b in bodies.values())


def test_colliders_are_the_hulls_in_glTF_axes_and_cover_the_objects(export_dir, baked):
    from paperloom_video2game.gltf import Y_UP, load_baked

    game, _, _ = export_dir
    src = load_baked(baked)
    bodies = {b["name"]: b for b in json.loads((game / "colliders.json").read_text())["bodies"]}
    for name, b in bodies.items():
        assert b["hulls"], name
        pos = np.asarray(b["position"])
        covered = np.zeros(len(src["objects"][name].vertices), bool)
        for h in b["hulls"]:
            v = np.asarray(h["vertices"]) + pos  # glTF world
            assert inside_hull(v, v, h["faces"], 1e-5).all()
            scene_v = v @ Y_UP  # back to the scene's axes
            covered |= inside_hull(src["objects"][name].vertices @ Y_UP.T, v, h["faces"], 2e-3)
            assert scene_v.shape == v.shape
        if b["type"] == "dynamic":  # every vertex of a dynamic object lies in one of its hulls
            assert covered.all(), name
    meta = json.loads((game / "scene.json").read_text())
    assert meta["physics"]["floor"] == pytest.approx(0.0, abs=1e-6)  # the ground's lowest point, y up
    assert meta["files"] == {"glb": "scene.glb", "mlp": "mlp.json", "colliders": "colliders.json"}


def test_dynamic_body_origin_is_the_hulls_centre_of_mass():
    import trimesh
    from paperloom_video2game.collision import body

    a = trimesh.creation.box(extents=[1, 1, 1])
    b = trimesh.creation.box(extents=[1, 1, 1])
    b.apply_translation([3, 0, 0])
    c = trimesh.creation.box(extents=[2, 2, 2])
    c.apply_translation([0, 5, 0])
    got = body("x", "dynamic", [a, b, c], 1, 0.5, 0.1)
    want = (0 * 1 + np.array([3, 0, 0]) * 1 + np.array([0, 5, 0]) * 8) / 10
    assert np.allclose(got["position"], want)
    assert np.allclose(np.asarray(got["hulls"][2]["vertices"]) + got["position"], c.vertices)


# --------------------------------------------------------------------------- the MLP in JavaScript


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
@pytest.mark.parametrize("seed,spec,hidden", [(0, 3, 32), (1, 1, 16), (2, 4, 8)])
def test_js_mlp_equals_the_numpy_mlp(tmp_path, seed, spec, hidden):
    import torch
    from paperloom_video2game.bake import BakedAppearance, mlp_json, mlp_numpy
    from paperloom_video2game.web import WEB, run_node

    torch.manual_seed(seed)
    m = BakedAppearance(8, spec, hidden)
    with torch.no_grad():
        for p in m.mlp.parameters():
            p.normal_(0, 0.7)
    mlp = mlp_json(m)
    g = np.random.default_rng(seed)
    x = np.concatenate([g.uniform(0, 1, (300, spec)), g.normal(size=(300, 3))], 1).astype(np.float32)
    diffuse = g.uniform(0, 1, (300, 3))
    (tmp_path / "mlp.json").write_text(json.dumps(mlp))
    (tmp_path / "x.json").write_text(json.dumps({"x": x.tolist(), "d": diffuse.tolist()}))
    out = run_node(
        f"import {{ mlpForward, shade, mlpGLSL }} from {json.dumps((WEB / 'src' / 'mlp.js').as_uri())};"
        "import fs from 'fs';"
        "const mlp = JSON.parse(fs.readFileSync('mlp.json')); const {x, d} = JSON.parse(fs.readFileSync('x.json'));"
        f"const C = {spec};"
        "console.log(JSON.stringify({y: x.map(r => mlpForward(mlp, r)),"
        " rgb: x.map((r, i) => shade(mlp, d[i], r.slice(0, C), r.slice(C))), glsl: mlpGLSL(mlp)}));",
        cwd=tmp_path)
    res = json.loads(out)
    want = mlp_numpy(x[:, :spec], x[:, spec:], mlp)
    assert np.abs(np.asarray(res["y"]) - want).max() < 1e-5
    assert np.abs(np.asarray(res["rgb"]) - np.clip(diffuse + want, 0, 1)).max() < 1e-5
    assert res["glsl"].startswith("vec3 mlp(vec4 spec, vec3 dir)") and res["glsl"].count("mat4(") == sum(
        -(-len(layer["bias"]) // 4) * -(-len(layer["weight"][0]) // 4) for layer in mlp["layers"])


# --------------------------------------------------------------------------- errors


def test_bad_inputs_are_one_line_errors_naming_the_file(baked, tmp_path):
    from paperloom_video2game.gltf import baked_folder, load_baked

    with pytest.raises(UserError, match="no baked/ folder"):
        baked_folder(str(tmp_path))
    with pytest.raises(UserError, match="no such folder"):
        baked_folder(str(tmp_path / "nope"))
    bad = tmp_path / "bad" / "baked"
    shutil.copytree(baked, bad)
    assert baked_folder(str(bad.parent)) == bad
    (bad / "mlp.json").write_text("{not json")
    with pytest.raises(UserError, match=r"mlp\.json: not valid JSON") as e:
        load_baked(bad)
    assert "\n" not in str(e.value)
    mlp = json.loads((baked / "mlp.json").read_text())
    mlp["layers"][1]["weight"] = mlp["layers"][1]["weight"][:-1]  # no longer chains with the next layer
    (bad / "mlp.json").write_text(json.dumps(mlp))
    with pytest.raises(UserError, match=r"layers\[1\] has weight .15, 16. / bias .16,. that do not chain"):
        load_baked(bad)
    (bad / "mlp.json").write_text(json.dumps({**mlp, "format": "other/1"}))
    with pytest.raises(UserError, match="expected 'paperloom-video2game-mlp/1'"):
        load_baked(bad)
    shutil.copyfile(baked / "mlp.json", bad / "mlp.json")
    (bad / "specular.png").unlink()
    with pytest.raises(UserError, match=r"specular\.png: missing; re-run video2game:bake"):
        load_baked(bad)
    (bad / "specular.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"specular\.png: not a readable PNG"):
        load_baked(bad)


def test_missing_node_npm_or_chromium_are_one_line_errors(monkeypatch):
    from paperloom_video2game import browser, web

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n, *a, **k: None if n in ("npm", "node") else real(n, *a, **k))
    with pytest.raises(UserError, match="npm not found on PATH.*Node.js"):
        web.tool("npm")
    monkeypatch.setattr(shutil, "which", lambda n, *a, **k: None)
    with pytest.raises(UserError, match="chromium not found.*apt-get install -y chromium"):
        browser.require()


def test_demo_without_chromium_stops_at_once_with_one_line(monkeypatch, tmp_path):
    from paperloom_video2game.config import DemoConfig
    from paperloom_video2game.demo import demo

    from paperloom.context import Run

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n, *a, **k: None if "chrom" in n else real(n, *a, **k))
    with pytest.raises(UserError, match="apt-get install"):
        demo(DemoConfig(), Run(out=tmp_path, plugin="video2game", task="demo"))
    assert not (tmp_path / "capture").exists()  # nothing was started


# --------------------------------------------------------------------------- the page in a real browser


@pytest.fixture(scope="module")
def checked(export_dir, baked):
    need_browser()
    from paperloom_video2game.browser import check_game
    from paperloom_video2game.config import BrowserConfig

    game, _, _ = export_dir
    cfg = BrowserConfig(width=160, height=120, drop="box", drop_height=0.5, steps=300, probes=48)
    return check_game(game, baked, cfg, seed=0, screenshot=game.parent / "shot.png")


PSNR_MIN = 30.0  # dB against the Python reference render (measured ~40+ on this scene; edges differ by a pixel)


@pytest.mark.browser
def test_page_loads_without_errors_and_matches_the_python_render(checked, export_dir):
    m = checked["metrics"]
    assert checked["errors"] == [] and m["console_errors"] == 0
    assert m["coverage"] > 0.3  # the view sees the scene
    assert m["screenshot_psnr"] > PSNR_MIN, m["screenshot_psnr"]
    assert m["screenshot_psnr_covered"] > PSNR_MIN - 2
    # most pixels within two 8-bit steps (rasteriser vs ray caster differ only along edges)
    close = (np.abs(checked["got"] - checked["want"]).max(-1) <= 2.5 / 255).mean()
    assert close > 0.9, close
    assert m["triangles"] == export_dir[1]["triangles"] and m["hulls"] == export_dir[1]["hulls"]
    assert m["browser_fps"] > 0 and m["raf_fps"] > 0
    assert (export_dir[0].parent / "shot.png").stat().st_size > 1000


@pytest.mark.browser
def test_shader_mlp_equals_numpy_for_probe_pixels(checked):
    assert checked["metrics"]["shader_mlp_max_err"] < 1e-4  # float32 GLSL vs numpy float32
    assert checked["metrics"]["js_mlp_max_err"] < 1e-5


@pytest.mark.browser
def test_a_dropped_object_falls_and_comes_to_rest(checked):
    d = checked["drop"]
    z = d["trajectory"][:, 2]
    assert z[0] == pytest.approx(d["rest_before"][2] + 0.5, abs=1e-6)
    assert z[3] < z[0] - 0.1  # it falls (free fall: 0.5 g t^2 = 0.34 after 30 steps)
    assert d["came_to_rest"] and d["end_speed"] < 0.05 and d["tail_motion"] < 2e-3
    # on the ground: back at (about) the height it rested at before, not below the floor
    assert abs(z[-1] - d["rest_before"][2]) < 0.05 and z.min() > d["rest_before"][2] - 0.05


@pytest.mark.browser
def test_play_serves_the_export_and_prints_its_url(export_dir, baked, tmp_path):
    need_browser()
    core = [sys.executable, "-m", "paperloom"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(core + ["run", "video2game:export", "--out", str(tmp_path / "exp"), "--set",
                               f"scene={baked}", "collision.method=hull"], capture_output=True, text=True, env=env,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    p = subprocess.Popen(core + ["run", "video2game:play", "--out", str(tmp_path / "play"), "--set",
                                 f"scene={tmp_path / 'exp'}", "port=0", "seconds=30"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url, t0 = None, time.time()
        while url is None and time.time() - t0 < 60:
            line = p.stdout.readline()
            if line.startswith("open http"):
                url = line.split()[1]
        assert url, "no URL printed"
        html = urllib.request.urlopen(url, timeout=10).read().decode()
        assert '<script src="app.js">' in html
        for f in ("app.js", "scene.glb", "colliders.json", "mlp.json", "scene.json"):
            assert len(urllib.request.urlopen(url + f, timeout=10).read()) > 100, f
    finally:
        p.terminate()
        p.wait(timeout=20)


@pytest.mark.browser
def test_a_thrown_ball_comes_to_rest_when_nothing_is_dynamic(baked, tmp_path):
    """A scene whose reconstruction holds no movable object (the demo's seed 2): the check throws in a ball."""
    need_browser()
    from paperloom_video2game.browser import check_game
    from paperloom_video2game.config import BrowserConfig, CollisionConfig, ExportConfig
    from paperloom_video2game.gltf import export_game

    from paperloom.context import Run

    cfg = ExportConfig(collision=CollisionConfig(static=["background", "vase", "box"]))
    export_game(cfg, Run(out=tmp_path, plugin="video2game", task="test"), baked, tmp_path / "game")
    res = check_game(tmp_path / "game", baked, BrowserConfig(width=64, height=48, steps=240, probes=4))
    m, d = res["metrics"], res["drop"]
    assert m["drop_spawned"] == 1.0 and m["console_errors"] == 0
    assert m["came_to_rest"] == 1.0 and d["fell"] > 0.3
    assert d["end"][2] > -0.01  # on the static scene (ground at z = 0, objects above), not through it
