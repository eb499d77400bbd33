"""Small safe file helpers: atomic writes and archive extraction that stays inside its target."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import UserError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """Load JSON with an error that names the file and position."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def read_jsonl(path: str | Path) -> list[dict]:
    """Read JSON lines, ignoring a torn last line left by a killed writer."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise UserError(f"{path} line {i + 1} is not valid JSON") from None
    return rows


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a .zip/.tar(.gz) into `target`, refusing members that would land outside it."""
    import tarfile
    import zipfile

    archive, target = Path(archive), Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)

    def inside(name: str) -> bool:
        dest = (target / name).resolve()
        return dest == target or target in dest.parents

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if not inside(name):
                    raise UserError(f"{archive}: member {name!r} would extract outside {target}; refusing")
            zf.extractall(target)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for m in tf.getmembers():
                if not inside(m.name) or m.issym() or m.islnk() or m.isdev():
                    raise UserError(f"{archive}: member {m.name!r} is a link, device or outside {target}; refusing")
            tf.extractall(target)
    else:
        raise UserError(f"{archive} is not a zip or tar archive")
    return target
