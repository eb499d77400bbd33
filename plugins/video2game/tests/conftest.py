import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # the hash-encoding kernels run in the interpreter on CPU tensors

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the exported game in headless Chromium (skipped without "
                                       "chromium / npm unless PAPERLOOM_REQUIRE_BROWSER is set)")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def capture(tmp_path_factory):
    """A small rendered orbit of the generated scene: video.mp4, known/transforms.json, scene.json."""
    from paperloom_video2game.synthetic import make_capture

    return make_capture(tmp_path_factory.mktemp("capture"), frames=24, size=160, seed=0, spp=1)


@pytest.fixture
def ctx(tmp_path):
    from paperloom.context import Run

    return Run(out=tmp_path, plugin="video2game", task="test")


class BlobField(torch.nn.Module):
    """An analytic field with the NeRF interface: a Gaussian density blob and a position-dependent colour."""

    def __init__(self, grid_res: int = 32, centre=(0.2, -0.1, 0.0), scale: float = 0.25, peak: float = 60.0):
        super().__init__()
        from paperloom_video2game.model import OccupancyGrid

        self.centre, self.scale, self.peak = torch.tensor(centre), scale, peak
        self.grid = OccupancyGrid(grid_res)

    def density(self, y):
        r2 = ((y - self.centre) ** 2).sum(-1) / self.scale**2
        return self.peak * torch.exp(-r2)

    def forward(self, y, d):
        rgb = torch.sigmoid(torch.cat([y, (d * y).sum(-1, keepdim=True)], -1)[:, :3] * 3)
        return self.density(y), rgb


@pytest.fixture
def blob():
    return BlobField()


def random_rays(n: int, seed: int, radius: float = 2.5):
    g = np.random.default_rng(seed)
    o = g.normal(size=(n, 3))
    o = o / np.linalg.norm(o, axis=1, keepdims=True) * radius
    target = g.uniform(-0.4, 0.4, (n, 3))
    d = target - o
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return torch.tensor(o, dtype=torch.float32), torch.tensor(d, dtype=torch.float32)
