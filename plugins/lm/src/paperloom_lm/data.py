"""Text for causal LMs: corpora (embedded or local files), a locally trained tokenizer, packing into blocks.

A `Blocks` dataset is the ``token-blocks`` contract: items ``{"input_ids", "labels"}`` of one block each,
with the tokenizer that made them as ``.tokenizer``.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from paperloom import UserError
from paperloom.context import looks_like_path

from .config import TextDataConfig

EOS = "<|endoftext|>"
PAD = "<pad>"

# Pure-Python stdlib modules with long docstrings and no import side effects: the embedded corpus.
CORPUS_MODULES = (
    "abc argparse ast asyncio base64 bisect calendar cmd codecs collections configparser contextlib copy "
    "csv dataclasses datetime decimal difflib doctest email enum fnmatch fractions ftplib functools "
    "getopt gettext glob gzip hashlib heapq hmac html http imaplib inspect io ipaddress json logging "
    "mailbox multiprocessing numbers operator optparse os pathlib pickle pprint queue random re sched "
    "secrets selectors shlex shutil smtplib socket sqlite3 statistics string subprocess tarfile tempfile "
    "textwrap threading timeit tokenize trace traceback typing unittest urllib uuid warnings weakref "
    "zipfile"
).split()


def embedded_corpus(max_chars: int = 0) -> list[str]:
    """Docstrings of Python's own standard library: text every machine has, in a fixed order."""
    return list(_embedded_corpus(max_chars))


@functools.lru_cache(maxsize=8)
def _embedded_corpus(max_chars: int) -> tuple[str, ...]:
    import importlib

    texts: list[str] = []
    seen: set[int] = set()

    def add(obj: Any) -> None:
        doc = inspect.getdoc(obj)
        if doc and len(doc) > 80 and id(doc) not in seen:
            seen.add(id(doc))
            texts.append(doc)

    import warnings

    with warnings.catch_warnings():  # some stdlib attributes (typing.io) warn when touched
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in CORPUS_MODULES:
            if max_chars and sum(map(len, texts)) >= max_chars:
                break  # enough text: importing the rest of the stdlib would only cost time
            try:
                mod = importlib.import_module(name)
            except ImportError:
                continue
            add(mod)
            for attr in sorted(vars(mod)):
                obj = getattr(mod, attr)
                if getattr(obj, "__module__", None) != mod.__name__ or attr.startswith("_"):
                    continue
                add(obj)
                if inspect.isclass(obj):
                    for meth in sorted(vars(obj)):
                        if not meth.startswith("_"):
                            add(getattr(obj, meth, None))
    return tuple(cap_chars(texts, max_chars) if max_chars else texts)


def read_corpus(source: str, max_chars: int = 0) -> list[str]:
    """Documents from 'embedded', a .txt file (blank-line separated), a folder of .txt/.md, or .jsonl {'text': ...}."""
    if source == "embedded":
        return embedded_corpus(max_chars)
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"data.source = {source!r} does not exist; give 'embedded' or a .txt/.jsonl file or folder")
    files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".md", ".jsonl")) if path.is_dir() else [path]
    texts: list[str] = []
    for f in files:
        if f.suffix == ".jsonl":
            for i, line in enumerate(f.read_text().splitlines()):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise UserError(f"{f} line {i + 1} is not valid JSON") from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise UserError(f"{f} line {i + 1} has no string field 'text'")
                texts.append(row["text"])
        else:
            texts.extend(t.strip() for t in f.read_text(errors="replace").split("\n\n") if t.strip())
    if max_chars:
        texts = cap_chars(texts, max_chars)
    if not texts:
        raise UserError(f"data.source = {source!r} holds no text; add .txt/.md files or JSONL rows with 'text'")
    return texts


def cap_chars(texts: list[str], max_chars: int) -> list[str]:
    out, total = [], 0
    for t in texts:
        if total >= max_chars:
            break
        out.append(t)
        total += len(t)
    return out


def train_tokenizer(
    texts: list[str], vocab_size: int, out_dir: str | Path | None = None, extra_special: tuple = ()
) -> Any:
    """A byte-level BPE tokenizer trained on `texts` (seconds), saved to `out_dir` when given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD, *extra_special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        unk_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(extra_special) or None,
    )
    if out_dir:
        fast.save_pretrained(str(out_dir))
    return fast


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(
            f"tokenizer folder {path} does not exist; pass a folder saved by save_pretrained, or leave it empty"
        )
    return AutoTokenizer.from_pretrained(str(path))


def pack(texts: list[str], tokenizer: Any, block_size: int) -> torch.Tensor:
    """Concatenate documents with EOS between them and cut into rows of `block_size` tokens."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        ids.append(eos)
    n = len(ids) // block_size
    if n == 0:
        raise UserError(
            f"the corpus has {len(ids)} tokens, fewer than one block of {block_size}; add text or lower data.block_size"
        )
    return torch.tensor(ids[: n * block_size], dtype=torch.long).view(n, block_size)


class Blocks(Dataset):
    """Rows of packed tokens; labels equal inputs because HF causal LMs shift them internally."""

    def __init__(self, rows: torch.Tensor, tokenizer: Any = None) -> None:
        self.rows, self.tokenizer = rows, tokenizer

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        return {"input_ids": row, "labels": row}


def text_data(cfg: TextDataConfig, out_dir: str | Path | None = None, seed: int = 0) -> tuple[Any, Blocks, Blocks]:
    """(tokenizer, train blocks, val blocks) for a TextDataConfig; the split is fixed by `seed`."""
    texts = read_corpus(cfg.source, cfg.max_chars)
    if cfg.tokenizer:
        tokenizer = load_tokenizer(cfg.tokenizer)
    else:
        tokenizer = train_tokenizer(texts, cfg.vocab_size, Path(out_dir) / "tokenizer" if out_dir else None)
    rows = pack(texts, tokenizer, cfg.block_size)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(rows), generator=gen)
    n_val = max(1, int(len(rows) * cfg.val_fraction))
    if len(rows) - n_val < 1:
        raise UserError(
            f"only {len(rows)} blocks of {cfg.block_size} tokens: nothing left to train on; "
            "add text or lower data.block_size"
        )
    val, train = rows[perm[:n_val]], rows[perm[n_val:]]
    n_train = max(1, int(math.ceil(len(train) * cfg.train_fraction)))
    if cfg.train_tokens > 0:
        n_train = math.ceil(cfg.train_tokens / cfg.block_size)
        if n_train > len(train):
            raise UserError(f"data.train_tokens = {cfg.train_tokens} exceeds the {len(train) * cfg.block_size} "
                            "training tokens available; lower it or add text to data.source")
    return tokenizer, Blocks(train[:n_train], tokenizer), Blocks(val, tokenizer)


def use_folder_tokenizer(data: TextDataConfig, model: str) -> None:
    """A checkpoint folder brings its own tokenizer: read text the way the model was trained to."""
    folder = Path(model).expanduser()
    if not data.tokenizer and looks_like_path(model) and (folder / "tokenizer_config.json").is_file():
        data.tokenizer = str(folder)


def check_vocab(model: Any, tokenizer: Any, name: str) -> None:
    """The model must embed every token id the tokenizer can produce."""
    n_emb = model.get_input_embeddings().num_embeddings
    if n_emb < len(tokenizer):
        raise UserError(f"{name}: the model has {n_emb} token embeddings but the tokenizer has {len(tokenizer)}; "
                        f"use the tokenizer saved with the model (data.tokenizer=<its folder>)")
