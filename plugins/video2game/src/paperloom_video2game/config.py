"""Task schemas (no torch). Defaults: configs/<task>.yaml; presets (paper, tiny): configs/<task>/<name>.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom.config import option
from paperloom.contracts import (  # noqa: F401 (plugin.py uses all)
    BAKED_MESH,
    GAME_EXPORT,
    NERF_FIELD,
    POSED_IMAGES,
    SCENE_MESH,
)
from paperloom.schemas import OptimConfig, TrainerConfig


@dataclass
class NeRFConfig:
    """The radiance field's sizes (Instant-NGP hash grid + MLPs + occupancy grid)."""

    levels: int = option(16, min=1, help="hash-grid levels L")
    features: int = option(2, min=1, help="features per level F")
    log2_table: int = option(17, min=4, max=24, help="log2 of the hash-table size T per level")
    base_res: int = option(16, min=2, help="coarsest grid resolution N_min")
    max_res: int = option(2048, min=2, help="finest grid resolution N_max")
    hash_backend: str = option("auto", choices=("auto", "torch", "triton"),
                               help="hash encoding: auto = the Triton kernels on CUDA, torch elsewhere")
    hidden: int = option(64, min=4, help="width of the density and colour MLPs")
    geo_features: int = option(15, min=1, help="geometry features passed from the density to the colour MLP")
    sh_degree: int = option(4, min=1, max=4, help="spherical-harmonics bands of the view direction")
    grid_res: int = option(128, min=8, help="occupancy-grid cells per side (over the contracted cube)")
    density_bias: float = option(-3.0, help="added before the exp activation: space starts nearly transparent")


@dataclass
class MarchConfig:
    """Ray marching: dt = clamp(t * cone, dt_min, dt_max) from near to far (world units of the normalised scene)."""

    near: float = option(0.05, min=0, help="first sample distance")
    far: float = option(100.0, min=0, help="last sample distance (contracted: 2 - 1/far)")
    dt_min: float = option(0.02, min=1e-5, help="smallest step")
    dt_max: float = option(1.0, min=1e-5, help="largest step")
    cone: float = option(1 / 64, min=0, help="step growth with distance (Instant-NGP cone angle)")
    chunk: int = option(32, min=1, help="samples per ray marched between early-termination checks")
    t_threshold: float = option(1e-4, min=0, max=1, help="stop a ray once its transmittance falls below this")


@dataclass
class LossConfig:
    opacity: float = option(2e-4, min=0, help="weight of the opacity entropy -o log o")
    distortion: float = option(3e-4, min=0, help="weight of the distortion loss (mip-NeRF 360 Eq. 15)")
    depth: float = option(0.0, min=0, help="weight of the scale/shift-invariant depth prior (needs depth maps)")
    normal: float = option(0.0, min=0, help="weight of the normal prior (needs normal maps)")


@dataclass
class GridConfig:
    every: int = option(16, min=1, help="update the occupancy grid every N steps")
    warmup: int = option(256, min=0, help="first update at this step (the grid starts all occupied)")
    threshold: float = option(0.5, min=0, help="a cell is empty below this density")
    decay: float = option(0.95, min=0, max=1, help="running density <- max(decay * old, fresh)")


@dataclass
class PrepareConfig:
    """A video, an image folder, a transforms.json or a COLMAP model -> a posed dataset in the scene box."""

    input: str = option("", help="video file, image folder, transforms.json (or its folder), or COLMAP sparse/0 folder")
    format: str = option("auto", choices=("auto", "video", "images", "transforms", "colmap"),
                         help="input format (auto: by file type / folder contents)")
    images: str = option("", help="image folder of a COLMAP model (default: ../../images beside sparse/0, or images/)")
    poses: str = option("auto", choices=("auto", "sfm", "given"),
                        help="auto: the file's poses for transforms/COLMAP, SfM for video / images")
    known_poses: str = option("", help="transforms.json with the true poses of the same frames: the fallback if SfM "
                                       "registers too few frames, and the reference for the pose error")
    min_registered: float = option(0.8, min=0, max=1, help="SfM must register this fraction of frames, else fallback")
    fps: float = option(0.0, min=0, help="frames per second taken from a video (0: every frame)")
    max_frames: int = option(0, min=0, help="at most this many frames (0: all)")
    sfm_size: int = option(0, min=0, help="longer image side for SfM (0: as read)")
    size: int = option(0, min=0, help="longer image side of the prepared frames (0: as read)")
    radius: float = option(2.5, min=0.1, help="mean camera distance from the scene centre after normalisation")
    max_features: int = option(4096, min=64, help="SIFT features per image")


@dataclass
class FitConfig:
    """Train the NeRF on a prepared dataset (resumable)."""

    data: str = option("", help="run folder of video2game:prepare", run_contract=POSED_IMAGES)
    dataset: str = option("", help="or: a transforms.json (or its folder) used as it is, already in the scene box")
    model: str = option("video2game:ngp", help="radiance-field component", component="model")
    field: NeRFConfig = option(default_factory=NeRFConfig, help="the field's sizes (the model builder's arguments)")
    model_args: dict[str, Any] = option({}, help="further keyword arguments for the model builder")
    march: MarchConfig = option(default_factory=MarchConfig, help="ray marching")
    loss: LossConfig = option(default_factory=LossConfig, help="loss weights")
    grid: GridConfig = option(default_factory=GridConfig, help="occupancy grid")
    rays: int = option(4096, min=1, help="rays per training step")
    holdout_every: int = option(8, min=0, help="hold out every N-th frame for evaluation (0: none)")
    optim: OptimConfig = option(default_factory=lambda: OptimConfig(lr=1e-2, min_lr=1e-3, warmup_steps=50,
                                                                    beta2=0.99, weight_decay=0.0), help="AdamW")
    trainer: TrainerConfig = option(default_factory=lambda: TrainerConfig(max_steps=2000, val_every=500,
                                                                          checkpoint_every=200, gradient_clip_val=0.0),
                                    help="Lightning trainer (max_steps, checkpoint_every, ...)")
    turntable: int = option(24, min=0, help="frames of the turntable video (0: none)")


@dataclass
class MeshConfig:
    """Marching cubes of the NeRF density, clean-up, un-contraction, per-object meshes."""

    nerf: str = option("", help="run folder of video2game:fit", run_contract=NERF_FIELD)
    resolution: int = option(128, min=8, help="density grid samples per side")
    level: float = option(10.0, min=0, help="marching-cubes density level (0: the sampled grid's median, for "
                                            "untrained fields)")
    bounds: list[float] = option([-1.3, -1.3, -1.3, 1.3, 1.3, 1.3],
                                 help="region in contracted coordinates: xmin ymin zmin xmax ymax zmax (|.| < 2)")
    min_component: float = option(0.01, min=0, max=1, help="drop connected pieces with fewer faces than this fraction")
    faces: int = option(20000, min=0, help="decimate to this many faces (0: keep)")
    boxes: dict[str, Any] = option({}, help="objects: name: [xmin, ymin, zmin, xmax, ymax, zmax] (scene-box coords)")


@dataclass
class BakeConfig:
    """Texture the mesh: UV atlas, 8-bit diffuse + specular features and the view-dependent MLP, fit to the images."""

    mesh: str = option("", help="run folder of video2game:mesh", run_contract=SCENE_MESH)
    model: str = option("video2game:baked", help="baked-appearance component", component="model")
    texture: int = option(512, min=8, help="texture side in texels")
    specular_dim: int = option(3, min=1, max=4, help="specular feature channels (stored as a second PNG)")
    hidden: int = option(32, min=4, help="hidden width of the view-dependent MLP")
    steps: int = option(1000, min=1, help="optimisation steps")
    lr: float = option(0.02, min=0, help="Adam learning rate")
    pixels: int = option(65536, min=1, help="pixels per step (0 = all)")
    checkpoint_every: int = option(200, min=1, help="write checkpoints/bake-<mesh hash>.pt every N steps")
    quantize: bool = option(True, help="8-bit quantisation with a straight-through estimator during optimisation")


@dataclass
class CollisionConfig:
    """Collision shapes and rigid-body parameters (scene-box units, z up)."""

    method: str = option("coacd", choices=("coacd", "vhacd", "hull"),
                         help="convex decomposition of dynamic objects: CoACD, V-HACD (vhacdx) or one convex hull")
    threshold: float = option(0.1, min=0.01, max=1,
                              help="CoACD concavity threshold (smaller: more, tighter hulls, slower)")
    max_hulls: int = option(0, min=0, help="at most this many hulls per dynamic object (0: as the threshold needs; "
                                           "CoACD's merging to a limit is slow on large meshes)")
    preprocess: bool = option(False, help="CoACD's manifold repair before decomposing (slow on marching-cubes "
                                          "meshes)")
    max_faces: int = option(32, min=0, help="hulls with more planar faces are replaced by an enclosing k-DOP with "
                                            "about this many (cannon-es's convex-convex test is slow on big hulls; "
                                            "0: keep)")
    static: list[str] = option(["background"], help="objects that never move (cut into tiles, one slab hull each); "
                                                    "every other object is a dynamic rigid body")
    tile: float = option(0.5, min=0.01, help="static tiles' side (x and y)")
    thickness: float = option(0.1, min=0.0, help="static slab hulls reach this far below the surface")
    mass: float = option(1.0, min=1e-6, help="mass of a dynamic object")
    friction: float = option(0.5, min=0, help="friction coefficient (cannon-es multiplies the pair's)")
    restitution: float = option(0.1, min=0, max=1, help="restitution (bounciness)")
    objects: dict[str, Any] = option({}, help="per object overrides, e.g. {box: {mass: 2, friction: 0.8, "
                                              "restitution: 0.2, dynamic: true}}")
    gravity: float = option(9.81, min=0, help="gravity along -z (scene units / s^2)")
    floor: bool = option(True, help="add an infinite floor plane at the static scene's lowest point (a safety net "
                                    "under holes of a reconstructed ground)")


@dataclass
class ExportConfig:
    """Collision hulls + GLB (trimesh) + MLP JSON + the bundled web page (three.js, cannon-es) of a baked scene."""

    scene: str = option("", help="run folder of video2game:bake (or a baked/ folder)")
    collision: CollisionConfig = option(default_factory=CollisionConfig, help="collision shapes and physics")
    eye: list[float] = option([0.0, -2.2, 1.2], help="start / test camera position (scene box coordinates, z up)")
    target: list[float] = option([0.0, 0.0, 0.0], help="the point the start / test camera looks at")
    fov: float = option(50.0, min=1, max=170, help="vertical field of view, degrees")
    background: list[float] = option([0.72, 0.8, 0.93], help="clear colour (rgb in [0, 1])")
    spawn: list[float] = option([], help="player start (scene coordinates; empty: in front of the scene, on the "
                                         "floor)")
    speed: float = option(1.2, min=0, help="walking speed (scene units / s)")
    web: bool = option(True, help="build the web page (npm ci + esbuild); false: only the GLB, hulls and JSON")
    npm_cache: str = option("", help="folder for node_modules (default ~/.cache/paperloom/video2game-web)")
    minify: bool = option(True, help="minify app.js")


@dataclass
class PlayConfig:
    """Serve an exported game on localhost."""

    scene: str = option("", help="run folder of video2game:export", run_contract=GAME_EXPORT)
    host: str = option("127.0.0.1", help="address to bind")
    port: int = option(8000, min=0, max=65535, help="TCP port (0: any free port)")
    seconds: float = option(0.0, min=0, help="stop after this many seconds (0: serve until Ctrl-C)")


@dataclass
class BrowserConfig:
    """The headless-Chromium check of an exported game."""

    enabled: bool = option(True, help="run the browser check (needs chromium: apt-get install -y chromium, and the "
                                      "playwright Python package)")
    width: int = option(256, min=16, help="rendered view width (pixels)")
    height: int = option(256, min=16, help="rendered view height (pixels)")
    drop: str = option("", help="object to drop (empty: the first dynamic one; ball, or no dynamic object: a ball "
                                "thrown in above the static scene)")
    drop_height: float = option(0.6, min=0, help="the dropped object starts this far above its rest position")
    steps: int = option(360, min=10, help="physics steps (1/60 s) after the drop")
    probes: int = option(64, min=1, help="random MLP inputs evaluated by the page's shader and by numpy")
    timeout: float = option(90.0, min=1, help="seconds to wait for the page to load")


@dataclass
class DemoConfig:
    """A generated scene filmed along an orbit -> prepare (SfM) -> fit -> mesh -> bake; NeRF vs baked PSNR."""

    frames: int = option(30, min=3, help="video frames rendered along the orbit")
    video_size: int = option(192, min=32, help="video frame side (multiple of 16)")
    prepare: PrepareConfig = option(default_factory=PrepareConfig, help="prepare options (input is the video)")
    fit: FitConfig = option(default_factory=FitConfig, help="fit options")
    mesh: MeshConfig = option(default_factory=MeshConfig, help="mesh options (boxes come from the scene)")
    bake: BakeConfig = option(default_factory=BakeConfig, help="bake options")
    export: ExportConfig = option(default_factory=ExportConfig, help="export options (scene is the bake stage)")
    browser: BrowserConfig = option(default_factory=BrowserConfig, help="the headless-browser check of the game")
