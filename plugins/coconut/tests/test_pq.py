"""Fidelity of the PQ / mIoU / AP evaluator against a panopticapi-style reference and crafted cases."""

import json
import math

import numpy as np
import pytest
from paperloom_coconut.panoptic import id2rgb, rgb2id
from paperloom_coconut.pq import Accumulator, Categories, class_sums, grow, image_stats
from reference import new_stat, reference_average, reference_pq_image

from paperloom import UserError

CATS = [{"id": 1, "name": "a", "isthing": 1}, {"id": 2, "name": "b", "isthing": 1},
        {"id": 7, "name": "s", "isthing": 0}, {"id": 9, "name": "t", "isthing": 0}]


def random_panoptic(rng, h, w, k, allow_crowd=True, void=0.1):
    """A random blocky label map with k segments, random ids/categories, some VOID and crowd."""
    cells = rng.integers(0, k + 1, size=(h // 4 + 1, w // 4 + 1))
    lab = np.kron(cells, np.ones((4, 4), int))[:h, :w]
    lab[rng.random((h, w)) < void] = 0
    ids = rng.choice(np.arange(1, 1 << 24), size=k, replace=False)
    pan = np.where(lab > 0, ids[np.maximum(lab - 1, 0)], 0).astype(np.uint32)
    present = np.unique(pan)
    segs, crowded = [], set()
    for sid in ids:
        if sid not in present:
            continue
        cat = CATS[rng.integers(len(CATS))]
        crowd = int(allow_crowd and cat["isthing"] and rng.random() < 0.2 and cat["id"] not in crowded)
        crowded.add(cat["id"]) if crowd else None  # COCO: at most one crowd segment per class and image
        segs.append({"id": int(sid), "category_id": cat["id"], "iscrowd": crowd, "area": int((pan == sid).sum())})
    return pan, segs


def perturb(rng, pan, segs):
    """A prediction: the GT with blocks relabelled, some categories changed, no crowd flags."""
    pred = pan.copy()
    h, w = pan.shape
    for _ in range(rng.integers(1, 6)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        src = pan[rng.integers(0, h), rng.integers(0, w)]
        pred[y:y + rng.integers(2, 12), x:x + rng.integers(2, 12)] = src
    psegs = []
    for sid in np.unique(pred):
        if sid == 0:
            continue
        g = next(s for s in segs if s["id"] == sid)
        cat = g["category_id"] if rng.random() < 0.8 else CATS[rng.integers(len(CATS))]["id"]
        psegs.append({"id": int(sid), "category_id": cat, "iscrowd": 0})
    return pred, psegs


@pytest.mark.parametrize("seed,shape,k", [(0, (16, 16), 5), (1, (24, 40), 12), (2, (48, 32), 20), (3, (9, 13), 3),
                                          (4, (64, 64), 30)])
def test_pq_matches_panopticapi_reference(seed, shape, k):
    rng = np.random.default_rng(seed)
    cats = Categories(CATS)
    acc, ref = Accumulator(CATS), new_stat()
    for _ in range(6):
        gt, gsegs = random_panoptic(rng, *shape, k)
        pred, psegs = perturb(rng, gt, gsegs)
        acc.add(image_stats(gt, gsegs, pred, psegs, cats))
        reference_pq_image(gt, gsegs, pred, psegs, ref)
    per = acc.pq_per_class()
    for c in CATS:
        assert (per[c["id"]]["tp"], per[c["id"]]["fp"], per[c["id"]]["fn"]) == (
            ref[c["id"]]["tp"], ref[c["id"]]["fp"], ref[c["id"]]["fn"])
        assert math.isclose(acc.iou_sums()[cats.lut[c["id"]]], ref[c["id"]]["iou"], rel_tol=1e-12, abs_tol=1e-12)
    m = acc.pq()
    for key, thing in (("", None), ("_th", True), ("_st", False)):
        ours = [m["pq" + key], m["sq" + key], m["rq" + key]]
        assert np.allclose(ours, reference_average(ref, CATS, thing), atol=1e-12)


def test_pq_equals_sq_times_rq_per_class():
    rng = np.random.default_rng(5)
    acc = Accumulator(CATS)
    for _ in range(5):
        gt, gsegs = random_panoptic(rng, 32, 32, 10)
        pred, psegs = perturb(rng, gt, gsegs)
        acc.add(image_stats(gt, gsegs, pred, psegs, Categories(CATS)))
    for r in acc.pq_per_class().values():
        assert math.isclose(r["pq"], r["sq"] * r["rq"], rel_tol=1e-12, abs_tol=1e-15)


def _one(gt, gsegs, pred, psegs):
    acc = Accumulator(CATS)
    acc.add(image_stats(np.asarray(gt, np.uint32), gsegs, np.asarray(pred, np.uint32), psegs, Categories(CATS)))
    return acc.pq_per_class()


def test_iou_exactly_half_is_not_a_match():
    gt = np.zeros((4, 10), int)
    gt[:, :5] = 5  # 20 px
    pred = np.zeros((4, 10), int)
    pred[:, :5] = 6  # pred = gt (20 px) plus 20 px where the GT is another segment -> IoU = 20 / 40
    pred[:, 5:] = 6
    gt[:, 5:] = 8
    per = _one(gt, [{"id": 5, "category_id": 1, "iscrowd": 0, "area": 20}, {"id": 8, "category_id": 7, "iscrowd": 0,
                                                                           "area": 20}],
               pred, [{"id": 6, "category_id": 1, "iscrowd": 0}])
    assert (per[1]["tp"], per[1]["fp"], per[1]["fn"]) == (0, 1, 1)
    assert per[1]["pq"] == 0.0


def test_void_overlap_leaves_the_union():
    gt = np.zeros((4, 10), int)
    gt[:, :5] = 5  # 20 px of GT, the rest VOID
    pred = np.zeros((4, 10), int)
    pred[:, 2:10] = 6  # 12 px on the GT, 20 px on VOID: IoU = 12 / (32 + 20 - 12 - 20) = 0.6
    per = _one(gt, [{"id": 5, "category_id": 1, "iscrowd": 0, "area": 20}], pred, [{"id": 6, "category_id": 1}])
    assert (per[1]["tp"], per[1]["fp"], per[1]["fn"]) == (1, 0, 0)
    assert math.isclose(per[1]["pq"], 0.6) and math.isclose(per[1]["sq"], 0.6) and per[1]["rq"] == 1.0


def test_unmatched_predictions_on_void_or_crowd_are_not_false_positives():
    gt = np.zeros((10, 10), int)
    gt[:5, :] = 3  # crowd of category 2 (top half), bottom half VOID
    segs = [{"id": 3, "category_id": 2, "iscrowd": 1, "area": 50}]
    on_crowd = np.zeros((10, 10), int)
    on_crowd[2:5, :] = 4  # 30 px on crowd, 20 px on VOID below -> 100% ignored
    on_crowd[5:7, :] = 4
    per = _one(gt, segs, on_crowd, [{"id": 4, "category_id": 2}])
    assert (per[2]["tp"], per[2]["fp"], per[2]["fn"]) == (0, 0, 0)  # crowd never counts as FN either
    per = _one(gt, segs, on_crowd, [{"id": 4, "category_id": 1}])  # other class: only VOID counts (20/50)
    assert per[1]["fp"] == 1
    mostly_void = np.zeros((10, 10), int)
    mostly_void[4:10, :] = 4  # 10 px on crowd (category 1 pred: not its crowd), 50 px VOID -> 50/60 > 0.5
    assert _one(gt, segs, mostly_void, [{"id": 4, "category_id": 1}])[1]["fp"] == 0


@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_the_last_crowd_segment_of_a_class_is_the_one_that_excuses(backend):
    """panopticapi keeps one crowd segment per class ({category: id}, the last listed wins): a prediction lying on
    the last one is not a FP, one lying on an earlier crowd segment of the same class is."""
    gt = np.zeros((4, 8), np.uint32)
    gt[:, :4], gt[:, 4:] = 1, 2  # two crowd segments of category 1, segment 2 listed last
    segs = [{"id": 1, "category_id": 1, "iscrowd": 1, "area": 16}, {"id": 2, "category_id": 1, "iscrowd": 1,
                                                                       "area": 16}]
    cats = Categories(CATS)
    on_last, on_first = np.where(gt == 2, 9, 0).astype(np.uint32), np.where(gt == 1, 9, 0).astype(np.uint32)
    assert len(image_stats(gt, segs, on_last, [{"id": 9, "category_id": 1}], cats, backend=backend)["fp"]) == 0
    assert len(image_stats(gt, segs, on_first, [{"id": 9, "category_id": 1}], cats, backend=backend)["fp"]) == 1


def test_ground_truth_as_prediction_is_perfect():
    rng = np.random.default_rng(9)
    acc = Accumulator(CATS)
    for i in range(4):
        gt, gsegs = random_panoptic(rng, 40, 40, 12)
        acc.add(image_stats(gt, gsegs, gt, [dict(s) for s in gsegs], Categories(CATS), want_ap=True, image_id=i))
    m = acc.metrics()
    assert m["pq"] == 1.0 and m["sq"] == 1.0 and m["rq"] == 1.0 and m["miou"] == 1.0
    assert m["ap"] == pytest.approx(1.0) and m["box_ap"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed,shape", [(0, (7, 5)), (1, (64, 48)), (2, (1, 300))])
def test_rgb_id_roundtrip(seed, shape):
    ids = np.random.default_rng(seed).integers(0, 1 << 24, size=shape)
    assert np.array_equal(rgb2id(id2rgb(ids)), ids)
    rgb = np.random.default_rng(seed).integers(0, 256, size=(*shape, 3)).astype(np.uint8)
    assert np.array_equal(id2rgb(rgb2id(rgb)), rgb)


def test_exact_sums_are_order_independent():
    vals = np.random.default_rng(0).random(2000).tolist()
    a, b = [], []
    for v in vals:
        grow(a, v)
    for v in reversed(vals):
        grow(b, v)
    assert math.fsum(a) == math.fsum(b) == math.fsum(vals)


@pytest.mark.parametrize("n, classes, low", [(2000, 3, 0.5), (50, 7, 0.5), (3000, 2, 0.5), (300, 7, 0.0)])
def test_class_sums_are_exact(n, classes, low):
    """Per-class sums as integer counts of 2^-53 (IoUs in [0.5, 1], < 1024 a class) or, for other values or more
    of them, by float expansions: either way math.fsum of the terms is that of the values."""
    rng = np.random.default_rng(n)
    cat = rng.integers(0, classes, n)
    iou = np.where(rng.random(n) < 0.05, 1.0, rng.uniform(low, 1.0, n))
    if low:
        iou[0] = 0.5
        iou[1] = np.nextafter(0.5, 1)
    got = dict(class_sums(cat, iou))
    assert sorted(got) == sorted(set(cat.tolist()))
    for k, terms in got.items():
        assert math.fsum(terms) == math.fsum(iou[cat == k].tolist())
    assert class_sums(cat[:0], iou[:0]) == []


def pair_counts_loop(gt, g_id, pred, p_id):
    """Eq. 1's intersections by a plain loop over pixels: a dict of (GT label, prediction label) -> count."""
    g_lab = {int(s): j + 1 for j, s in enumerate(g_id)}
    p_lab = {int(s): j + 1 for j, s in enumerate(p_id)}
    out = {}
    for a, b in zip((gt & 0xFFFFFF).ravel().tolist(), (pred & 0xFFFFFF).ravel().tolist()):
        key = (g_lab.get(a, len(g_id) + 1) if a else 0, p_lab[b] if b else 0)
        out[key] = out.get(key, 0) + 1
    return out


def kernel_built() -> bool:
    """The C kernel must be there wherever a compiler was (setuptools builds it as an optional extension)."""
    import shutil
    import sysconfig

    from paperloom_coconut import pq

    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    assert pq._KERNEL is not None or shutil.which(cc) is None, "a C compiler exists but the kernel was not built"
    return pq._KERNEL is not None


def as_rgba(rng, ids):
    """A PNG's RGBA pixels of ids, with random alpha bytes (which carry no id)."""
    return np.concatenate([id2rgb(ids), rng.integers(0, 256, (*ids.shape, 1)).astype(np.uint8)], axis=2)


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("seed,form,shape", [(0, "words", (37, 53)), (1, "rgb", (37, 53)), (2, "rgb+rgba", (37, 53)),
                                             (3, "rgba", (37, 53)), (4, "rgb", (5, 13)), (5, "rgb", (64, 97))])
def test_joint_histogram_equals_a_pixel_loop(backend, seed, form, shape):
    """Both implementations against the loop, on uint32 id words with random high bytes, RGB and RGBA pixels
    (alpha ignored) and a mix, with GT ids the JSON lacks (the orphan row), long runs and single pixels; label
    maps too. Shapes: 64-pixel blocks with a tail, exactly one block after the first pixel (5 x 13), many."""
    from paperloom_coconut.pq import joint_histogram

    if backend == "c" and not kernel_built():
        pytest.skip("no C compiler: the numpy path is the one in use")
    rng = np.random.default_rng(seed)
    pan, segs = random_panoptic(rng, *shape, 9, void=0.2)
    pred, psegs = perturb(rng, pan, segs)
    g_id = [s["id"] for s in segs][:-1]  # the last listed GT segment becomes unlisted: orphan pixels
    p_id = [s["id"] for s in psegs]
    forms = {"words": lambda a: a | (rng.integers(0, 256, a.shape).astype(np.uint32) << 24), "rgb": id2rgb,
             "rgba": lambda a: as_rgba(rng, a)}
    g_form, p_form = (form.split("+") * 2)[:2]
    gt_in, pred_in = forms[g_form](pan), forms[p_form](pred)
    counts, gl, pl = joint_histogram(gt_in, g_id, pred_in, p_id, labels=True, backend=backend)
    want = pair_counts_loop(pan, g_id, pred, p_id)
    got = {(int(a), int(b)): int(counts[a, b]) for a, b in zip(*np.nonzero(counts))}
    assert counts.shape == (len(g_id) + 2, len(p_id) + 1) and got == want
    assert counts[-1].sum() > 0  # the case is exercised: unlisted GT pixels exist
    assert gl.dtype == np.int16 and int((gl == len(g_id) + 1).sum()) == int(counts[-1].sum())
    np.testing.assert_array_equal(np.bincount((gl.astype(np.int64) * (len(p_id) + 1) + pl).ravel(),
                                              minlength=counts.size), counts.ravel())
    no_labels, none_g, none_p = joint_histogram(gt_in, g_id, pred_in, p_id, backend=backend)  # (RGB: 64-pixel blocks)
    assert none_g is None and none_p is None and np.array_equal(no_labels, counts)
    with pytest.raises(UserError, match=f"segment id {p_id[0]} is in the PNG but not in the JSON"):
        joint_histogram(gt_in, g_id, pred_in, p_id[1:], backend=backend)


@pytest.mark.parametrize("k,shape", [(9, (37, 53)), (40, (64, 97)), (300, (64, 97)), (3, (1, 64)), (3, (1, 66))])
def test_every_simd_method_counts_the_same(k, shape):
    """The RGB block paths (SSE2's table, AVX2 + PEXT where the machine has it fast) against the loop: few ids,
    many (300: hundreds of pairs, some sharing a slot of the pair cache), rows of exactly 64 and 66 pixels (block
    edges)."""
    from paperloom_coconut.pq import joint_histogram

    if not kernel_built():
        pytest.skip("no C compiler: the numpy path is the one in use")
    from paperloom_coconut import _kernels

    default = _kernels.simd()
    methods = {"avx2": ["sse2", "avx2"], "sse2": ["sse2"], "none": ["none"]}[default]
    rng = np.random.default_rng(k)
    pan, segs = random_panoptic(rng, *shape, k, void=0.2)
    pred, psegs = perturb(rng, pan, segs)
    g_id, p_id = [s["id"] for s in segs][:-1], [s["id"] for s in psegs]
    want = pair_counts_loop(pan, g_id, pred, p_id)
    try:
        for method in methods:
            _kernels.simd(method)
            counts, _, _ = joint_histogram(id2rgb(pan), g_id, id2rgb(pred), p_id, backend="c")
            assert {(int(a), int(b)): int(counts[a, b]) for a, b in zip(*np.nonzero(counts))} == want, method
            with pytest.raises(UserError, match=f"segment id {p_id[-1]} is in the PNG but not in the JSON"):
                joint_histogram(id2rgb(pan), g_id, id2rgb(pred), p_id[:-1], backend="c")
    finally:
        _kernels.simd(default)
    with pytest.raises(ValueError, match="not available"):
        _kernels.simd("mmx")


def test_pairs_that_share_a_cache_slot_are_told_apart():
    """Runs alternating between two (GT id, prediction id) pairs that fall in one slot of the kernel's pair cache
    (_kernels.c: key = gid | pid << 24, Fibonacci hash to 11 bits): every run must land in its own bin."""
    from paperloom_coconut.pq import joint_histogram

    if not kernel_built():
        pytest.skip("no C compiler: the numpy path is the one in use")

    def slot(gid, pid):
        return ((gid | pid << 24) * 0x9E3779B97F4A7C15) % 2**64 >> 53

    a = 12345
    b = next(i for i in range(a + 1, 1 << 24) if slot(a, i) == slot(a, a))
    gt = np.full((2, 200), a, np.uint32)
    pred = np.where((np.arange(200) // 7) % 2 == 0, a, b)[None].repeat(2, 0).astype(np.uint32)
    pred[1, :5] = 0
    counts, _, _ = joint_histogram(id2rgb(gt), [a], id2rgb(pred), [a, b], backend="c")
    n_b = int((pred == b).sum())
    # rows: VOID, a, unlisted; columns: VOID, a, b
    assert counts.tolist() == [[0, 0, 0], [5, 400 - 5 - n_b, n_b], [0, 0, 0]]


def _same_stats(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a["odd"] == b["odd"] and a["shape"] == b["shape"]
    for k in ("tp_cat", "tp_iou", "fp", "fn"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # the same IoU bits, the same order
    for x, y in zip(a["conf"] + a["matches"], b["conf"] + b["matches"]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("seed", range(6))
def test_compiled_matching_equals_the_numpy_matching(seed):
    """image_stats with the compiled histogram + matching equals the numpy path exactly, on random pairs with
    crowd, VOID, GT segments absent from the PNG, unlisted GT ids, JSON areas that disagree with the pixels (IoU
    above 1 or a union of 0 included), and a prediction without segments."""
    if not kernel_built():
        pytest.skip("no C compiler: the numpy path is the one in use")
    rng = np.random.default_rng(100 + seed)
    cats = Categories(CATS)
    for trial in range(12):
        pan, segs = random_panoptic(rng, int(rng.integers(8, 40)), int(rng.integers(8, 40)), int(rng.integers(1, 14)))
        pred, psegs = perturb(rng, pan, segs)
        segs = [dict(s) for s in segs]
        for s in segs:
            if rng.random() < 0.3:
                s["area"] = int(rng.integers(0, 3 * s["area"] + 2))  # wrong JSON areas: union may be 0 or tiny
        if rng.random() < 0.3:
            segs.append({"id": int(rng.integers(1 << 23, 1 << 24)), "category_id": 1, "iscrowd": 0, "area": 5})
        if segs and rng.random() < 0.3:
            segs = segs[1:]  # its pixels become unlisted GT ids
        if trial == 0:
            pred, psegs = np.zeros_like(pan), []
        a = image_stats(pan, segs, pred, psegs, cats, where="x", backend="numpy")
        b = image_stats(pan, segs, pred, psegs, cats, where="x")
        _same_stats(a, b)


def test_errors_name_the_problem():
    cats = Categories(CATS)
    gt = np.array([[5, 5], [0, 7]], np.uint32)
    with pytest.raises(UserError, match="segment id 7 is in the PNG but not in the JSON"):  # prediction side
        image_stats(gt, [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 7}], gt, [{"id": 5, "category_id": 1}],
                    cats)
    with pytest.raises(UserError, match="segment id 9 is in the JSON segments_info but not in the PNG"):
        image_stats(gt, [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 7}], gt,
                    [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 1}, {"id": 9, "category_id": 1}], cats)
    with pytest.raises(UserError, match="category_id 42"):  # an unknown predicted class: panopticapi raises too
        image_stats(gt, [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 7}], gt,
                    [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 42}], cats)
    with pytest.raises(UserError, match="must have the image's size"):
        image_stats(gt, [], np.zeros((3, 2), np.uint32), [], cats)
    with pytest.raises(UserError, match="category 3 .* has no 'isthing'"):  # panopticapi raises KeyError
        Categories([{"id": 3, "name": "x"}])


# A hand-computed image for the inputs panopticapi evaluates although they are inconsistent (issue 13):
# GT id 5 (class 1, 3 px) and id 8 (4 px, absent from segments_info), one VOID pixel; the prediction copies
# segment 5 exactly and puts segment 6 (class 1, 5 px) over the VOID pixel and all of id 8.
ODD_GT = np.array([[5, 5, 8, 8], [5, 0, 8, 8]], np.uint32)
ODD_PRED = np.array([[5, 5, 6, 6], [5, 6, 6, 6]], np.uint32)
ODD_PSEGS = [{"id": 5, "category_id": 1}, {"id": 6, "category_id": 1}]
GT5 = {"id": 5, "category_id": 1, "iscrowd": 0, "area": 3}


@pytest.mark.parametrize("case,gsegs,psegs,odd,want", [
    # id 8 unlisted: its pixels are not VOID, so 6 lies only 1/5 on VOID and is a FP: PQ = 1 / (1 + 1/2)
    ("unlisted GT id", [GT5], ODD_PSEGS, "gt_id_not_in_json", (1, 1, 0)),
    # the same pixels under an unknown class: never matched, averaged nowhere, not VOID: the same numbers
    ("unknown GT class", [GT5, {"id": 8, "category_id": 42, "iscrowd": 0, "area": 4}], ODD_PSEGS,
     "gt_unknown_category", (1, 1, 0)),
    # a listed GT segment with no pixel is a FN: PQ = 1 / (1 + 1/2 + 1/2)
    ("GT segment not in PNG", [GT5, {"id": 8, "category_id": 7, "iscrowd": 0, "area": 4},
                               {"id": 9, "category_id": 1, "iscrowd": 0, "area": 10}], ODD_PSEGS,
     "gt_segment_not_in_png", (1, 1, 1)),
    # a repeated prediction id: the last entry counts (class 1), so it matches as in the first case
    ("duplicate prediction id", [GT5], [{"id": 5, "category_id": 2}, *ODD_PSEGS], "pred_duplicate_id", (1, 1, 0)),
    ("duplicate GT id", [{**GT5, "category_id": 2}, GT5], ODD_PSEGS, "gt_duplicate_id", (1, 1, 0)),
])
def test_odd_inputs_are_evaluated_as_panopticapi_does(case, gsegs, psegs, odd, want):
    cats = Categories(CATS)
    acc, ref = Accumulator(CATS), new_stat()
    acc.add(image_stats(ODD_GT, gsegs, ODD_PRED, psegs, cats, image_id=3, where="image 3"))
    reference_pq_image(ODD_GT, gsegs, ODD_PRED, psegs, ref)
    row = acc.pq_per_class()[1]
    assert (row["tp"], row["fp"], row["fn"]) == want == (ref[1]["tp"], ref[1]["fp"], ref[1]["fn"])
    assert row["pq"] == pytest.approx(1.0 / (want[0] + 0.5 * want[1] + 0.5 * want[2]))
    assert acc.pq()["pq"] == pytest.approx(reference_average(ref, CATS)[0])
    assert acc.odd[odd][0] == 1 and "image 3" in acc.odd[odd][1], acc.odd
    assert set(acc.odd) <= {odd, "gt_id_not_in_json"}  # the duplicate cases keep id 8 unlisted
    assert acc.metrics()[f"odd_{odd}"] == 1
    from paperloom_coconut.pq import odd_warnings

    lines = odd_warnings(acc.odd)
    assert len(lines) == len(acc.odd) and all("as panopticapi does" in x and "strict=true" in x for x in lines)
    with pytest.raises(UserError, match="image 3.*set strict=false"):
        image_stats(ODD_GT, gsegs, ODD_PRED, psegs, cats, image_id=3, where="image 3", strict=True)


def test_oddities_survive_shard_files_and_merges():
    cats = Categories(CATS)
    a, b = Accumulator(CATS), Accumulator(CATS)
    a.add(image_stats(ODD_GT, [GT5], ODD_PRED, ODD_PSEGS, cats, where="image 1"))
    b.add(image_stats(ODD_GT, [GT5], ODD_PRED, ODD_PSEGS, cats, where="image 2"))
    back = Accumulator.from_json(json.loads(json.dumps(b.to_json())))
    a.merge(back)
    assert a.odd == {"gt_id_not_in_json": [2, "image 1 (ground truth) id 8"]}


def test_shard_spec(monkeypatch):
    from paperloom_coconut.pq import parse_shard

    assert parse_shard("2/5") == (2, 5)
    for var in ("RANK", "WORLD_SIZE", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    assert parse_shard("auto") == (0, 1)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    assert parse_shard("auto") == (3, 8)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert parse_shard("auto") == (1, 4)  # torch.distributed / Lightning ranks first
    for bad in ("5/4", "x", "1/0"):
        with pytest.raises(UserError, match="shard"):
            parse_shard(bad)


@pytest.mark.parametrize("n,workers", [(0, 2), (3, 2), (500, 2), (500, 1), (1000, 4), (33, 8)])
def test_task_sizes_cover_every_image_and_shrink_at_the_end(n, workers):
    from paperloom_coconut.pq import CHUNK, chunk_sizes

    sizes = chunk_sizes(n, workers)
    assert sum(sizes) == n and all(1 <= s <= CHUNK for s in sizes)
    assert sizes == sorted(sizes, reverse=True)
    if workers == 1:  # one process: no one to wait for, full tasks
        assert sizes == [CHUNK] * (n // CHUNK) + ([n % CHUNK] if n % CHUNK else [])
    elif n >= 2 * workers * CHUNK:  # guided: the last task is small, and so is every one of the last `workers`
        assert sizes[0] == CHUNK and max(sizes[-workers:]) <= 4
