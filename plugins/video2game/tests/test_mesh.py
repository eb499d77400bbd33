"""Mesh extraction: an analytic sphere is watertight with the right volume; clean-up, decimation, un-contraction
and per-object splitting."""

import numpy as np
import pytest
import torch
from paperloom_video2game.mesh import clean, extract, marching_cubes, split_by_boxes, uncontract_mesh
from paperloom_video2game.model import contract, uncontract


def sphere_density(radius, centre=(0.0, 0.0, 0.0), world=False):
    c = torch.tensor(centre)

    def density(y):
        x = uncontract(y.double()).float() if world else y
        return 10 * (radius - (x - c).norm(dim=-1))  # level 0 is the sphere; density grows inward
    return density


@pytest.mark.parametrize("radius,res", [(0.5, 64), (0.8, 96)])
def test_marching_cubes_of_a_sphere_is_watertight_with_its_volume(radius, res):
    mesh, _ = extract(sphere_density(radius), [-1, -1, -1, 1, 1, 1], res, 0.0)
    assert mesh.is_watertight and mesh.is_winding_consistent
    want = 4 / 3 * np.pi * radius**3
    assert abs(mesh.volume - want) / want < 0.02
    assert mesh.volume > 0  # outward normals


def test_a_surface_cut_by_the_bounds_is_closed_by_the_padding():
    # a slab filling the lower half of the region: the cut sides close up into a box
    mesh = marching_cubes(np.broadcast_to(np.linspace(1, -1, 20)[None, None, :], (20, 20, 20)).copy(), 0.0,
                          [-1, -1, -1], [1, 1, 1])
    assert mesh.is_watertight


def test_uncontract_brings_a_far_sphere_back_to_world_units():
    # a sphere of world radius 1.6 (partly outside the unit cube) meshed in contracted space
    density = sphere_density(1.6, world=True)
    raw = marching_cubes(np.asarray(density(torch.stack(torch.meshgrid(
        *[torch.linspace(-1.9, 1.9, 80)] * 3, indexing="ij"), -1).view(-1, 3)).view(80, 80, 80)), 0.0,
        [-1.9] * 3, [1.9] * 3)
    world = uncontract_mesh(raw)
    r = np.linalg.norm(world.vertices, axis=1)
    assert np.abs(r - 1.6).max() < 0.05
    back = contract(torch.from_numpy(np.asarray(world.vertices)))
    assert np.allclose(back.numpy(), raw.vertices, atol=1e-9)


def test_clean_drops_small_pieces_and_decimates_to_the_budget():
    import trimesh

    big = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    crumb = trimesh.creation.icosphere(subdivisions=0, radius=0.01)
    crumb.apply_translation([0.9, 0, 0])
    mesh = trimesh.util.concatenate([big, crumb])
    out = clean(mesh, min_component=0.05, faces=1000)
    assert len(out.split(only_watertight=False)) == 1
    assert 900 <= len(out.faces) <= 1000
    assert abs(out.volume - big.volume) / big.volume < 0.03


def test_split_by_boxes():
    import trimesh

    a = trimesh.creation.box(extents=[0.2] * 3)
    b = trimesh.creation.box(extents=[0.2] * 3)
    b.apply_translation([1, 0, 0])
    ground = trimesh.creation.box(extents=[4, 4, 0.1])
    ground.apply_translation([0, 0, -1])
    mesh = trimesh.util.concatenate([a, b, ground])
    parts = split_by_boxes(mesh, {"a": [-0.2, -0.2, -0.2, 0.2, 0.2, 0.2], "b": [0.8, -0.2, -0.2, 1.2, 0.2, 0.2]})
    assert sorted(parts) == ["a", "b", "background"]
    assert len(parts["a"].faces) == len(parts["b"].faces) == 12 and len(parts["background"].faces) == 12
