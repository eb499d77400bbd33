// The Video2Game browser game: the exported GLB drawn with the baked-feature shader (diffuse + specular textures and
// the view-dependent MLP, per fragment, as bake.shade_numpy computes it), rigid bodies from the convex hulls
// (cannon-es), a walking player, drop / push actions, a frame-rate counter and a test API on window.game.
//
// Coordinates: three.js / glTF world is y up; the exported scene.json / colliders.json positions are in glTF
// coordinates, while the test API speaks the scene box's coordinates (z up, part 1's): scene (x, y, z) = gltf (x, -z, y).

import * as THREE from 'three';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';
import * as CANNON from 'cannon-es';
import { checkMlp, mlpForward, mlpGLSL, shade } from './mlp.js';

const params = new URLSearchParams(location.search);
const TEST = params.has('test'); // tests drive the physics with game.step(n); nothing moves on its own
const DT = 1 / 60;

const toScene = (v) => [v.x, -v.z, v.y];
const toGltf = (p) => new THREE.Vector3(p[0], p[2], -p[1]);

const game = {
  loaded: false, error: null, fps: 0, frames: 0, triangles: 0, hulls: 0, steps: 0, test: TEST,
  names: [], dynamic: [],
};
window.game = game;
window.addEventListener('error', (e) => { game.error = String(e.message || e); });

const hud = document.getElementById('hud');
const canvas = document.getElementById('game');

const VERTEX = /* glsl */ `
varying vec2 vUv;
varying vec3 vLocal;
varying vec3 vCam;
void main() {
  vUv = uv;
  vLocal = position;
  vCam = (inverse(modelMatrix) * vec4(cameraPosition, 1.0)).xyz;  // the camera in the object's frame
  gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0);
}`;

const fragment = (mlp) => /* glsl */ `
uniform sampler2D diffuseMap;
uniform sampler2D specularMap;
varying vec2 vUv;
varying vec3 vLocal;
varying vec3 vCam;
${mlpGLSL(mlp)}
void main() {
  vec3 diffuse = texture2D(diffuseMap, vUv).rgb;
  vec4 spec = texture2D(specularMap, vUv);
  vec3 g = normalize(vLocal - vCam);        // view direction, object frame = scene frame at rest (glTF axes)
  vec3 dir = vec3(g.x, -g.z, g.y);          // -> the scene box's axes, as the MLP was trained
  gl_FragColor = vec4(clamp(diffuse + mlp(spec, dir), 0.0, 1.0), 1.0);
}`;

// the same MLP on given inputs, one output texel per probe: raw y (before the diffuse and the clamp) in rgb
const probeFragment = (mlp) => /* glsl */ `
uniform sampler2D probeSpec;
uniform sampler2D probeDir;
${mlpGLSL(mlp)}
void main() {
  ivec2 p = ivec2(gl_FragCoord.xy);
  vec4 spec = texelFetch(probeSpec, p, 0);
  vec3 dir = texelFetch(probeDir, p, 0).xyz;
  gl_FragColor = vec4(mlp(spec, dir), 1.0);
}`;

function rawTexture(tex) {
  // the PNGs hold features, not colours: no sRGB decoding, plain bilinear, no mipmaps (as bake.shade_numpy samples)
  tex.colorSpace = THREE.NoColorSpace;
  tex.minFilter = THREE.LinearFilter;
  tex.magFilter = THREE.LinearFilter;
  tex.generateMipmaps = false;
  tex.wrapS = THREE.ClampToEdgeWrapping;
  tex.wrapT = THREE.ClampToEdgeWrapping;
  tex.flipY = false;
  tex.needsUpdate = true;
  return tex;
}

async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function viewMatrix(c2w) {
  // scene-frame OpenGL camera-to-world (row-major 16) -> glTF-frame Matrix4
  const m = new THREE.Matrix4().set(...c2w);
  const yUp = new THREE.Matrix4().set(1, 0, 0, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 0, 0, 1);
  return yUp.multiply(m);
}

async function main() {
  const meta = await fetchJson('scene.json');
  const [mlp, colliders, gltf] = await Promise.all([
    fetchJson(meta.files.mlp), fetchJson(meta.files.colliders), new GLTFLoader().loadAsync(meta.files.glb)]);
  checkMlp(mlp);

  const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
  renderer.setPixelRatio(1);
  renderer.setSize(window.innerWidth, window.innerHeight, false);
  const bg = meta.background || [0, 0, 0];
  renderer.setClearColor(new THREE.Color(bg[0], bg[1], bg[2]), 1);
  const scene = new THREE.Scene();
  scene.add(gltf.scene);
  const camera = new THREE.PerspectiveCamera(meta.camera.fov, window.innerWidth / window.innerHeight, 0.01, 200);

  // the baked-feature shader on every mesh of the GLB
  let material = null;
  const nodes = {};
  gltf.scene.traverse((o) => {
    if (!o.isMesh) return;
    const phys = o.userData.physics;
    if (!material) {
      material = new THREE.ShaderMaterial({
        uniforms: { diffuseMap: { value: rawTexture(o.material.map) },
                    specularMap: { value: rawTexture(o.material.emissiveMap) } },
        vertexShader: VERTEX, fragmentShader: fragment(mlp), side: THREE.DoubleSide });
    }
    o.material = material;
    o.frustumCulled = false;
    game.triangles += o.geometry.index ? o.geometry.index.count / 3 : o.geometry.attributes.position.count / 3;
    if (phys) nodes[phys.body] = o;
  });
  if (!material) throw new Error(`${meta.files.glb}: no meshes`);

  // physics: cannon-es rigid bodies of convex hulls, gravity along -y (glTF up)
  const world = new CANNON.World({ gravity: new CANNON.Vec3(0, -meta.physics.gravity, 0) });
  world.broadphase = new CANNON.SAPBroadphase(world);
  world.allowSleep = true;
  world.solver.iterations = meta.physics.iterations || 10;
  const bodies = {};
  const start = {};
  colliders.bodies.forEach((c, index) => {
    const mat = new CANNON.Material({ friction: c.friction, restitution: c.restitution });
    const body = new CANNON.Body({ mass: c.type === 'dynamic' ? c.mass : 0, material: mat,
                                   type: c.type === 'dynamic' ? CANNON.Body.DYNAMIC : CANNON.Body.STATIC });
    for (const h of c.hulls) {
      // cannon-es wants each convex shape around its own origin: centre the hull and offset the shape
      const m = [0, 1, 2].map((k) => h.vertices.reduce((s, v) => s + v[k], 0) / h.vertices.length);
      body.addShape(new CANNON.ConvexPolyhedron({
        vertices: h.vertices.map((v) => new CANNON.Vec3(v[0] - m[0], v[1] - m[1], v[2] - m[2])), faces: h.faces }),
      new CANNON.Vec3(m[0], m[1], m[2]));
      game.hulls += 1;
    }
    body.position.set(...c.position);
    body.sleepSpeedLimit = 0.05;
    body.sleepTimeLimit = 0.5;
    body.linearDamping = 0.05;
    body.angularDamping = 0.1;
    world.addBody(body);
    bodies[c.name] = body;
    start[c.name] = c.position.slice();
    game.names.push(c.name);
    if (c.type === 'dynamic') game.dynamic.push(c.name);
    if (nodes[index]) nodes[index].userData.body = body;
  });
  if (meta.physics.floor !== null && meta.physics.floor !== undefined) {
    const floor = new CANNON.Body({ type: CANNON.Body.STATIC, shape: new CANNON.Plane(),
                                    material: new CANNON.Material({ friction: 0.6, restitution: 0.1 }) });
    floor.quaternion.setFromEuler(-Math.PI / 2, 0, 0);
    floor.position.set(0, meta.physics.floor, 0);
    world.addBody(floor);
  }
  const sync = () => {
    for (const o of Object.values(nodes)) {
      const b = o.userData.body;
      if (b && b.type === CANNON.Body.DYNAMIC) { o.position.copy(b.position); o.quaternion.copy(b.quaternion); }
    }
  };

  // the player: a sphere that walks (WASD + mouse look), jumps, drops and pushes objects
  const player = new CANNON.Body({ mass: 5, shape: new CANNON.Sphere(meta.player.radius), fixedRotation: true,
                                   linearDamping: 0.0, material: new CANNON.Material({ friction: 0.0 }) });
  player.position.copy(toGltf(meta.player.spawn));
  if (!TEST) world.addBody(player);
  const look = { yaw: meta.player.yaw, pitch: meta.player.pitch };
  const keys = new Set();
  let balls = 0;
  addEventListener('keydown', (e) => {
    keys.add(e.code);
    if (e.code === 'KeyE') dropInFront();
    if (e.code === 'KeyF') push();
    if (e.code === 'KeyR') reset();
    if (e.code === 'KeyB') {
      const at = camera.position.clone().add(forward().multiplyScalar(0.5));
      game.spawn(`ball${balls++}`, toScene(at));
    }
  });
  addEventListener('keyup', (e) => keys.delete(e.code));
  canvas.addEventListener('click', () => canvas.requestPointerLock && canvas.requestPointerLock());
  addEventListener('mousemove', (e) => {
    if (document.pointerLockElement !== canvas) return;
    look.yaw -= e.movementX * 0.0025;
    look.pitch = Math.max(-1.5, Math.min(1.5, look.pitch - e.movementY * 0.0025));
  });
  let touch = null; // touch: drag to look (the orbit-on-touch fallback)
  canvas.addEventListener('touchstart', (e) => { touch = [e.touches[0].clientX, e.touches[0].clientY]; });
  canvas.addEventListener('touchmove', (e) => {
    const t = [e.touches[0].clientX, e.touches[0].clientY];
    if (touch) { look.yaw -= (t[0] - touch[0]) * 0.005; look.pitch -= (t[1] - touch[1]) * 0.005; }
    touch = t;
  });
  const forward = () => new THREE.Vector3(0, 0, -1).applyEuler(new THREE.Euler(look.pitch, look.yaw, 0, 'YXZ'));
  function controls() {
    const f = forward().setY(0).normalize();
    const r = new THREE.Vector3().crossVectors(f, new THREE.Vector3(0, 1, 0));
    const v = new THREE.Vector3();
    if (keys.has('KeyW') || keys.has('ArrowUp')) v.add(f);
    if (keys.has('KeyS') || keys.has('ArrowDown')) v.sub(f);
    if (keys.has('KeyD')) v.add(r);
    if (keys.has('KeyA')) v.sub(r);
    if (keys.has('ArrowLeft')) look.yaw += 0.03;
    if (keys.has('ArrowRight')) look.yaw -= 0.03;
    if (v.lengthSq() > 0) v.normalize().multiplyScalar(meta.player.speed);
    player.velocity.x = v.x;
    player.velocity.z = v.z;
    if (keys.has('Space') && Math.abs(player.velocity.y) < 0.05) player.velocity.y = meta.player.jump;
    player.wakeUp();
    camera.position.set(player.position.x, player.position.y + meta.player.eye, player.position.z);
    camera.quaternion.setFromEuler(new THREE.Euler(look.pitch, look.yaw, 0, 'YXZ'));
  }
  function nearestDynamic(p) {
    let best = null;
    let dist = Infinity;
    for (const n of game.dynamic) {
      const d = bodies[n].position.distanceTo(p);
      if (d < dist) { dist = d; best = n; }
    }
    return best;
  }
  function dropInFront() {
    const at = camera.position.clone().add(forward().setY(0).normalize().multiplyScalar(0.8));
    const n = nearestDynamic(new CANNON.Vec3(at.x, at.y, at.z));
    if (!n) return;
    const b = bodies[n];
    b.position.set(at.x, at.y + 0.3, at.z);
    b.velocity.setZero(); b.angularVelocity.setZero(); b.wakeUp();
  }
  function push() {
    const f = forward();
    const n = nearestDynamic(new CANNON.Vec3(camera.position.x, camera.position.y, camera.position.z));
    if (!n) return;
    const b = bodies[n];
    b.applyImpulse(new CANNON.Vec3(f.x, f.y + 0.3, f.z).scale(3 * b.mass));
    b.wakeUp();
  }
  function reset() {
    for (const n of game.dynamic) {
      const b = bodies[n];
      b.position.set(...start[n]); b.quaternion.set(0, 0, 0, 1);
      b.velocity.setZero(); b.angularVelocity.setZero(); b.wakeUp();
    }
    player.position.copy(toGltf(meta.player.spawn)); player.velocity.setZero();
  }

  // a fixed view (tests, screenshots): scene-frame c2w, vertical fov
  let fixedView = null;
  function setView(view) {
    viewMatrix(view.c2w).decompose(camera.position, camera.quaternion, camera.scale);
    camera.fov = view.fov;
    camera.updateProjectionMatrix();
    camera.updateMatrixWorld(true);
  }

  // ------------------------------------------------------------------ test API
  const b64 = (bytes) => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  game.state = () => Object.fromEntries(game.names.map((n) => {
    const b = bodies[n];
    return [n, { type: b.type === CANNON.Body.DYNAMIC ? 'dynamic' : 'static', position: toScene(b.position),
                 velocity: toScene(b.velocity), sleeping: b.sleepState === CANNON.Body.SLEEPING }];
  }));
  game.positions = () => Object.fromEntries(game.dynamic.map((n) => [n, toScene(bodies[n].position)]));
  game.step = (n = 1) => {
    for (let i = 0; i < n; i++) { world.step(DT); game.steps += 1; }
    sync();
    return game.positions();
  };
  game.drop = (name, height = 1.0) => {
    const b = bodies[name || game.dynamic[0]];
    b.position.y += height;
    b.velocity.setZero(); b.angularVelocity.setZero(); b.wakeUp();
    sync();
    return toScene(b.position);
  };
  // a ball thrown into the scene (also key B): a dynamic sphere body drawn plainly
  game.spawn = (name, p, radius = 0.08, mass = 1) => {
    const body = new CANNON.Body({ mass, shape: new CANNON.Sphere(radius),
                                   material: new CANNON.Material({ friction: 0.5, restitution: 0.1 }) });
    body.position.copy(toGltf(p));
    Object.assign(body, { sleepSpeedLimit: 0.05, sleepTimeLimit: 0.5, linearDamping: 0.05, angularDamping: 0.1 });
    world.addBody(body);
    const mesh = new THREE.Mesh(new THREE.SphereGeometry(radius, 16, 12), new THREE.MeshBasicMaterial({ color: 0xd04020 }));
    mesh.userData.body = body;
    scene.add(mesh);
    nodes[`spawn:${name}`] = mesh;
    bodies[name] = body;
    start[name] = [body.position.x, body.position.y, body.position.z];
    if (!game.names.includes(name)) { game.names.push(name); game.dynamic.push(name); }
    sync();
    return toScene(body.position);
  };
  game.push = (name, impulse) => { bodies[name].applyImpulse(toGltf(impulse)); bodies[name].wakeUp(); };
  game.reset = reset;
  game.setView = (view) => { fixedView = view; setView(view); };
  game.freeView = () => { fixedView = null; };
  // render a view into an 8-bit target: base64 RGBA, top row first
  game.render = (view) => {
    const target = new THREE.WebGLRenderTarget(view.width, view.height, { depthBuffer: true });
    const saved = { fov: camera.fov, aspect: camera.aspect };
    setView(view);
    camera.aspect = view.width / view.height;
    camera.updateProjectionMatrix();
    renderer.setRenderTarget(target);
    renderer.render(scene, camera);
    const px = new Uint8Array(view.width * view.height * 4);
    renderer.readRenderTargetPixels(target, 0, 0, view.width, view.height, px);
    renderer.setRenderTarget(null);
    target.dispose();
    camera.fov = saved.fov; camera.aspect = saved.aspect; camera.updateProjectionMatrix();
    const flipped = new Uint8Array(px.length);
    const row = view.width * 4;
    for (let y = 0; y < view.height; y++) flipped.set(px.subarray((view.height - 1 - y) * row, (view.height - y) * row), y * row);
    return b64(flipped);
  };
  // the GLSL MLP on given inputs (spec: N x 4, dir: N x 3): N x 3 raw outputs, float render target
  const probeMat = new THREE.ShaderMaterial({
    uniforms: { probeSpec: { value: null }, probeDir: { value: null } },
    vertexShader: 'void main() { gl_Position = vec4(position.xy, 0.0, 1.0); }', fragmentShader: probeFragment(mlp) });
  const quad = new THREE.Mesh(new THREE.PlaneGeometry(2, 2), probeMat);
  quad.frustumCulled = false;
  const probeScene = new THREE.Scene();
  probeScene.add(quad);
  game.probe = (spec, dir) => {
    const n = spec.length;
    const pack = (rows, k) => {
      const a = new Float32Array(n * 4);
      rows.forEach((r, i) => { for (let j = 0; j < k; j++) a[4 * i + j] = r[j] || 0; });
      const t = new THREE.DataTexture(a, n, 1, THREE.RGBAFormat, THREE.FloatType);
      t.minFilter = t.magFilter = THREE.NearestFilter;
      t.needsUpdate = true;
      return t;
    };
    probeMat.uniforms.probeSpec.value = pack(spec, 4);
    probeMat.uniforms.probeDir.value = pack(dir, 3);
    const target = new THREE.WebGLRenderTarget(n, 1, { type: THREE.FloatType, depthBuffer: false });
    renderer.setRenderTarget(target);
    renderer.render(probeScene, new THREE.Camera());
    const px = new Float32Array(n * 4);
    renderer.readRenderTargetPixels(target, 0, 0, n, 1, px);
    renderer.setRenderTarget(null);
    target.dispose();
    return Array.from({ length: n }, (_, i) => [px[4 * i], px[4 * i + 1], px[4 * i + 2]]);
  };
  game.mlp = (x) => mlpForward(mlp, x);
  game.shade = (diffuse, spec, dir) => shade(mlp, diffuse, spec, dir);
  // frames per second of the render alone: n frames, each finished (readPixels) before the next
  game.benchmark = (n = 30) => {
    const gl = renderer.getContext();
    const px = new Uint8Array(4);
    renderer.render(scene, camera);
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      renderer.render(scene, camera);
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
    }
    return { fps: n / ((performance.now() - t0) / 1000), width: canvas.width, height: canvas.height };
  };

  // ------------------------------------------------------------------ loop
  if (meta.camera.c2w) setView(meta.camera);
  addEventListener('resize', () => {
    renderer.setSize(window.innerWidth, window.innerHeight, false);
    camera.aspect = window.innerWidth / window.innerHeight;
    camera.updateProjectionMatrix();
  });
  camera.aspect = window.innerWidth / window.innerHeight;
  camera.updateProjectionMatrix();
  let last = performance.now();
  let acc = 0;
  let count = 0;
  let since = last;
  function frame(now) {
    const dt = Math.min((now - last) / 1000, 0.1);
    last = now;
    if (!TEST) {
      acc += dt;
      let n = 0;
      while (acc >= DT && n < 4) { world.step(DT); game.steps += 1; acc -= DT; n += 1; }
      if (n === 4) acc = 0;
      sync();
      if (!fixedView) controls();
    }
    renderer.render(scene, camera);
    game.frames += 1;
    count += 1;
    if (now - since >= 500) {
      game.fps = (1000 * count) / (now - since);
      count = 0;
      since = now;
      hud.textContent = `${game.fps.toFixed(1)} fps · ${game.triangles} triangles · ${game.hulls} hulls` +
        (TEST ? ' · test mode' : '');
    }
    requestAnimationFrame(frame);
  }
  sync();
  game.loaded = true;
  hud.textContent = `${game.triangles} triangles · ${game.hulls} hulls`;
  requestAnimationFrame(frame);
}

main().catch((e) => {
  game.error = String((e && e.stack) || e);
  hud.textContent = `error: ${e && e.message ? e.message : e}`;
  console.error(e);
});
