"""Typed configs: YAML + overrides, validation errors that name key, value and what is allowed."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from paperloom import UserError
from paperloom.config import build, describe, parse_override, resolve, to_dict
from paperloom.config import option as opt


@dataclass
class Inner:
    steps: int = opt(10, help="steps")
    lr: float = opt(1e-3)


@dataclass
class Cfg:
    name: str = opt("x")
    mode: Literal["soft", "hard"] = opt("soft")
    ratio: float = opt(0.5, choices=(0.0, 0.5, 0.75))
    maybe: int | None = opt(None)
    sizes: list[int] = opt([1, 2])
    inner: Inner = field(default_factory=Inner)


def test_defaults_and_nested():
    cfg = build(Cfg, {"inner": {"steps": 3}})
    assert cfg.inner.steps == 3 and cfg.inner.lr == 1e-3 and cfg.sizes == [1, 2]
    assert to_dict(cfg)["inner"] == {"steps": 3, "lr": 1e-3}


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"inner": {"steps": "ten"}}, "inner.steps = 'ten' is not valid; expected an integer"),
        ({"mode": "medium"}, "mode = 'medium' is not valid; expected one of 'soft', 'hard'"),
        ({"ratio": 0.3}, "expected one of 0.0, 0.5, 0.75"),
        ({"sizes": [1, "a"]}, "sizes[1] = 'a'"),
        ({"inner": {"stepz": 1}}, "unknown option inner.stepz (did you mean steps?)"),
        ({"inner": {"steps": True}}, "expected an integer"),
    ],
)
def test_errors_name_the_key_and_the_allowed_values(data, fragment):
    with pytest.raises(UserError) as exc:
        build(Cfg, data)
    assert fragment in str(exc.value)


def test_int_is_accepted_for_float_and_yaml_exponent_strings():
    cfg = build(Cfg, {"inner": {"lr": "1e-4"}})
    assert cfg.inner.lr == 1e-4
    assert build(Cfg, {"inner": {"lr": 2}}).inner.lr == 2.0


def test_parse_override():
    assert parse_override("trainer.max_steps=10") == (["trainer", "max_steps"], 10)
    assert parse_override("model=megalodon:tiny") == (["model"], "megalodon:tiny")
    assert parse_override("sizes=[3, 4]") == (["sizes"], [3, 4])
    for bad in ("novalue", "=3", "a..b=1"):
        with pytest.raises(UserError, match="must look like key=value"):
            parse_override(bad)


def test_resolve_layers_file_config_and_overrides(tmp_path):
    default = tmp_path / "d.yaml"
    default.write_text("name: a\ninner: {steps: 1}\n")
    user = tmp_path / "u.yaml"
    user.write_text("inner: {lr: 0.5}\n")
    cfg, _ = resolve(Cfg, default, str(user), ["inner.steps=7"])
    assert (cfg.name, cfg.inner.steps, cfg.inner.lr) == ("a", 7, 0.5)


def test_yaml_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(UserError, match=r"bad.yaml line \d+ is not valid YAML"):
        resolve(Cfg, bad, None, [])
    with pytest.raises(UserError, match="does not exist"):
        resolve(Cfg, tmp_path / "missing.yaml", None, [])


def test_describe_lists_every_option():
    names = [r["name"] for r in describe(Cfg)]
    assert names == ["name", "mode", "ratio", "maybe", "sizes", "inner.steps", "inner.lr"]


def test_each_layer_is_blamed_for_its_own_mistake(tmp_path):
    default = tmp_path / "d.yaml"
    default.write_text("inner: {steps: 1}\n")
    user = tmp_path / "u.yaml"
    user.write_text("inner: {steps: lots}\n")
    with pytest.raises(UserError, match=r"u.yaml: inner.steps = 'lots'"):
        resolve(Cfg, default, str(user), ["name=ok"])
    with pytest.raises(UserError, match=r"^--set: inner.steps = 'x'"):
        resolve(Cfg, default, None, ["inner.steps=x"])
