"""COCONut PQ evaluation: paperloom-coconut's vectorized, multi-process evaluator vs a plain
per-segment loop written the way panopticapi's ``pq_compute`` does it, on the same generated
prediction folder, in one run; identical numbers are checked, images/s, ratios and peak memory reported.

    python plugins/coconut/benchmarks/coconut.py                       # ~2,000 images of 640x480, 20-60 segments
    python plugins/coconut/benchmarks/coconut.py --images 200          # smaller
    python plugins/coconut/benchmarks/coconut.py --index-images 50000  # also time opening a large split
    python plugins/coconut/benchmarks/coconut.py --images 500 --ray    # + a local Ray cluster (2 CPUs)

Also: the decode floor (the fastest installed decoder reading the same two PNGs per image), CPU time and
page faults per run, 2-vs-1-worker throughput beside the machine's own 2-process ceiling.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the plain reference the tests use
from reference import new_stat, reference_average, reference_pq_image  # noqa: E402

# --------------------------------------------------------------------------- data


def make_pair(rng, h, w, cats):
    """GT and prediction label maps: nearest-seed regions with VOID borders; prediction shifted/relabelled."""
    k = int(rng.integers(20, 61))
    gh, gw = h // 2, w // 2  # regions at half resolution with wobbly (noise-perturbed) boundaries
    ys, xs = rng.uniform(0, gh, k), rng.uniform(0, gw, k)
    yy, xx = np.mgrid[:gh, :gw].astype(np.float32)
    wob = np.kron(rng.normal(0, 6, (gh // 8 + 1, gw // 8 + 1, k)), np.ones((8, 8, 1)))[:gh, :gw].astype(np.float32)
    lab = (np.sqrt((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2) + wob).argmin(-1) + 1
    lab = lab.repeat(2, 0).repeat(2, 1)
    border = np.zeros(lab.shape, bool)
    border[1:] |= lab[1:] != lab[:-1]
    border[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    gt_lab = np.where(border & (rng.random(lab.shape) < 0.7), 0, lab)
    dy, dx = rng.integers(-6, 7, 2)
    pred_lab = np.roll(lab, (dy, dx), (0, 1))
    pred_lab[rng.random(lab.shape) < 0.002] = 0
    ids = rng.choice(np.arange(1, 1 << 24), size=k + 1, replace=False)
    ids[0] = 0
    things = [c for c in cats if c["isthing"]]
    gsegs, psegs, crowded = [], [], set()
    gt, pred = ids[gt_lab].astype(np.uint32), ids[pred_lab].astype(np.uint32)
    g_present, p_present = set(np.unique(gt).tolist()), set(np.unique(pred).tolist())
    for j in range(1, k + 1):
        cat = things[rng.integers(len(things))] if rng.random() < 0.6 else cats[rng.integers(len(cats))]
        crowd = int(cat["isthing"] and rng.random() < 0.05 and cat["id"] not in crowded)
        crowded.add(cat["id"]) if crowd else None
        sid = int(ids[j])
        if sid in g_present:
            gsegs.append({"id": sid, "category_id": cat["id"], "iscrowd": crowd, "area": int((gt == sid).sum())})
        if sid in p_present:
            pc = cat["id"] if rng.random() < 0.85 else cats[rng.integers(len(cats))]["id"]
            psegs.append({"id": sid, "category_id": pc, "iscrowd": 0})
    return gt, gsegs, pred, psegs


def generate(root: Path, n: int, h: int, w: int, seed: int = 0) -> None:
    from paperloom_coconut.categories import COCO_PANOPTIC_CATEGORIES as cats
    from paperloom_coconut.panoptic import id2rgb

    rng = np.random.default_rng(seed)
    for d in ("gt", "pred"):
        (root / d).mkdir(parents=True, exist_ok=True)
    images, gt_anns, pred_anns = [], [], []
    for i in range(n):
        gt, gsegs, pred, psegs = make_pair(rng, h, w, cats)
        name = f"{i:012d}.png"
        Image.fromarray(id2rgb(gt)).save(root / "gt" / name, compress_level=1)
        Image.fromarray(id2rgb(pred)).save(root / "pred" / name, compress_level=1)
        images.append({"id": i, "file_name": name.replace(".png", ".jpg"), "height": h, "width": w})
        gt_anns.append({"image_id": i, "file_name": name, "segments_info": gsegs})
        pred_anns.append({"image_id": i, "file_name": name, "segments_info": psegs})
    (root / "gt.json").write_text(json.dumps({"images": images, "annotations": gt_anns, "categories": cats}))
    (root / "pred.json").write_text(json.dumps({"annotations": pred_anns}))


# --------------------------------------------------------------------------- the panopticapi-style loop


def rgb2id(color):  # panopticapi.utils.rgb2id (its input here is already uint32, as pq_compute passes it)
    if color.dtype == np.uint8:
        color = color.astype(np.int32)
    return color[:, :, 0] + 256 * color[:, :, 1] + 256 * 256 * color[:, :, 2]


def ref_single(args):
    pairs, gt_folder, pred_folder, categories = args
    stat = new_stat()
    for gt_ann, pred_ann in pairs:
        pan_gt = rgb2id(np.array(Image.open(os.path.join(gt_folder, gt_ann["file_name"])), dtype=np.uint32))
        pan_pred = rgb2id(np.array(Image.open(os.path.join(pred_folder, pred_ann["file_name"])), dtype=np.uint32))
        ref_image(pan_gt, gt_ann, pan_pred, pred_ann, categories, stat)
    return {k: dict(v) for k, v in stat.items()}


def ref_image(pan_gt, gt_ann, pan_pred, pred_ann, categories, stat):
    """panopticapi's per-image body, step for step (tests/reference.py, with its prediction input checks)."""
    reference_pq_image(pan_gt, gt_ann["segments_info"], pan_pred, pred_ann["segments_info"], stat, categories)


def reference(root: Path, processes: int) -> dict:
    gt = json.loads((root / "gt.json").read_text())
    pred = {a["image_id"]: a for a in json.loads((root / "pred.json").read_text())["annotations"]}
    cats = {c["id"]: c for c in gt["categories"]}
    pairs = [(a, pred[a["image_id"]]) for a in gt["annotations"]]
    chunks = np.array_split(np.arange(len(pairs)), processes)  # as pq_compute_multi_core splits the image list
    jobs = [([pairs[i] for i in c], str(root / "gt"), str(root / "pred"), cats) for c in chunks]
    if processes == 1:
        parts = [ref_single(jobs[0])]
    else:
        with mp.get_context("fork").Pool(processes) as pool:
            parts = pool.map(ref_single, jobs)
    total = new_stat()
    for part in parts:
        for k, v in part.items():
            for field, x in v.items():
                total[k][field] += x
    out = {}
    for name, want in (("", None), ("_th", True), ("_st", False)):
        pq, sq, rq = reference_average(total, gt["categories"], want)
        out.update({"pq" + name: pq, "sq" + name: sq, "rq" + name: rq})
    per = {cid: (total[cid]["tp"], total[cid]["fp"], total[cid]["fn"]) for cid in cats
           if total[cid]["tp"] + total[cid]["fp"] + total[cid]["fn"]}
    return {"metrics": out, "counts": {str(k): list(v) for k, v in sorted(per.items())}}


def ours(root: Path, processes: int, backend: str = "local") -> dict:
    import functools

    from paperloom_coconut.panoptic import PanopticIndex
    from paperloom_coconut.pq import evaluate_folder, load_predictions

    from paperloom.executor import imap_items

    index = PanopticIndex(root / "gt.json", root / "gt", cache_dir=root / "cache")
    imap = functools.partial(imap_items, workers=processes, backend=backend)
    acc = evaluate_folder(index, load_predictions(str(root / "pred.json"), str(root / "pred")), str(root / "pred"),
                          processes=processes, want_ap=False, imap=imap)
    m = acc.pq()
    per = acc.pq_per_class()
    counts = {str(k): [v["tp"], v["fp"], v["fn"]] for k, v in sorted(per.items()) if v["counted"]}
    return {"metrics": {k: v for k, v in m.items() if not k.startswith("n")}, "counts": counts}


def _hwm_mb() -> float:
    """This process's own peak RSS (VmHWM starts afresh at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode_floor(root: Path) -> dict:
    """The fastest available decoder reading the same two PNGs per image (to RGB arrays, nothing else)."""
    gt = json.loads((root / "gt.json").read_text())
    pred = {a["image_id"]: a for a in json.loads((root / "pred.json").read_text())["annotations"]}
    files = [(root / "gt" / a["file_name"], root / "pred" / pred[a["image_id"]]["file_name"])
             for a in gt["annotations"]]
    decoders = {"PIL": lambda p: np.asarray(Image.open(p))}
    try:
        import pyspng

        decoders["pyspng"] = lambda p: pyspng.load(Path(p).read_bytes())
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
        decoders["OpenCV"] = lambda p: cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    except ImportError:
        pass
    cpu = {}
    for name, fn in decoders.items():
        t = time.process_time()
        for g, p in files:
            fn(g), fn(p)
        cpu[name] = time.process_time() - t
    best = min(cpu, key=cpu.get)
    return {"decoder": best, "cpu_s": cpu[best], "all": cpu}


def _decode_files(files: list) -> int:
    from paperloom_coconut.panoptic import read_pixels  # the evaluator's own reader (pyspng, PIL fallback)

    return sum(read_pixels(f).size for f in files)


def machine_scaling(root: Path) -> dict:
    """What this machine gives two processes: the wall time of decoding every PNG in one process against two
    processes decoding half each (a pool started before timing): the ceiling for any 2-worker speed-up here,
    below 2 where the cores are shared (SMT siblings, noisy neighbours)."""
    files = sorted(str(f) for f in (root / "gt").glob("*.png")) + sorted(str(f) for f in (root / "pred").glob("*.png"))
    _decode_files(files[:2])  # imports and first allocations out of the way (the forked pool inherits them)
    t = time.perf_counter()
    _decode_files(files)
    one = time.perf_counter() - t
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_decode_files, [[], []])  # both workers up
        t = time.perf_counter()
        pool.map(_decode_files, [files[0::2], files[1::2]], chunksize=1)
        two = time.perf_counter() - t
    return {"one_s": one, "two_s": two, "ratio": one / two}


def run_child(which: str, root: Path, processes: int) -> None:
    if which == "decode-floor":
        return print(json.dumps(decode_floor(root)))
    if which == "machine-scaling":
        return print(json.dumps(machine_scaling(root)))
    if which == "interleaved":
        return print(json.dumps(interleaved(root)))
    if which == "paperloom-coconut-ray":  # a running cluster, as users have one: its start is not timed
        import ray

        ray.init(num_cpus=processes, include_dashboard=False, log_to_driver=False)

    if which.startswith("paperloom-coconut"):  # imported before timing, as the loop's numpy and PIL are
        import numpy.random  # noqa: F401  (numpy imports it lazily; the executor seeds it per item: 25 ms)
        import paperloom_coconut.pq  # noqa: F401

        import paperloom.executor  # noqa: F401

    def usage():
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, me.ru_minflt + kids.ru_minflt

    cpu0, flt0 = usage()
    t = time.perf_counter()
    if which == "panopticapi-loop":
        res = reference(root, processes)
    else:
        res = ours(root, processes, "ray" if which == "paperloom-coconut-ray" else "local")
    res["seconds"] = time.perf_counter() - t
    cpu1, flt1 = usage()
    res["cpu_s"], res["minflt"] = cpu1 - cpu0, flt1 - flt0  # workers once reaped (Ray's are not children)
    res["peak_rss_mb"] = _hwm_mb()  # main process
    res["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest worker
    print(json.dumps(res))


def interleaved(root: Path, batches: int = 10) -> dict:
    """One process, the same images in `batches` interleaved shards: for each shard the decode floor, the
    panopticapi-style loop and this plugin's evaluator (one local worker) run back to back, so a slow spell of the
    machine hits all three; per-image CPU = the sums over all shards. JSON parsing and the index open happen once
    before timing (per-image cost only; the end-to-end runs include them)."""
    import pyspng
    from paperloom_coconut.panoptic import PanopticIndex
    from paperloom_coconut.pq import evaluate_folder, load_predictions

    gt = json.loads((root / "gt.json").read_text())
    cats = {c["id"]: c for c in gt["categories"]}
    index = PanopticIndex(root / "gt.json", root / "gt", cache_dir=root / "cache")
    preds = load_predictions(str(root / "pred.json"), str(root / "pred"))
    pairs = [(a, preds[a["image_id"]]) for a in gt["annotations"]]
    evaluate_folder(index, preds, str(root / "pred"), want_ap=False, limit=4)  # first-call costs out of the way
    cpu = {"floor": 0.0, "loop": 0.0, "ours": 0.0}
    clock = time.process_time
    for k in range(batches):
        mine = [p for i, p in enumerate(pairs) if i % batches == k]  # evaluate_folder's shard k of `batches`
        t = clock()
        for g, p in mine:
            pyspng.load((root / "gt" / g["file_name"]).read_bytes()), pyspng.load((root / "pred" / p["file_name"])
                                                                                  .read_bytes())
        cpu["floor"] += clock() - t
        t = clock()
        ref_single((mine, str(root / "gt"), str(root / "pred"), cats))
        cpu["loop"] += clock() - t
        t = clock()
        evaluate_folder(index, preds, str(root / "pred"), shard=(k, batches), want_ap=False)
        cpu["ours"] += clock() - t
    return {k: 1000 * v / len(pairs) for k, v in cpu.items()}


def compute_only(root: Path, k: int) -> dict:
    """Per-image compute with PNGs already decoded (decoding is common to both): the loop gets the id arrays it
    computes from the pixels, the plugin the pixels as its evaluator reads them (`read_pixels`)."""
    from paperloom_coconut.panoptic import read_pixels, rgb2id
    from paperloom_coconut.pq import Accumulator, Categories, image_stats

    gt = json.loads((root / "gt.json").read_text())
    pred = {a["image_id"]: a for a in json.loads((root / "pred.json").read_text())["annotations"]}
    cats = {c["id"]: c for c in gt["categories"]}
    data = [(read_pixels(root / "gt" / a["file_name"]), a,
             read_pixels(root / "pred" / pred[a["image_id"]]["file_name"]), pred[a["image_id"]])
            for a in gt["annotations"][:k]]
    stat = new_stat()
    table = Categories(gt["categories"])
    acc = Accumulator(gt["categories"])
    t_ref = t_ours = 0.0
    for g, ga, p, pa in data:  # interleaved, so load on a shared machine hits both alike
        g_ids, p_ids = rgb2id(g), rgb2id(p)
        t = time.perf_counter()
        ref_image(g_ids, ga, p_ids, pa, cats, stat)
        t_ref += time.perf_counter() - t
        t = time.perf_counter()
        acc.add(image_stats(g, ga["segments_info"], p, pa["segments_info"], table))
        t_ours += time.perf_counter() - t
    return {"images": len(data), "ref_s": t_ref, "ours_s": t_ours}


def conversions(root: Path, k: int) -> dict:
    """Instance-JSON conversion CPU per image (PNGs pre-decoded), interleaved: the plugin's exact converter vs
    straightforward per-instance pipelines: pycocotools RLE + area + box of `ids == id`, and contours as
    polygons from scikit-image (`find_contours`) and, when installed, OpenCV (`findContours`)."""
    from paperloom_coconut.convert import instance_annotations
    from paperloom_coconut.panoptic import read_ids
    from pycocotools import mask as mask_utils
    from skimage import measure

    tracers = {"skimage find_contours": lambda m: [np.fliplr(c).ravel().tolist() for c in
                                                   measure.find_contours(m, 0.5)]}
    try:
        import cv2

        cv2.setNumThreads(1)
        tracers["OpenCV findContours"] = lambda m: [
            c.ravel().tolist() for c in cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                                         cv2.CHAIN_APPROX_SIMPLE)[0] if len(c) >= 3]
    except ImportError:
        pass
    gt = json.loads((root / "gt.json").read_text())
    cats = {c["id"]: c for c in gt["categories"]}
    data = [(read_ids(root / "gt" / a["file_name"]), a["segments_info"]) for a in gt["annotations"][:k]]
    t_ours, t_base, n_inst = 0.0, dict.fromkeys(tracers, 0.0), 0
    instance_annotations(*data[0], cats, 0)  # warm up: the first call imports scipy.ndimage and pycocotools
    for ids, segs in data:
        t = time.process_time()
        n_inst += len(instance_annotations(ids, segs, cats, 0))
        t_ours += time.process_time() - t
        for name, contours in tracers.items():
            t = time.process_time()
            for s in segs:
                if cats[s["category_id"]]["isthing"]:
                    m = ids == s["id"]
                    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                    mask_utils.area(rle), mask_utils.toBbox(rle), contours(m)
            t_base[name] += time.process_time() - t
    return {"images": len(data), "instances": n_inst, "ours_s": t_ours, "base_s": t_base}


def timed(which: str, root: Path, processes: int) -> dict:
    """Each measurement in a fresh process, so peak memory is its own."""
    cmd = [sys.executable, __file__, "--child", which, "--root", str(root), "--processes", str(processes)]
    if which == "paperloom-coconut-ray":  # a local Ray cluster listens on every interface: loopback-only namespace
        cmd = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def index_open(n: int, tmp: Path) -> dict:
    """Time opening an n-image split: first open parses the JSON and writes the cache, later opens mmap it."""
    from paperloom_coconut.panoptic import PanopticIndex

    segs = [{"id": j + 1, "category_id": 1, "iscrowd": 0, "area": 100, "bbox": [0, 0, 10, 10]} for j in range(20)]
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "height": 480, "width": 640} for i in range(n)]
    anns = [{"image_id": i, "file_name": f"{i:012d}.png", "segments_info": segs} for i in range(n)]
    js = tmp / "big.json"
    js.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "isthing": 1}]}))
    (tmp / "png").mkdir(exist_ok=True)
    t = time.perf_counter()
    PanopticIndex(js, tmp / "png", cache_dir=tmp / "cache")
    first = time.perf_counter() - t
    t = time.perf_counter()
    ix = PanopticIndex(js, tmp / "png", cache_dir=tmp / "cache")
    ix.record(n - 1)
    again = time.perf_counter() - t
    return {"images": n, "json_mb": js.stat().st_size / 2**20, "first_open_s": first, "cached_open_s": again}


def _plugin_decoder() -> str:
    from paperloom_coconut import panoptic

    return "pyspng (libspng)" if panoptic._PYSPNG is not None else "PIL (pyspng not installed)"


def _kernel_method() -> str:
    try:
        from paperloom_coconut import _kernels
    except ImportError:
        return "not built (numpy paths)"
    return f"compiled, {_kernels.simd()} blocks"


def _mem(r: dict) -> str:
    w = r.get("worker_peak_rss_mb", 0)
    return f"{r['peak_rss_mb']:.0f} MB" + (f" + {w:.0f} MB" if w else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--processes", default="1,2")
    ap.add_argument("--index-images", type=int, default=0, help="also time opening a split of this many images")
    ap.add_argument("--root", default="")
    ap.add_argument("--ray", action="store_true", help="also run the evaluation on a local Ray cluster (2 CPUs) "
                    "in a loopback-only network namespace (needs ray, unshare, ip)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the one-process comparison")
    ap.add_argument("--child", default="")
    args = ap.parse_args()
    if args.child:
        return run_child(args.child, Path(args.root), int(args.processes))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root or tmp)
        if not (root / "gt.json").is_file():
            t = time.perf_counter()
            generate(root, args.images, args.height, args.width)
            print(f"generated {args.images} GT + prediction PNG pairs ({args.width}x{args.height}, 20-60 segments) "
                  f"in {time.perf_counter() - t:.0f}s", flush=True)
        n = len(json.loads((root / "pred.json").read_text())["annotations"])
        print(f"machine: {os.cpu_count()} CPU cores visible, load average {os.getloadavg()[0]:.1f}; "
              f"PNG decoder of the plugin: {_plugin_decoder()}; joint histogram: {_kernel_method()}\n")
        timed("paperloom-coconut", root, 1)  # builds the index cache once, so every timed run below finds it
        # one process: `rounds` interleaved rounds of (decode floor, loop, ours), each in a fresh process, so a
        # noisy neighbour hits all three alike; the goals are judged on the medians of the per-round ratios
        # (and 2 local workers in each round too, for the throughput ratio)
        rounds = [(timed("decode-floor", root, 1), timed("panopticapi-loop", root, 1),
                   timed("paperloom-coconut", root, 1), timed("paperloom-coconut", root, 2),
                   timed("machine-scaling", root, 1))
                  for _ in range(args.rounds)]
        floor, ref1, one, two_r1, _ = rounds[0]
        rows = [("1 local", 1, ref1, one)]
        for p in [int(x) for x in args.processes.split(",") if int(x) != 1]:
            ref, mine = timed("panopticapi-loop", root, p), (two_r1 if p == 2 else timed("paperloom-coconut", root, p))
            rows.append((f"{p} local", p, ref, mine))
        if args.ray:
            rows.append(("2 Ray (local cluster, 2 CPUs)", 2, None, timed("paperloom-coconut-ray", root, 2)))
        print("(end to end: reading + decoding both PNGs, evaluating, summing; CPU = user + sys of the run and its "
              "worker processes; page faults = minor faults)")
        print("| workers | panopticapi-style loop | paperloom-coconut | speed-up (wall) | CPU ms / image loop / ours "
              "| page faults loop / ours | peak RSS loop / ours | numbers |")
        print("|---|---|---|---|---|---|---|---|")
        bad = False
        for label, _, ref, mine in rows:
            if ref is None:
                print(f"| {label} | - | {n / mine['seconds']:.1f} img/s | - | - / {1000 * mine['cpu_s'] / n:.2f} "
                      f"(main) | - / {mine['minflt']} | - / {_mem(mine)} | - |")
                continue
            same = ref["counts"] == mine["counts"]
            diff = max(abs(ref["metrics"][k] - mine["metrics"][k]) for k in ref["metrics"])
            bad |= not same or diff >= 1e-12
            print(f"| {label} | {n / ref['seconds']:.1f} img/s | {n / mine['seconds']:.1f} img/s | "
                  f"{ref['seconds'] / mine['seconds']:.2f}x | "
                  f"{1000 * ref['cpu_s'] / n:.2f} / {1000 * mine['cpu_s'] / n:.2f} | "
                  f"{ref['minflt']} / {mine['minflt']} | {_mem(ref)} / {_mem(mine)} | "
                  f"{'identical' if same and diff < 1e-12 else 'DIFFERENT'} (max diff {diff:.1e}) |")
        one = rows[0][3]
        m1 = one["metrics"]
        print(f"\nPQ = {m1['pq']:.6f}  (SQ {m1['sq']:.6f}, RQ {m1['rq']:.6f}) on {n} images")
        print(f"\none process, CPU ms per image, {len(rounds)} interleaved rounds (decode floor = {floor['decoder']}, "
              "the fastest installed decoder reading the same two PNGs, nothing else):")
        print("| round | decode floor | panopticapi-style | ours | speed-up vs panopticapi | ours / floor | "
              "page faults ours |")
        print("|---|---|---|---|---|---|---|")
        speedups, vs_floor = [], []
        for k, (fl_r, ref_r, one_r, _, _) in enumerate(rounds):
            speedups.append(ref_r["cpu_s"] / one_r["cpu_s"])
            vs_floor.append(one_r["cpu_s"] / fl_r["cpu_s"])
            print(f"| {k + 1} | {1000 * fl_r['cpu_s'] / n:.2f} | {1000 * ref_r['cpu_s'] / n:.2f} | "
                  f"{1000 * one_r['cpu_s'] / n:.2f} | {speedups[-1]:.2f}x | {vs_floor[-1]:.2f} | {one_r['minflt']} |")
        print(f"median: {float(np.median(speedups)):.2f}x panopticapi's speed (goal >= 2x), ours / floor "
              f"{float(np.median(vs_floor)):.2f} (goal <= 1.3); decoders (round 1): "
              + ", ".join(f"{k} {1000 * v / n:.2f} ms" for k, v in floor["all"].items()))
        il = timed("interleaved", root, 1)
        print(f"interleaved in one process (10 shards, floor / loop / ours back to back per shard; per-image cost, "
              f"the JSON parsed before timing): floor {il['floor']:.2f} ms, loop {il['loop']:.2f} ms, ours "
              f"{il['ours']:.2f} ms -> {il['loop'] / il['ours']:.2f}x panopticapi's speed, ours / floor "
              f"{il['ours'] / il['floor']:.2f}")
        scaling = [one_r["seconds"] / two_r["seconds"] for _, _, one_r, two_r, _ in rounds]
        ceiling = [m["ratio"] for *_, m in rounds]
        print("2 local workers / 1 (wall, same rounds): " + ", ".join(f"{x:.2f}x" for x in scaling)
              + f"; median {float(np.median(scaling)):.2f}x the throughput (goal >= 1.7x on an idle machine); "
              "the machine's own ceiling (2 processes decoding half the PNGs each / 1 decoding all, same rounds): "
              + ", ".join(f"{x:.2f}x" for x in ceiling) + f"; median {float(np.median(ceiling)):.2f}x")
        if args.ray:
            print(f"Ray 2 CPUs / 1 local worker: {one['seconds'] / rows[-1][3]['seconds']:.2f}x the throughput "
                  "(goal >= 1: at least as fast; the cluster was started before timing)")
        c = compute_only(root, min(n, 300))
        print(f"\ncompute only (PNGs pre-decoded, {c['images']} images, 1 process): panopticapi-style "
              f"{c['images'] / c['ref_s']:.0f} img/s, ours {c['images'] / c['ours_s']:.0f} img/s, "
              f"{c['ref_s'] / c['ours_s']:.2f}x")
        cv = conversions(root, min(n, 200))
        print(f"\ninstance JSON, CPU per image (PNGs pre-decoded, {cv['images']} images, {cv['instances']} "
              f"instances): ours (exact polygons / RLE) {1000 * cv['ours_s'] / cv['images']:.2f} ms; per-instance "
              "pycocotools RLE + " + "; ".join(f"{k} {1000 * v / cv['images']:.2f} ms -> ours {v / cv['ours_s']:.2f}x"
                                             for k, v in cv["base_s"].items()) + " (goal >= 1.5x)")
        if args.index_images:
            r = index_open(args.index_images, root)
            print(f"\nlazy index: {r['images']} images ({r['json_mb']:.0f} MB JSON): "
                  f"first open {r['first_open_s']:.1f}s "
                  f"(parse + cache), later opens {r['cached_open_s'] * 1000:.0f} ms (memory-mapped)")
        if bad:
            sys.exit(1)


if __name__ == "__main__":
    main()
