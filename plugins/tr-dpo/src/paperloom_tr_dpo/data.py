"""Readers of preference data in the on-disk formats users have, as `datasets.Dataset`s trl reads.

- ``hh``: Anthropic-HH style JSONL (``.jsonl`` or ``.jsonl.gz``, or a folder holding ``<split>.jsonl[.gz]``):
  ``{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": "..."}`` full dialogues; the prompt is
  everything up to the last ``\\n\\nAssistant:`` (shared by both), the responses are the rest.
- ``tldr``: TL;DR style JSONL ``{"prompt", "chosen", "rejected"}``.
- ``hf-disk``: a `datasets` folder saved with ``save_to_disk`` (Dataset or DatasetDict) with either of the
  column sets above, or ``prompt/completion/label`` (unpaired).
- ``unpaired``: JSONL ``{"prompt", "completion", "label": true|false}`` for KTO.

Every malformed input raises a `UserError` naming the file, the line and the missing or empty field.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from paperloom import UserError

ASSISTANT = "\n\nAssistant:"
PAIR_FIELDS = ("prompt", "chosen", "rejected")
UNPAIRED_FIELDS = ("prompt", "completion", "label")


def _find_file(path: str, split: str) -> Path:
    p = Path(path).expanduser()
    if not path:
        raise UserError("data_args.path is empty; set --set data_args.path=/path/to/file.jsonl")
    if p.is_dir():
        for name in (f"{split}.jsonl", f"{split}.jsonl.gz", f"{split}.json"):
            if (p / name).is_file():
                return p / name
        raise UserError(f"{p} holds no {split}.jsonl or {split}.jsonl.gz; pass a JSONL file or a folder with one")
    if not p.is_file():
        raise UserError(f"data file {p} does not exist; pass an existing .jsonl (.gz) file or folder")
    return p


def read_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed row) of a JSONL (optionally gzipped) file, or of a JSON list."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, list):
            raise UserError(f"{path} must hold a JSON list of rows")
        return list(enumerate(data, 1))
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((i, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} line {i} is not valid JSON ({exc.msg}); fix or remove the line") from None
    if not rows:
        raise UserError(f"{path} holds no rows")
    return rows


def _nonempty(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, list) and len(value) > 0  # conversational: a list of {role, content} messages


def check_row(row: Any, fields: tuple[str, ...], where: str) -> dict:
    if not isinstance(row, dict):
        raise UserError(f"{where}: a row must be a JSON object with fields {', '.join(fields)}")
    for f in fields:
        if f not in row:
            raise UserError(f"{where}: missing field {f!r} (has {sorted(row)}); each row needs {', '.join(fields)}")
        if f == "label":
            if not isinstance(row[f], bool):
                raise UserError(f"{where}: field 'label' = {row[f]!r} must be true (desirable) or false")
        elif not _nonempty(row[f]):
            raise UserError(f"{where}: field {f!r} is empty; remove the row or fill it in")
    return {f: row[f] for f in fields}


def split_hh(chosen: str, rejected: str, where: str) -> dict:
    """Anthropic-HH dialogues -> (prompt, chosen, rejected): the prompt ends with the last Assistant turn marker."""
    k = chosen.rfind(ASSISTANT)
    if k < 0:
        raise UserError(f"{where}: 'chosen' has no '\\n\\nAssistant:' turn; is this HH-style data? (use tr-dpo:tldr "
                        "for prompt/chosen/rejected rows)")
    prompt = chosen[: k + len(ASSISTANT)]
    if not rejected.startswith(prompt):
        raise UserError(f"{where}: 'chosen' and 'rejected' do not share the dialogue before the last Assistant turn")
    out = {"prompt": prompt, "chosen": chosen[len(prompt):], "rejected": rejected[len(prompt):]}
    for f in ("chosen", "rejected"):
        if not out[f].strip():
            raise UserError(f"{where}: the final Assistant response in {f!r} is empty; remove the row")
    return out


def _limit(rows: list, max_rows: int) -> list:
    return rows[:max_rows] if max_rows else rows


def to_dataset(rows: list[dict], where: str) -> Any:
    from datasets import Dataset

    if not rows:
        raise UserError(f"{where}: no rows left; the dataset is empty")
    return Dataset.from_list(rows)


def read_hh(path: str = "", split: str = "train", max_rows: int = 0) -> Any:
    f = _find_file(path, split)
    rows = []
    for i, row in _limit(read_rows(f), max_rows):
        r = check_row(row, ("chosen", "rejected"), f"{f} line {i}")
        if not isinstance(r["chosen"], str) or not isinstance(r["rejected"], str):
            raise UserError(f"{f} line {i}: HH rows hold dialogues as strings; use tr-dpo:hf-disk for message lists")
        rows.append(split_hh(r["chosen"], r["rejected"], f"{f} line {i}"))
    return to_dataset(rows, str(f))


def read_tldr(path: str = "", split: str = "train", max_rows: int = 0) -> Any:
    f = _find_file(path, split)
    rows = [check_row(row, PAIR_FIELDS, f"{f} line {i}") for i, row in _limit(read_rows(f), max_rows)]
    return to_dataset(rows, str(f))


def read_unpaired(path: str = "", split: str = "train", max_rows: int = 0) -> Any:
    f = _find_file(path, split)
    rows = [check_row(row, UNPAIRED_FIELDS, f"{f} line {i}") for i, row in _limit(read_rows(f), max_rows)]
    return to_dataset(rows, str(f))


def read_hf_disk(path: str = "", split: str = "train", max_rows: int = 0) -> Any:
    """A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (no download)."""
    from datasets import DatasetDict, load_from_disk

    p = Path(path).expanduser()
    if not path or not p.is_dir():
        raise UserError(f"data_args.path = {path!r} is not a folder saved by datasets' save_to_disk")
    try:
        ds = load_from_disk(str(p))
    except FileNotFoundError as exc:
        raise UserError(f"{p} is not a datasets folder ({exc}); save one with Dataset.save_to_disk") from None
    if isinstance(ds, DatasetDict):
        if split not in ds:
            raise UserError(f"{p} has splits {sorted(ds)}, not {split!r}; set data_args.split")
        ds = ds[split]
    cols = set(ds.column_names)
    if max_rows:
        ds = ds.select(range(min(max_rows, len(ds))))
    if set(UNPAIRED_FIELDS) <= cols:
        fields = UNPAIRED_FIELDS
    elif set(PAIR_FIELDS) <= cols:
        fields = PAIR_FIELDS
    elif {"chosen", "rejected"} <= cols:
        return to_dataset([split_hh(r["chosen"], r["rejected"], f"{p} row {i}") for i, r in enumerate(ds)], str(p))
    else:
        raise UserError(f"{p}: columns {sorted(cols)}; expected prompt/chosen/rejected, chosen/rejected (HH) or "
                        "prompt/completion/label (unpaired)")
    return to_dataset([check_row(r, fields, f"{p} row {i}") for i, r in enumerate(ds)], str(p))


def is_unpaired(ds: Any) -> bool:
    return "completion" in ds.column_names and "label" in ds.column_names


def sft_rows(ds: Any) -> Any:
    """(prompt, completion) rows for SFT: the chosen responses, or the desirable unpaired completions."""
    if is_unpaired(ds):
        ds = ds.filter(lambda r: r["label"])
        return ds.select_columns(["prompt", "completion"])
    return ds.select_columns(["prompt", "chosen"]).rename_column("chosen", "completion")


def texts(ds: Any) -> list[str]:
    """Plain text of a dataset, to train a tokenizer on."""
    cols = [c for c in ("prompt", "chosen", "rejected", "completion") if c in ds.column_names]
    return [r[c] for r in ds for c in cols if isinstance(r[c], str)]
