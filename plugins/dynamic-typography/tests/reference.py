"""Plain reference implementations, written from the definitions with Python loops and no tricks: the parity
tests compare the fast paths (batched rasterizer, vectorized angles, elevated cubics) with these."""

import math


def bezier(ctrl, t):
    """A Bezier curve of any degree at t by de Casteljau (plain floats)."""
    pts = [tuple(map(float, p)) for p in ctrl]
    while len(pts) > 1:
        pts = [((1 - t) * a[0] + t * b[0], (1 - t) * a[1] + t * b[1]) for a, b in zip(pts[:-1], pts[1:])]
    return pts[0]


def _dist_to_segment(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    t = 0.0 if l2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / l2))
    qx, qy = ax + t * dx, ay + t * dy
    return math.hypot(px - qx, py - qy)


def winding(px, py, edges):
    """Winding number of a point w.r.t. closed polygon edges [(ax, ay, bx, by)] (crossings of a +x ray)."""
    w = 0
    for ax, ay, bx, by in edges:
        cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
        if ay <= py < by and cross > 0:
            w += 1
        elif by <= py < ay and cross < 0:
            w -= 1
    return w


def naive_coverage(edges, height, width, ss=1, fill_rule="nonzero"):
    """Per pixel, per sub-pixel: inside test and distance to every edge, box-filtered: clamp(0.5 + s d, 0, 1)
    in sub-pixel units, averaged over the ss x ss sub-pixels. `edges` in canvas pixels."""
    sub = [(ax * ss, ay * ss, bx * ss, by * ss) for ax, ay, bx, by in edges]
    out = [[0.0] * width for _ in range(height)]
    for y in range(height):
        for x in range(width):
            acc = 0.0
            for j in range(ss):
                for i in range(ss):
                    px, py = x * ss + i + 0.5, y * ss + j + 0.5
                    w = winding(px, py, sub)
                    inside = w != 0 if fill_rule == "nonzero" else w % 2 != 0
                    d = min(_dist_to_segment(px, py, *e) for e in sub)
                    acc += min(1.0, max(0.0, 0.5 + (d if inside else -d)))
            out[y][x] = acc / (ss * ss)
    return out


def triangle_angles(points, faces):
    """Corner angles of each triangle, edges normalized by (length + 0.1) as the reference's ConformalLoss."""
    out = []
    for f in faces:
        tri = [points[i] for i in f]
        edges = []
        for k in range(3):
            a, b = tri[k], tri[k - 1]  # roll by one: edge from corner k to corner k-1
            ex, ey = b[0] - a[0], b[1] - a[1]
            n = math.hypot(ex, ey) + 0.1
            edges.append((ex / n, ey / n))
        angles = []
        for k in range(3):
            e, r = edges[k], edges[k - 1]
            c = max(-1 + 1e-6, min(1 - 1e-6, e[0] * r[0] + e[1] * r[1]))
            angles.append(math.acos(c))
        out.append(angles)
    return out


def affine(theta, shx, shy, sx, sy):
    """R(theta) @ [[1, shy], [shx, 1]] @ diag(sx, sy), composed by hand."""
    c, s = math.cos(theta), math.sin(theta)
    r = [[c, -s], [s, c]]
    sh = [[1, shy], [shx, 1]]
    m = [[sum(r[i][k] * sh[k][j] for k in range(2)) for j in range(2)] for i in range(2)]
    return [[m[0][0] * sx, m[0][1] * sy], [m[1][0] * sx, m[1][1] * sy]]
