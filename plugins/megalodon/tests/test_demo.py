"""`megalodon:demo` beyond the kit's smoke run: both models come from `cfg.model`, the ablation has no CEMA."""

import pytest

from paperloom import UserError
from paperloom.runner import execute


def test_demo_builds_both_models_by_name_and_the_ablation_has_no_cema(tmp_path):
    watch = []
    out, m = execute("megalodon:demo", smoke=True, out=tmp_path / "d", device="cpu", plot=False, watch=watch)
    assert [ref for ref, _, _ in watch] == ["megalodon:tiny", "megalodon:tiny"]
    (_, mega, _), (_, ablation, _) = watch
    assert any(".cema." in n for n, _ in mega.named_parameters())
    assert not any(".cema." in n for n, _ in ablation.named_parameters())
    assert set(m) >= {"recall_acc", "no_cema_recall_acc", "recall_gap", "chance_acc"}
    assert (out / "recall.png").is_file()


def test_too_few_chunks_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="n_chunks"):
        execute("megalodon:demo", smoke=True, overrides=["n_chunks=3"], out=tmp_path / "c", device="cpu", plot=False)
