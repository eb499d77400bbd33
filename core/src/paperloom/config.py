"""Typed task configs: a dataclass schema, YAML files as instances of it, dotted overrides.

Every error names the file or key path, the bad value and what is allowed, and is a
`UserError` (exit code 2).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal, Union

from .errors import UserError, suggest

MISSING = dataclasses.MISSING


def option(
    default: Any = MISSING,
    *,
    help: str = "",
    choices: tuple | None = None,
    min: float | None = None,
    max: float | None = None,
    component: str | None = None,
    contract: str | None = None,
    run_contract: str | None = None,
    default_factory: Any = MISSING,
) -> Any:
    """A config field with documentation. ``choices`` lists the allowed values, ``min`` / ``max`` bound a
    number (inclusive; checked when the config is resolved). ``component="model"`` marks a field whose
    value names a component of that kind (``plugin:name``); ``contract`` is the data contract it must
    produce (for an evaluator: consume). ``run_contract`` marks a field whose value is a previous run folder
    that must hold a finished artifact of that contract (see `paperloom.provenance`)."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "component": component, "contract": contract,
            "run_contract": run_contract}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# --------------------------------------------------------------------------- YAML + overrides


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping safely; errors name the file and line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; pass an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {path}{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of options, not a {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=3`` -> (["a", "b"], 3); the value is read as YAML so numbers, bools and lists work."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not k for k in key.strip().split(".")):
        raise UserError(f"override {text!r} must look like key=value or section.key=value (e.g. trainer.max_steps=10)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def set_path(data: dict, keys: list[str], value: Any) -> None:
    node = data
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = value


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


# --------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', origin)}[{args}]"
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _coerce(value: Any, tp: Any, path: str, where: str) -> Any:
    def bad(expected: str) -> UserError:
        return UserError(f"{where}: {path} = {value!r} is not valid; expected {expected}")

    if tp is Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if value not in args:
            raise bad("one of " + ", ".join(repr(a) for a in args))
        return value
    if origin is Union or (origin is not None and type(tp).__name__ == "UnionType"):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path, where)
            except UserError as exc:
                errors.append(exc)
        raise bad(_type_name(tp))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad(f"a mapping of {tp.__name__} options")
        return build(tp, value, where, prefix=path + ".")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad(f"a list ({_type_name(tp)})")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{path}[{i}]", where) for i, v in enumerate(value)]
        return tuple(items) if (origin or tp) is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad(f"a mapping ({_type_name(tp)})")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{path}.{k}", where) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
                try:
                    return float(value)
                except ValueError:
                    pass
            raise bad("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    return value


def check_value(meta: Any, value: Any, path: str, where: str) -> None:
    """The field's choices and numeric range."""
    choices = meta.get("choices")
    if choices and value not in choices:
        raise UserError(f"{where}: {path} = {value!r} is not valid; expected one of {', '.join(map(repr, choices))}")
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (lo is not None or hi is not None):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"between {lo:g} and {hi:g}" if lo is not None and hi is not None else (
                f">= {lo:g}" if lo is not None else f"<= {hi:g}")
            raise UserError(f"{where}: {path} = {value!r} is out of range; expected a value {bounds}")


def build(schema: type, data: dict, where: str = "config", prefix: str = "") -> Any:
    """Validate `data` against dataclass `schema` and return an instance."""
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        k = unknown[0]
        raise UserError(f"{where}: unknown option {prefix}{k}{suggest(k, fields)}; `core info` lists the options")
    kwargs = {}
    for name, f in fields.items():
        path = prefix + name
        if name in data:
            value = _coerce(data[name], hints[name], path, where)
            check_value(f.metadata, value, path, where)
            kwargs[name] = value
        elif f.default is MISSING and f.default_factory is MISSING:
            if dataclasses.is_dataclass(hints[name]):
                kwargs[name] = build(hints[name], {}, where, prefix=path + ".")
            else:
                raise UserError(
                    f"{where}: option {path} is required ({_type_name(hints[name])}); set it with --set {path}=..."
                )
    return schema(**kwargs)


def to_dict(cfg: Any) -> Any:
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def describe(schema: type, prefix: str = "") -> list[dict]:
    """Every option: dotted name, type, default and help (for `core info`)."""
    rows = []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(describe(tp, prefix + f.name + "."))
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        rows.append(
            {"name": prefix + f.name, "type": _type_name(tp), "default": default, "help": f.metadata.get("help", "")}
        )
    return rows


def component_fields(cfg: Any, prefix: str = "", key: str = "component") -> list[tuple[str, Any, dict]]:
    """(dotted path, value, metadata) of every field whose metadata sets `key` (a component, a run input)."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(component_fields(value, prefix + f.name + ".", key))
        elif f.metadata.get(key):
            out.append((prefix + f.name, value, dict(f.metadata)))
    return out


def resolve(
    schema: type, default_file: Path | None, user_file: str | None, overrides: list[str], extra: dict | None = None
) -> tuple[Any, dict]:
    """Default YAML <- --config file <- extra (smoke) <- --set overrides, validated. Returns (cfg, raw).

    Arguments belong to the component they were written for: when the --config file or --set switches a
    component field ``x`` and sets no ``x_args``, the defaults' (and smoke's) ``x_args`` are dropped."""
    data: dict = load_yaml(default_file) if default_file else {}
    if default_file:
        build(schema, data, str(default_file))  # blame each layer for its own mistakes
    base = dict(data)
    user_keys: set[str] = set()
    if user_file:
        layer = load_yaml(user_file)
        user_keys |= set(layer)
        data = deep_merge(data, layer)
        build(schema, data, str(user_file))
    for key, value in (extra or {}).items():
        set_path(data, key.split("."), value)
        set_path(base, key.split("."), value)
    for text in overrides:
        keys, value = parse_override(text)
        user_keys.add(keys[0])
        set_path(data, keys, value)
    names = {f.name for f in dataclasses.fields(schema)}
    for f in dataclasses.fields(schema):
        args = f"{f.name}_args"
        switched = f.name in user_keys and data.get(f.name) != base.get(f.name, f.default)
        if f.metadata.get("component") and args in names and switched and args not in user_keys:
            data[args] = {}
    return build(schema, data, "--set" if overrides else "config"), data
