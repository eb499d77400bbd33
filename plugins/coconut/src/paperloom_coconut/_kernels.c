/* Two compiled kernels of the plugin (built at install as an optional extension; numpy paths give the same
 * results where no C compiler is available, and tests compare the two):
 *
 * 1. joint_histogram (pq.joint_histogram), and match_segments (1c) on its result.
 * The joint histogram of (ground-truth segment, predicted segment) pixel pairs in one pass over two
 * decoded id PNGs: what pq.image_stats needs from the pixels (Kirillov et al., Eq. 1: every intersection,
 * the prediction's VOID overlap and the areas are its entries). The numpy path does the same in about ten
 * passes (id words, two table gathers, two checks, a multiply-add, a bincount); this reads each byte once.
 *
 * joint_histogram(gt, pred, stride, gt_ids, pred_ids, counts, gt_labels=None, pred_labels=None)
 *   gt, pred     pixels as bytes, `stride` (3 or 4) per pixel: R, G, B (id = R + 256 G + 256^2 B), then
 *                anything (a PNG's alpha, the high byte of a uint32 id word): ignored
 *   gt_ids, pred_ids   int64 segment ids (unique, 1..2^24-1) of segments_info: label = position + 1
 *   counts       int64[(len(gt_ids) + 2) * (len(pred_ids) + 1)], zeroed by the caller, incremented here: row 0 /
 *                column 0 = VOID, row len(gt_ids) + 1 = GT pixels with an id gt_ids lacks
 *   gt_labels, pred_labels   optional int16 outputs: the label of every pixel
 * returns the first nonzero prediction id (raster order) pred_ids lacks, or 0; its pixels count as VOID.
 * Ids map to labels through a small open-addressing hash table (a few KB, in L1): a direct 2^24-entry table
 * costs a page fault per new page touched, which on a virtual machine made it slower than the counting. The RGB
 * path looks each run's (GT id, prediction id) pair up in a 32 KB pair -> bin cache first (one probe, no label
 * arithmetic): -30% kernel time on the benchmark's images (~27K runs of ~300 distinct pairs each).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && PY_LITTLE_ENDIAN && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#endif

#define ID_MASK 0xFFFFFFu

/* id -> labels (GT label in the low 16 bits, prediction label in the high 16); key 0 marks an empty slot, so
 * VOID (id 0) finds an empty slot and gets the labels 0 without a special case. */
typedef struct {
    uint32_t *keys, *labels, mask;
    int shift;
} id_labels;

#define HASH_MULTIPLIER 2654435761u /* Knuth's multiplicative hash */

static inline uint32_t labels_of(const id_labels *h, uint32_t id) {
    for (uint32_t k = (id * HASH_MULTIPLIER) >> h->shift;; k = (k + 1) & h->mask) {
        uint32_t key = h->keys[k];
        if (key == id || key == 0) return h->labels[k];
    }
}

/* Fill h with ids (label = position + 1) into the low (shift 0) or high (16) half; -1 on a bad or repeated id. */
static int add_ids(id_labels *h, const int64_t *ids, Py_ssize_t n, int half) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ids[i] <= 0 || ids[i] > (int64_t)ID_MASK) return -1;
        uint32_t id = (uint32_t)ids[i], k = (id * HASH_MULTIPLIER) >> h->shift;
        while (h->keys[k] != id && h->keys[k] != 0) k = (k + 1) & h->mask;
        if (h->keys[k] == id && (h->labels[k] >> half) & 0xFFFF) return -1;
        h->keys[k] = id;
        h->labels[k] |= (uint32_t)(i + 1) << half;
    }
    return 0;
}

static int writable_of(PyObject *obj, Py_buffer *view, Py_ssize_t n, const char *name) {
    if (obj == Py_None) {
        view->buf = NULL;
        return 0;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len != n * 2) {
        PyErr_Format(PyExc_ValueError, "%s must hold one int16 per pixel", name);
        PyBuffer_Release(view);
        view->buf = NULL;
        return -1;
    }
    return 0;
}

static inline uint64_t load64(const uint8_t *x) {
    uint64_t v;
    memcpy(&v, x, 8); /* an unaligned load */
    return v;
}

/* The index of the lowest nonzero byte of a nonzero word: memory order on a little-endian machine. */
static inline Py_ssize_t first_set_byte(uint64_t x) {
#if PY_LITTLE_ENDIAN && (defined(__GNUC__) || defined(__clang__))
    return __builtin_ctzll(x) >> 3;
#else
    unsigned char bytes[8];
    memcpy(bytes, &x, 8);
    Py_ssize_t k = 0;
    while (!bytes[k]) k++;
    return k;
#endif
}

/* Segments are long runs along a row: look a run's labels up once and add its length to one bin. A run of
 * identical pixels is a stretch where every byte equals the one a pixel (`stride` bytes) before it, in both
 * images: 8 bytes are compared at a time. Inlined for each constant stride (a division by a variable costs
 * more than the rest of a short run). */
static inline uint32_t count_runs(const uint8_t *g, const uint8_t *p, const Py_ssize_t stride, Py_ssize_t n,
                                  const id_labels *t, Py_ssize_t cols, Py_ssize_t orphan, int64_t *c, int16_t *glo,
                                  int16_t *plo) {
    uint32_t unknown = 0;
    const Py_ssize_t nbytes = n * stride;
    Py_ssize_t i = 0;
    while (i < n) {
        const uint8_t *gi = g + i * stride, *pi = p + i * stride;
        uint32_t gid = gi[0] | (uint32_t)gi[1] << 8 | (uint32_t)gi[2] << 16;
        uint32_t pid = pi[0] | (uint32_t)pi[1] << 8 | (uint32_t)pi[2] << 16;
        Py_ssize_t a = labels_of(t, gid) & 0xFFFF, b = labels_of(t, pid) >> 16;
        if (!a && gid) a = orphan;
        if (!b && pid && !unknown) unknown = pid;
        Py_ssize_t j = (i + 1) * stride; /* first byte not yet known to repeat */
        for (;;) {
            if (j + 8 > nbytes) {
                while (j < nbytes && g[j] == g[j - stride] && p[j] == p[j - stride]) j++;
                break;
            }
            uint64_t diff = (load64(g + j) ^ load64(g + j - stride)) | (load64(p + j) ^ load64(p + j - stride));
            if (diff) {
                j += first_set_byte(diff);
                break;
            }
            j += 8;
        }
        Py_ssize_t end = j / stride; /* the pixel holding the first differing byte starts the next run */
        c[a * cols + b] += end - i;
        if (glo)
            for (Py_ssize_t k = i; k < end; k++) glo[k] = (int16_t)a;
        if (plo)
            for (Py_ssize_t k = i; k < end; k++) plo[k] = (int16_t)b;
        i = end;
    }
    return unknown;
}

#if defined(__SSE2__) && PY_LITTLE_ENDIAN && (defined(__GNUC__) || defined(__clang__))
#define RGB_BLOCKS 1
/* The same count for RGB pixels (3 bytes), without label maps, 64 pixels at a time: compare every byte with the
 * one a pixel before in both images (SIMD), turn that byte mask into a 64-bit mask of repeating pixels, and
 * visit only the run starts (its zero bits): one unpredictable branch per 64 pixels instead of one per run.
 * Two ways to the pixel mask, chosen when the module loads (`simd`): SSE2 with a 4096-entry table for each 12
 * bytes -> 4 pixels, or AVX2 compares with BMI2's PEXT picking every third bit (one instruction for 16 pixels
 * instead of 4 table reads; PEXT is slow on AMD before Zen 3, which keep SSE2). */
static uint8_t PIXELS_OF_12_BYTES[4096]; /* bit k: bytes 3k, 3k + 1, 3k + 2 all repeat */

static void init_pixel_table(void) {
    for (unsigned x = 0; x < 4096; x++) {
        uint8_t v = 0;
        for (unsigned k = 0; k < 4; k++) v |= (((x >> (3 * k)) & 7) == 7) << k;
        PIXELS_OF_12_BYTES[x] = v;
    }
}

static inline unsigned repeat_bytes16(const uint8_t *g, const uint8_t *p) {
    __m128i eg = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)g), _mm_loadu_si128((const __m128i *)(g - 3)));
    __m128i ep = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), _mm_loadu_si128((const __m128i *)(p - 3)));
    return (unsigned)_mm_movemask_epi8(_mm_and_si128(eg, ep));
}

/* bit k set: pixel k of the 64 from gb / pb on equals the one before it in both images */
static inline uint64_t repeats_sse2(const uint8_t *gb, const uint8_t *pb) {
    uint64_t same = 0;
    for (int q = 0; q < 4; q++) { /* 16 pixels = 48 bytes = 3 compares, 4 table reads */
        uint64_t bytes = repeat_bytes16(gb + 48 * q, pb + 48 * q) |
                         (uint64_t)repeat_bytes16(gb + 48 * q + 16, pb + 48 * q + 16) << 16 |
                         (uint64_t)repeat_bytes16(gb + 48 * q + 32, pb + 48 * q + 32) << 32;
        uint64_t px = PIXELS_OF_12_BYTES[bytes & 4095] | PIXELS_OF_12_BYTES[(bytes >> 12) & 4095] << 4 |
                      PIXELS_OF_12_BYTES[(bytes >> 24) & 4095] << 8 | PIXELS_OF_12_BYTES[(bytes >> 36) & 4095] << 12;
        same |= px << (16 * q);
    }
    return same;
}

#define AVX2_BMI2 __attribute__((target("avx2,bmi2")))

AVX2_BMI2 static inline uint64_t repeat_bytes32(const uint8_t *g, const uint8_t *p) {
    __m256i eg = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)g),
                                   _mm256_loadu_si256((const __m256i *)(g - 3)));
    __m256i ep = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)p),
                                   _mm256_loadu_si256((const __m256i *)(p - 3)));
    return (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(eg, ep));
}

AVX2_BMI2 static inline uint64_t pixels_of_48_bytes(uint64_t bytes) { /* 16 pixel bits */
    return _pext_u64(bytes & bytes >> 1 & bytes >> 2, 0x249249249249ull); /* bit 3k: all three bytes repeat */
}

AVX2_BMI2 static inline uint64_t repeats_avx2(const uint8_t *gb, const uint8_t *pb) {
    const uint64_t m48 = (1ull << 48) - 1; /* 192 bytes as 6 x 32 = 4 x 48 bits */
    uint64_t w0 = repeat_bytes32(gb, pb) | repeat_bytes32(gb + 32, pb + 32) << 32;
    uint64_t w1 = repeat_bytes32(gb + 64, pb + 64) | repeat_bytes32(gb + 96, pb + 96) << 32;
    uint64_t w2 = repeat_bytes32(gb + 128, pb + 128) | repeat_bytes32(gb + 160, pb + 160) << 32;
    return pixels_of_48_bytes(w0 & m48) | pixels_of_48_bytes((w0 >> 48 | w1 << 16) & m48) << 16 |
           pixels_of_48_bytes((w1 >> 32 | w2 << 32) & m48) << 32 | pixels_of_48_bytes(w2 >> 16) << 48;
}

static inline uint32_t load32(const uint8_t *x) {
    uint32_t v;
    memcpy(&v, x, 4);
    return v;
}

/* Runs repeat a few hundred (GT id, prediction id) pairs: a direct-mapped cache from the pair to its bin saves
 * the two id lookups, the label arithmetic and its checks on all but a pair's first run (or after a conflict). */
typedef struct {
    uint64_t key; /* gid | pid << 24, all ones when empty */
    int64_t bin;
} pair_bin;

#define PAIR_BITS 11 /* 2048 entries, 32 KB */

static inline uint64_t pair_slot(uint64_t key) { return (key * 0x9E3779B97F4A7C15ull) >> (64 - PAIR_BITS); }

static Py_ssize_t bin_of(const id_labels *t, uint32_t gid, uint32_t pid, Py_ssize_t cols, Py_ssize_t orphan,
                         uint32_t *unknown) {
    Py_ssize_t a = labels_of(t, gid) & 0xFFFF, b = labels_of(t, pid) >> 16;
    if (!a && gid) a = orphan;
    if (!b && pid && !*unknown) *unknown = pid;
    return a * cols + b;
}

/* A run starts at pixel pos (>= 1): its pair from the 4 bytes ending with each pixel (one load each, never past
 * the buffer), the previous run's length added to that run's bin. */
#define RUN_AT(pos)                                                                                            \
    do {                                                                                                       \
        uint64_t key = load32(g + 3 * (pos) - 1) >> 8 | (uint64_t)(load32(p + 3 * (pos) - 1) >> 8) << 24;     \
        pair_bin *e = &pairs[pair_slot(key)];                                                                  \
        if (__builtin_expect(e->key != key, 0))                                                                \
            e->key = key, e->bin = bin_of(t, (uint32_t)key & ID_MASK, (uint32_t)(key >> 24), cols, orphan, &unknown); \
        c[bin] += (pos) - start;                                                                               \
        start = (pos), bin = e->bin;                                                                           \
    } while (0)

/* count_runs for RGB pixels, from pixel 1 on (the caller set up pixel 0's run), with `repeats` for the blocks */
#define DEFINE_COUNT_RUNS_RGB(NAME, ATTRIBUTES, REPEATS)                                                       \
    ATTRIBUTES static uint32_t NAME(const uint8_t *g, const uint8_t *p, Py_ssize_t n, const id_labels *t,      \
                                    Py_ssize_t cols, Py_ssize_t orphan, int64_t *c, pair_bin *pairs,            \
                                    Py_ssize_t bin, uint32_t unknown) {                                         \
        Py_ssize_t start = 0, i = 1;                                                                           \
        for (; i + 64 <= n; i += 64)                                                                           \
            for (uint64_t starts = ~REPEATS(g + 3 * i, p + 3 * i); starts; starts &= starts - 1)               \
                RUN_AT(i + __builtin_ctzll(starts));                                                           \
        for (; i < n; i++) { /* the last pixels, one at a time */                                              \
            const uint8_t *gi = g + 3 * i, *pi = p + 3 * i;                                                    \
            if (gi[0] != gi[-3] || gi[1] != gi[-2] || gi[2] != gi[-1] || pi[0] != pi[-3] || pi[1] != pi[-2] || \
                pi[2] != pi[-1])                                                                               \
                RUN_AT(i);                                                                                     \
        }                                                                                                      \
        c[bin] += n - start;                                                                                   \
        return unknown;                                                                                        \
    }

DEFINE_COUNT_RUNS_RGB(count_runs_sse2, , repeats_sse2)
DEFINE_COUNT_RUNS_RGB(count_runs_avx2, AVX2_BMI2, repeats_avx2)
#undef RUN_AT

/* The block method in use: 2 = AVX2 + BMI2, 1 = SSE2 (set at load; `simd` reports it and can lower it). */
static int RGB_METHOD = 1;

static int fast_pext(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("bmi2")) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    if (b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e) return 1; /* GenuineIntel */
    if (b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) {        /* AuthenticAMD: Zen 3 on (family 19h+) */
        if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
        unsigned family = (a >> 8) & 0xF;
        return (family == 0xF ? family + ((a >> 20) & 0xFF) : family) >= 0x19;
    }
#endif
    return 0;
}

static uint32_t count_runs_rgb(const uint8_t *g, const uint8_t *p, Py_ssize_t n, const id_labels *t, Py_ssize_t cols,
                               Py_ssize_t orphan, int64_t *c, pair_bin *pairs) {
    if (n == 0) return 0;
    memset(pairs, 0xFF, sizeof(pair_bin) << PAIR_BITS);
    uint32_t unknown = 0, gid = g[0] | (uint32_t)g[1] << 8 | (uint32_t)g[2] << 16;
    Py_ssize_t bin = bin_of(t, gid, p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16, cols, orphan, &unknown);
    return (RGB_METHOD == 2 ? count_runs_avx2 : count_runs_sse2)(g, p, n, t, cols, orphan, c, pairs, bin, unknown);
}
#endif

static PyObject *simd(PyObject *self, PyObject *args) {
    (void)self;
    const char *want = NULL;
    if (!PyArg_ParseTuple(args, "|s:simd", &want)) return NULL;
#if RGB_BLOCKS
    static const char *names[] = {"none", "sse2", "avx2"};
    if (want) { /* lower the method (tests compare every one a machine has) */
        int m = !strcmp(want, "sse2") ? 1 : !strcmp(want, "avx2") ? 2 : 0;
        if (!m || (m == 2 && !fast_pext())) {
            PyErr_Format(PyExc_ValueError, "simd: %s is not available here (sse2, or avx2 where fast)", want);
            return NULL;
        }
        RGB_METHOD = m;
    }
    return PyUnicode_FromString(names[RGB_METHOD]);
#else
    if (want && strcmp(want, "none")) {
        PyErr_Format(PyExc_ValueError, "simd: %s is not available in this build", want);
        return NULL;
    }
    return PyUnicode_FromString("none");
#endif
}

static PyObject *joint_histogram(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer gt, pred, gt_ids, pred_ids, counts, gl = {0}, pl = {0};
    Py_ssize_t stride;
    PyObject *gl_obj = Py_None, *pl_obj = Py_None, *result = NULL;
    id_labels h = {NULL, NULL, 0, 0};
    void *pairs = NULL; /* the RGB path's pair cache */
    if (!PyArg_ParseTuple(args, "y*y*ny*y*w*|OO:joint_histogram", &gt, &pred, &stride, &gt_ids, &pred_ids, &counts,
                          &gl_obj, &pl_obj))
        return NULL;
    Py_ssize_t n = stride > 0 ? gt.len / stride : 0, kg = gt_ids.len / 8, kp = pred_ids.len / 8;
    Py_ssize_t cols = kp + 1, orphan = kg + 1;
    if ((stride != 3 && stride != 4) || gt.len != pred.len || gt.len != n * stride) {
        PyErr_SetString(PyExc_ValueError, "gt and pred must be pixel buffers of one size, 3 or 4 bytes per pixel");
        goto done;
    }
    if (gt_ids.len % 8 || pred_ids.len % 8 || kg > 32766 || kp > 32766 || counts.len != (orphan + 1) * cols * 8) {
        PyErr_SetString(PyExc_ValueError, "ids must be int64 (at most 32766 each); counts int64[(kg + 2) * (kp + 1)]");
        goto done;
    }
    if (writable_of(gl_obj, &gl, n, "gt_labels") < 0 || writable_of(pl_obj, &pl, n, "pred_labels") < 0) goto done;
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * (kg + kp)) bits++; /* at most half full: probes stay short */
    h.mask = (1u << bits) - 1, h.shift = 32 - bits;
    h.keys = calloc((size_t)1 << bits, sizeof(uint32_t));
    h.labels = calloc((size_t)1 << bits, sizeof(uint32_t));
    if (!h.keys || !h.labels) {
        PyErr_NoMemory();
        goto done;
    }
    if (add_ids(&h, gt_ids.buf, kg, 0) < 0 || add_ids(&h, pred_ids.buf, kp, 16) < 0) {
        PyErr_SetString(PyExc_ValueError, "segment ids must be unique and lie in 1..2^24-1");
        goto done;
    }

    uint32_t unknown;
#if RGB_BLOCKS
    if (stride == 3 && !gl.buf && !pl.buf) {
        pairs = malloc(sizeof(pair_bin) << PAIR_BITS);
        if (!pairs) {
            PyErr_NoMemory();
            goto done;
        }
    }
#endif
    Py_BEGIN_ALLOW_THREADS
#if RGB_BLOCKS
    if (pairs)
        unknown = count_runs_rgb(gt.buf, pred.buf, n, &h, cols, orphan, counts.buf, pairs);
    else
#endif
    if (stride == 3)
        unknown = count_runs(gt.buf, pred.buf, 3, n, &h, cols, orphan, counts.buf, gl.buf, pl.buf);
    else
        unknown = count_runs(gt.buf, pred.buf, 4, n, &h, cols, orphan, counts.buf, gl.buf, pl.buf);
    Py_END_ALLOW_THREADS
    result = PyLong_FromUnsignedLong(unknown);
done:
    free(h.keys);
    free(h.labels);
    free(pairs);
    if (gl.buf) PyBuffer_Release(&gl);
    if (pl.buf) PyBuffer_Release(&pl);
    PyBuffer_Release(&gt);
    PyBuffer_Release(&pred);
    PyBuffer_Release(&gt_ids);
    PyBuffer_Release(&pred_ids);
    PyBuffer_Release(&counts);
    return result;
}

/* 1c. match_segments (pq.image_stats): panopticapi's per-image matching on the joint histogram, the numpy code's
 * twin (Kirillov et al., Eq. 1 and COCO's pq_compute): a (GT, prediction) pair matches when the categories agree,
 * the GT is not crowd and IoU > 0.5 with union = pred_area + gt_area - intersection - pred-on-VOID; an unmatched
 * non-crowd GT is a FN; an unmatched prediction is a FP unless more than half of it lies on VOID plus the last
 * crowd segment of its category.
 *
 * match_segments(counts, g_cat, g_crowd, g_area_json, p_cat, n_cats, tp, iou, fn, fp, conf)
 *   counts   int64[(kg + 2) * (kp + 1)] from joint_histogram; g_* int64[kg], p_cat int64[kp] (category indices)
 *   g_area_json  the JSON areas, -1 where absent (the pixel count is used then)
 *   outputs  tp int64[2 kg kp] (GT, prediction) index pairs in row-major order, iou float64[kg kp], fn int64[kg]
 *            GT indices, fp int64[kp] prediction indices, conf int64[3 kg (kp + 1)] (GT index, column, pixels) for
 *            every nonzero entry of the GT rows (column 0 = VOID)
 * returns (n_tp, n_fn, n_fp, n_conf, first prediction without pixels or -1, GT segments without pixels, first
 * of them or -1) */
static PyObject *match_segments(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer counts, g_cat, g_crowd, g_jarea, p_cat, tp, iou, fn, fp, conf;
    Py_ssize_t n_cats;
    PyObject *result = NULL;
    int64_t *p_area = NULL, *crowd_row = NULL;
    uint8_t *p_matched = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*nw*w*w*w*w*:match_segments", &counts, &g_cat, &g_crowd, &g_jarea, &p_cat,
                          &n_cats, &tp, &iou, &fn, &fp, &conf))
        return NULL;
    Py_ssize_t kg = g_cat.len / 8, kp = p_cat.len / 8, cols = kp + 1;
    if (g_crowd.len != g_cat.len || g_jarea.len != g_cat.len || counts.len != (kg + 2) * cols * 8 ||
        tp.len < 2 * kg * kp * 8 || iou.len < kg * kp * 8 || fn.len < kg * 8 || fp.len < kp * 8 ||
        conf.len < 3 * kg * cols * 8 || n_cats < 0) {
        PyErr_SetString(PyExc_ValueError, "match_segments: buffer sizes do not fit kg and kp");
        goto done;
    }
    const int64_t *c = counts.buf, *gc = g_cat.buf, *gcr = g_crowd.buf, *gja = g_jarea.buf, *pc = p_cat.buf;
    for (Py_ssize_t k = 0; k < kg; k++)
        if (gc[k] < 0 || gc[k] >= n_cats) {
            PyErr_SetString(PyExc_ValueError, "match_segments: a category index outside 0..n_cats-1");
            goto done;
        }
    for (Py_ssize_t k = 0; k < kp; k++)
        if (pc[k] < 0 || pc[k] >= n_cats) {
            PyErr_SetString(PyExc_ValueError, "match_segments: a category index outside 0..n_cats-1");
            goto done;
        }
    int64_t *o_tp = tp.buf, *o_fn = fn.buf, *o_fp = fp.buf, *o_conf = conf.buf;
    double *o_iou = iou.buf;
    p_area = calloc(cols, sizeof(int64_t));
    crowd_row = malloc((n_cats + 1) * sizeof(int64_t));
    p_matched = calloc(cols, 1);
    if (!p_area || !crowd_row || !p_matched) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < kg + 2; r++) /* every pixel of a prediction, whatever lies under it */
        for (Py_ssize_t j = 1; j < cols; j++) p_area[j] += c[r * cols + j];
    Py_ssize_t absent_p = -1, n_absent_g = 0, first_absent_g = -1;
    for (Py_ssize_t j = 1; j < cols && absent_p < 0; j++)
        if (!p_area[j]) absent_p = j - 1;
    for (Py_ssize_t k = 0; k < n_cats; k++) crowd_row[k] = -1;
    for (Py_ssize_t i = 0; i < kg; i++) /* the last crowd segment of a class wins, as in panopticapi */
        if (gcr[i] == 1) crowd_row[gc[i]] = i;
    Py_ssize_t n_tp = 0, n_fn = 0, n_fp = 0, n_conf = 0;
    const int64_t *void_p = c; /* row 0: prediction pixels on VOID */
    for (Py_ssize_t i = 0; i < kg; i++) {
        const int64_t *row = c + (i + 1) * cols;
        int64_t g_pix = 0;
        for (Py_ssize_t j = 0; j < cols; j++) {
            g_pix += row[j];
            if (row[j]) o_conf[3 * n_conf] = i, o_conf[3 * n_conf + 1] = j, o_conf[3 * n_conf + 2] = row[j], n_conf++;
        }
        if (!g_pix && n_absent_g++ == 0) first_absent_g = i;
        int64_t g_area = gja[i] >= 0 ? gja[i] : g_pix; /* panopticapi takes GT areas from the JSON */
        int matched = 0;
        for (Py_ssize_t j = 1; j < cols && gcr[i] != 1; j++) {
            int64_t inter = row[j];
            if (inter <= 0 || pc[j - 1] != gc[i]) continue;
            double v = (double)inter / (double)(p_area[j] + g_area - inter - void_p[j]);
            if (v > 0.5) {
                o_tp[2 * n_tp] = i, o_tp[2 * n_tp + 1] = j - 1, o_iou[n_tp] = v, n_tp++;
                matched = 1, p_matched[j] = 1;
            }
        }
        if (!matched && gcr[i] != 1) o_fn[n_fn++] = i;
    }
    for (Py_ssize_t j = 1; j < cols; j++) {
        if (p_matched[j]) continue;
        int64_t ignored = void_p[j], r = crowd_row[pc[j - 1]];
        if (r >= 0) ignored += c[(r + 1) * cols + j];
        if (!((double)ignored / (double)(p_area[j] > 1 ? p_area[j] : 1) > 0.5)) o_fp[n_fp++] = j - 1;
    }
    result = Py_BuildValue("(nnnnnnn)", n_tp, n_fn, n_fp, n_conf, absent_p, n_absent_g, first_absent_g);
done:
    free(p_area);
    free(crowd_row);
    free(p_matched);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&g_cat);
    PyBuffer_Release(&g_crowd);
    PyBuffer_Release(&g_jarea);
    PyBuffer_Release(&p_cat);
    PyBuffer_Release(&tp);
    PyBuffer_Release(&iou);
    PyBuffer_Release(&fn);
    PyBuffer_Release(&fp);
    PyBuffer_Release(&conf);
    return result;
}

/* 2. trace_loops (convert.trace_loops): the boundary loops of a binary mask along pixel edges.
 *
 * trace_loops(mask, height, width) -> [(coords, twice_area), ...]
 *   mask    height * width bytes, nonzero = foreground, row-major
 *   coords  bytes of float64 [x0, y0, x1, y1, ...]: the loop's corner vertices on the pixel-corner grid (vertices
 *           where the walk goes straight on are left out), foreground on the right of the walk (y down)
 *   twice_area  the shoelace sum: positive for an outer boundary, negative for a hole
 * Loops come in the order of their first top edge in raster order, each starting there (or at the next corner);
 * at a vertex shared by two diagonal pixels the walk turns right, so 4-connected parts get separate loops. */

static const int STEP_X[4] = {1, 0, -1, 0}, STEP_Y[4] = {0, 1, 0, -1}; /* +x, +y, -x, -y */

/* Is there a boundary edge leaving corner (x, y) in direction d, foreground on its right? */
static inline int edge_at(const uint8_t *m, Py_ssize_t h, Py_ssize_t w, Py_ssize_t x, Py_ssize_t y, int d) {
#define FG(r, c) ((r) >= 0 && (r) < h && (c) >= 0 && (c) < w && m[(r) * w + (c)])
    switch (d) {
    case 0: return FG(y, x) && !FG(y - 1, x);             /* along the top of pixel (y, x) */
    case 1: return FG(y, x - 1) && !FG(y, x);             /* along the right of pixel (y, x - 1) */
    case 2: return FG(y - 1, x - 1) && !FG(y, x - 1);     /* along the bottom of pixel (y - 1, x - 1) */
    default: return FG(y - 1, x) && !FG(y - 1, x - 1);    /* along the left of pixel (y - 1, x) */
    }
#undef FG
}

static PyObject *trace_loops(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer mask;
    Py_ssize_t h, w;
    if (!PyArg_ParseTuple(args, "y*nn:trace_loops", &mask, &h, &w)) return NULL;
    PyObject *loops = NULL;
    uint8_t *top_done = NULL;
    Py_ssize_t *xy = NULL, cap = 0;
    if (h < 0 || w < 0 || mask.len != h * w) {
        PyErr_SetString(PyExc_ValueError, "mask must hold height * width bytes");
        goto done;
    }
    const uint8_t *m = mask.buf;
    top_done = calloc(h * w + 1, 1); /* top edges already walked: a loop starts at the first one not yet walked */
    loops = PyList_New(0);
    if (!top_done || !loops) {
        if (!top_done) PyErr_NoMemory();
        Py_CLEAR(loops);
        goto done;
    }
    for (Py_ssize_t r = 0; r < h; r++) {
        for (Py_ssize_t c = 0; c < w; c++) {
            if (top_done[r * w + c] || !m[r * w + c] || (r > 0 && m[(r - 1) * w + c])) continue;
            Py_ssize_t x = c, y = r, n = 0, area2 = 0;
            int d = 0;
            do { /* edge (x, y, d) */
                if (d == 0) top_done[y * w + x] = 1;
                Py_ssize_t ex = x + STEP_X[d], ey = y + STEP_Y[d];
                area2 += x * ey - ex * y;
                int next = (d + 1) & 3; /* the right turn, else straight on, else left */
                if (!edge_at(m, h, w, ex, ey, next)) {
                    next = d;
                    if (!edge_at(m, h, w, ex, ey, next)) next = (d + 3) & 3;
                }
                if (next != d) { /* a corner at (ex, ey) */
                    if (n + 2 > cap) {
                        cap = cap ? 2 * cap : 256;
                        Py_ssize_t *grown = realloc(xy, cap * sizeof(Py_ssize_t));
                        if (!grown) {
                            PyErr_NoMemory();
                            Py_CLEAR(loops);
                            goto done;
                        }
                        xy = grown;
                    }
                    xy[n++] = ex, xy[n++] = ey;
                }
                x = ex, y = ey, d = next;
            } while (!(x == c && y == r && d == 0));
            /* the walk ended where it began: the start corner, if it is one, was recorded last; put it first */
            Py_ssize_t first = (n >= 2 && xy[n - 2] == c && xy[n - 1] == r) ? n - 2 : 0;
            PyObject *coords = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(double));
            if (!coords) {
                Py_CLEAR(loops);
                goto done;
            }
            double *out = (double *)PyBytes_AS_STRING(coords);
            for (Py_ssize_t k = 0; k < n; k++) out[k] = (double)xy[(first + k) % n];
            PyObject *item = Py_BuildValue("(Nn)", coords, area2);
            if (!item || PyList_Append(loops, item) < 0) {
                Py_XDECREF(item);
                Py_CLEAR(loops);
                goto done;
            }
            Py_DECREF(item);
        }
    }
done:
    free(top_done);
    free(xy);
    PyBuffer_Release(&mask);
    return loops;
}

static PyMethodDef methods[] = {
    {"joint_histogram", joint_histogram, METH_VARARGS,
     "joint_histogram(gt, pred, stride, gt_ids, pred_ids, counts, gt_labels=None, pred_labels=None)"
     " -> the first unknown prediction id, or 0"},
    {"match_segments", match_segments, METH_VARARGS,
     "match_segments(counts, g_cat, g_crowd, g_area_json, p_cat, n_cats, tp, iou, fn, fp, conf) -> (n_tp, n_fn, "
     "n_fp, n_conf, first absent prediction, absent GT count, first absent GT)"},
    {"simd", simd, METH_VARARGS,
     "simd(method=None) -> the joint histogram's SIMD block method ('avx2', 'sse2' or 'none'); a name lowers it"},
    {"trace_loops", trace_loops, METH_VARARGS,
     "trace_loops(mask, height, width) -> [(float64 bytes x0, y0, ..., twice the signed area), ...]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "The PQ joint histogram and the polygon tracer (pq.py, convert.py).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) {
#if RGB_BLOCKS
    init_pixel_table();
    RGB_METHOD = fast_pext() ? 2 : 1;
#endif
    return PyModule_Create(&module);
}
