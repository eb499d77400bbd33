"""Inheritune's initialisation: a k-block student made of the reference's first k blocks + its LM head.

Sanyal et al., "Pre-training Small Base LMs with Fewer Tokens" (arXiv 2404.08634), Algorithm 1:
the target model keeps k < L transformer blocks; blocks 0..k-1, the token embeddings and the
prediction head come from the reference, everything else starts from the usual random init
(the reference code re-initialises the final norm and GPT-2's position embeddings).

Works on any Hugging Face causal LM with a stack of blocks: the stack is found by state-dict key
(`transformer.h.<i>.`, `model.layers.<i>.`, ...), the student config is the reference config with
the layer count set to k, and tensors are copied by key renaming. From a checkpoint folder only the
tensors the student needs are read (`safetensors.safe_open` slices, sharded or not), never the whole
reference model.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from paperloom import UserError
from paperloom.checkpoint import load_checkpoint, open_safetensors
from paperloom.io import atomic_write_json

# Where the block stack lives in well-known architectures (tried first, in order).
BLOCK_PREFIXES = ("transformer.h", "model.layers", "gpt_neox.layers", "model.decoder.layers", "transformer.blocks",
                  "transformer.layers", "model.transformer.h", "backbone.layers", "layers", "h")
LAYER_FIELDS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
CATEGORIES = ("block", "embeddings", "head", "final_norm", "position_embeddings", "other")
TOKENIZER_FILES = ("tokenizer*", "vocab*", "merges.txt", "special_tokens_map.json", "added_tokens.json", "*.model",
                   "*.tiktoken", "chat_template*", "generation_config.json", "*.py")


@dataclass
class Plan:
    """Which reference tensor fills which student tensor, and what is left to its random init."""

    prefix: str  # the block stack, e.g. "transformer.h"
    blocks: list[int]  # reference block index of student block i
    copy: dict[str, str] = field(default_factory=dict)  # student key -> reference key
    reinit: dict[str, str] = field(default_factory=dict)  # student key -> category (kept at random init)
    aliases: list[str] = field(default_factory=list)  # tied student keys filled through another key

    def summary(self) -> dict[str, float]:
        return {"blocks_copied": len(self.blocks), "tensors_copied": len(self.copy), "tensors_reinit": len(self.reinit)}


# --------------------------------------------------------------------------- finding the pieces


def layer_field(config: Any) -> str:
    """The config attribute holding the number of blocks (`n_layer` for GPT-2, `num_hidden_layers` for Llama...)."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    for name in LAYER_FIELDS:
        if isinstance(data.get(name), int):
            return name
    raise UserError(f"config of model_type {data.get('model_type')!r} has none of the layer-count fields "
                    f"{', '.join(LAYER_FIELDS)}; Inheritune needs a model with a stack of transformer blocks")


def find_block_prefix(keys: Iterable[str], n_layers: int, where: str = "the reference") -> str:
    """The state-dict prefix P such that the keys `P.0.*` .. `P.{n_layers-1}.*` are the blocks."""
    indices: dict[str, set[int]] = {}
    pattern = re.compile(r"^(.+?)\.(\d+)\.")
    keys = list(keys)
    for key in keys:
        m = pattern.match(key)
        if m:
            indices.setdefault(m.group(1), set()).add(int(m.group(2)))
    full = set(range(n_layers))
    for prefix in BLOCK_PREFIXES:
        if indices.get(prefix) == full:
            return prefix
    generic = [p for p, idx in indices.items() if idx == full]
    if len(generic) == 1:
        return generic[0]
    found = ", ".join(f"{p} ({len(i)} blocks)" for p, i in sorted(indices.items())) or "no indexed keys at all"
    raise UserError(f"cannot find the stack of {n_layers} transformer blocks in {where}: tried "
                    f"{', '.join(BLOCK_PREFIXES)} and any '<prefix>.<i>.' keys; found {found}. Inheritune needs "
                    "blocks stored as <prefix>.<index>.*")


def resolve_blocks(spec: Any, n_layers: int, where: str = "inherit") -> list[int]:
    """Reference block indices the student copies: the first k (paper) or the explicit list."""
    if spec.blocks:
        bad = [b for b in spec.blocks if not 0 <= b < n_layers]
        if bad:
            raise UserError(f"{where}.blocks = {list(spec.blocks)}: block {bad[0]} is out of range; the reference has "
                            f"{n_layers} blocks (0..{n_layers - 1})")
        if spec.k and spec.k != len(spec.blocks):
            raise UserError(f"{where}.k = {spec.k} but {where}.blocks lists {len(spec.blocks)} blocks; set k to 0 "
                            f"or to {len(spec.blocks)}")
        return list(spec.blocks)
    k = spec.k or n_layers // 2
    if not 1 <= k <= n_layers:
        raise UserError(f"{where}.k = {spec.k} is out of range; the reference has {n_layers} blocks, so k must be "
                        f"1..{n_layers} (0 = half, {n_layers // 2})")
    return list(range(k))


def student_config(ref_config: Any, blocks: list[int]) -> Any:
    """The reference config with its layer count set to k (and per-layer lists such as `layer_types` subset)."""
    cfg = copy.deepcopy(ref_config)
    name = layer_field(cfg)
    n = getattr(cfg, name)
    for key, value in cfg.to_dict().items():
        if isinstance(value, list) and len(value) == n and "layer" in key and hasattr(cfg, key):
            setattr(cfg, key, [value[b] for b in blocks])
    setattr(cfg, name, len(blocks))
    return cfg


def _module_names(model: torch.nn.Module, module: Any) -> set[str]:
    if module is None:
        return set()
    return {name for name, m in model.named_modules() if m is module}


def categorize(student: torch.nn.Module, prefix: str) -> Callable[[str], str]:
    """A function mapping a student state-dict key to one of CATEGORIES."""
    emb = _module_names(student, student.get_input_embeddings())
    head = _module_names(student, getattr(student, "get_output_embeddings", lambda: None)())
    position = {n for n, m in student.named_modules() if isinstance(m, torch.nn.Embedding) and n not in emb}
    named = r"(^|\.)(wpe|embed_positions|position_embeddings|pos_emb)$"
    position |= {n for n, _ in student.named_modules() if re.search(named, n)}

    def category(key: str) -> str:
        if key.startswith(prefix + "."):
            return "block"
        module = key.rsplit(".", 1)[0]
        if module in head:
            return "head"
        if module in emb:
            return "embeddings"
        if module in position:
            return "position_embeddings"
        leaf = module.rsplit(".", 1)[-1].lower()
        if "norm" in leaf or leaf in ("ln_f", "ln_out", "final_layernorm"):
            return "final_norm"
        return "other"

    return category


def is_tied(model: torch.nn.Module) -> bool:
    out = getattr(model, "get_output_embeddings", lambda: None)()
    return out is not None and out.weight is model.get_input_embeddings().weight


def make_plan(student: torch.nn.Module, prefix: str, blocks: list[int], spec: Any) -> Plan:
    """Map every student tensor to the reference tensor it copies, or mark it re-initialised (by category)."""
    tied = is_tied(student)
    wanted = {"block": True, "head": spec.copy_head or (tied and spec.copy_embeddings),
              "embeddings": spec.copy_embeddings or (tied and spec.copy_head), "final_norm": spec.copy_final_norm,
              "position_embeddings": spec.copy_position_embeddings, "other": spec.copy_other}
    category = categorize(student, prefix)
    plan = Plan(prefix=prefix, blocks=blocks)
    block_key = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.+)$")
    seen: dict[int, str] = {}
    for key, tensor in student.state_dict(keep_vars=True).items():
        if id(tensor) in seen:  # tied weights appear under two keys; one copy fills both
            plan.aliases.append(key)
            continue
        seen[id(tensor)] = key
        cat = category(key)
        if not wanted[cat]:
            plan.reinit[key] = cat
            continue
        m = block_key.match(key)
        plan.copy[key] = f"{prefix}.{blocks[int(m.group(1))]}.{m.group(2)}" if m else key
    return plan


# --------------------------------------------------------------------------- reading tensors lazily


class TensorSource:
    """Read single tensors from a checkpoint folder without loading the rest: safetensors (one file or
    shards with `model.safetensors.index.json`), else a PyTorch `.bin` memory-mapped."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bytes_read = 0
        self._open: dict[str, Any] = {}
        index = folder / "model.safetensors.index.json"
        single = folder / "model.safetensors"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UserError(f"{index} is not a valid safetensors index (needs a 'weight_map'): {exc}") from None
            missing = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
            if missing:
                raise UserError(f"{index} names shard {missing[0]}, which is missing from {folder}; copy every shard")
            self.map = dict(weight_map)
        elif single.is_file():
            self.map = {k: "model.safetensors" for k in self._safe(single.name).keys()}
        else:
            bins = sorted(folder.glob("pytorch_model*.bin"))
            if not bins:
                raise UserError(f"{folder} holds no weights (model.safetensors, model.safetensors.index.json or "
                                "pytorch_model.bin); pass a folder saved by save_pretrained")
            self.map = {}
            for b in bins:
                state = load_checkpoint(b, mmap=True)  # weights only; a torn file is a one-line error
                self._open[b.name] = state
                self.map.update({k: b.name for k in state})

    def _safe(self, name: str) -> Any:
        if name not in self._open:
            self._open[name] = open_safetensors(self.folder / name)  # a torn file is a one-line error
        return self._open[name]

    def keys(self) -> list[str]:
        return list(self.map)

    def get(self, key: str) -> torch.Tensor:
        name = self.map[key]
        handle = self._open.get(name) if name.endswith(".bin") else self._safe(name)
        tensor = handle[key] if isinstance(handle, dict) else handle.get_tensor(key)
        self.bytes_read += tensor.numel() * tensor.element_size()
        return tensor


# --------------------------------------------------------------------------- building the student


def _gather(skeleton: torch.nn.Module, plan: Plan, get: Callable[[str], torch.Tensor], has: Callable[[str], bool],
            where: str) -> dict[str, torch.Tensor]:
    """The copied tensors, keyed by student key, checked against the student's shapes."""
    expected = skeleton.state_dict()
    state = {}
    for skey, rkey in plan.copy.items():
        if not has(rkey):
            raise UserError(f"{where} has no tensor {rkey!r} although its config implies it (needed for student "
                            f"{skey!r}); the checkpoint does not match its config.json")
        tensor = get(rkey)
        if tuple(tensor.shape) != tuple(expected[skey].shape):
            raise UserError(f"{where}: tensor {rkey!r} has shape {tuple(tensor.shape)} but the student needs "
                            f"{tuple(expected[skey].shape)}; the checkpoint does not match its config.json")
        state[skey] = tensor
    return state


def _skeleton(make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The student's structure on the meta device: no memory, no init cost."""
    with torch.device("meta"):
        return make()


def _materialize(skeleton: torch.nn.Module, state: dict[str, torch.Tensor], seed: int) -> torch.nn.Module:
    """The real student: copied tensors loaded, every other tensor drawn by the architecture's own init (seeded).
    transformers' loader initialises only the missing tensors, so nothing is initialised twice."""
    from transformers.utils import logging as hf_logging

    floats = {t.dtype for t in state.values() if t.is_floating_point()}
    dtype = floats.pop() if len(floats) == 1 else torch.float32  # keep the reference's precision (bf16 stays bf16)
    torch.manual_seed(seed)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the re-initialised tensors are reported by the plan, not as "missing" warnings
    hf_logging.disable_progress_bar()
    try:
        student = type(skeleton).from_pretrained(None, config=skeleton.config, state_dict=state, dtype=dtype)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return student.train()


def inherit_from_model(reference: torch.nn.Module, spec: Any, seed: int = 0) -> tuple[torch.nn.Module, Plan]:
    """Student of an in-memory reference model (same class, k blocks); re-initialised tensors drawn with `seed`."""
    n = getattr(reference.config, layer_field(reference.config))
    ref_state = reference.state_dict()
    where = f"the reference {type(reference).__name__}"
    prefix = find_block_prefix(ref_state, n, where)
    blocks = resolve_blocks(spec, n)
    config = student_config(reference.config, blocks)
    skeleton = _skeleton(lambda: type(reference)(config))
    plan = make_plan(skeleton, prefix, blocks, spec)
    state = _gather(skeleton, plan, lambda k: ref_state[k].detach().clone(), ref_state.__contains__, where)
    return _materialize(skeleton, state, seed), plan


def load_config(folder: Path, trust_remote_code: bool = False) -> Any:
    """AutoConfig of a local folder; a model type another plugin defines (Megalodon) is registered first."""
    from paperloom_lm.hf import register_model_type
    from transformers import AutoConfig

    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} is not a checkpoint folder (no config.json); pass a folder saved by save_pretrained")
    if not trust_remote_code:  # custom code registers itself; else the plugin that declares the model_type does
        register_model_type(folder)
    try:
        return AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError) as exc:
        raise UserError(f"{folder}/config.json: transformers does not know this model ({exc}); install the plugin "
                        "that defines it, or set inherit.trust_remote_code=true") from None


def checkpoint_key_map(model: torch.nn.Module, file_keys: Iterable[str]) -> dict[str, str] | None:
    """Model state-dict key -> checkpoint key, through the renamings transformers applies when loading (e.g.
    GPT-NeoX's `embed_out` -> `lm_head`). None when a weight converter (fused or split tensors) is involved:
    then tensors cannot be copied one by one and the caller falls back to a full load."""
    file_keys = list(file_keys)
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightRenaming, rename_source_key

        transforms = get_model_conversion_mapping(model)
        renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
        converters = [t for t in transforms if not isinstance(t, WeightRenaming)]
        out = {}
        for key in file_keys:
            new, converter = rename_source_key(key, renamings, converters)
            if converter is not None:
                return None
            out[new] = key
        return out
    except (ImportError, TypeError, AttributeError):  # transformers 4.x has no load-time renamings
        return {k: k for k in file_keys}


def full_load_inherit(folder: str | Path, spec: Any, seed: int = 0) -> tuple[torch.nn.Module, Plan, dict]:
    """The naive way (and the fallback): load the whole reference with `from_pretrained`, then take the student."""
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    folder = Path(folder).expanduser()
    load_config(folder, spec.trust_remote_code)  # clear errors and Auto registration first
    reference = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype="auto",
                                                     trust_remote_code=spec.trust_remote_code)
    student, plan = inherit_from_model(reference, spec, seed)
    nbytes = sum(t.numel() * t.element_size() for t in reference.state_dict().values())
    return student, plan, {"bytes_read": float(nbytes), "inherit_seconds": time.perf_counter() - t0, "sliced": 0.0}


def inherit_from_folder(folder: str | Path, spec: Any, seed: int = 0) -> tuple[torch.nn.Module, Plan, dict]:
    """Student of a reference checkpoint folder, reading only the tensors it copies. Returns (student, plan, stats)."""
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"reference folder {folder} does not exist; pass a checkpoint folder saved by save_pretrained")
    config = load_config(folder, spec.trust_remote_code)
    n = getattr(config, layer_field(config))
    source = TensorSource(folder)
    blocks = resolve_blocks(spec, n)
    cfg = student_config(config, blocks)
    skeleton = _skeleton(lambda: AutoModelForCausalLM.from_config(cfg, trust_remote_code=spec.trust_remote_code))
    key_map = checkpoint_key_map(skeleton, source.keys())
    if key_map is None:
        return full_load_inherit(folder, spec, seed)
    prefix = find_block_prefix(key_map, n, str(folder))
    plan = make_plan(skeleton, prefix, blocks, spec)
    state = _gather(skeleton, plan, lambda k: source.get(key_map[k]), key_map.__contains__, str(folder))
    student = _materialize(skeleton, state, seed)
    stats = {"bytes_read": float(source.bytes_read), "inherit_seconds": time.perf_counter() - t0, "sliced": 1.0}
    return student, plan, stats


def save_student(student: torch.nn.Module, out: str | Path, plan: Plan, reference: str = "",
                 tokenizer: Any = None) -> Path:
    """Save the student as a normal HF checkpoint folder (+ the reference's tokenizer files and `inheritune.json`)."""
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} already holds files; choose an empty or new folder for the student")
    out.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(str(out), safe_serialization=True)
    src = Path(reference).expanduser() if reference else None
    if src is not None and src.is_dir():
        for pattern in TOKENIZER_FILES:
            for f in src.glob(pattern):
                if f.is_file():
                    shutil.copy2(f, out / f.name)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    cats = sorted(set(plan.reinit.values()))
    atomic_write_json(out / "inheritune.json", {
        "reference": str(src.resolve()) if src is not None and src.is_dir() else reference,
        "block_prefix": plan.prefix, "reference_blocks": plan.blocks, "copied": plan.copy,
        "reinitialised": plan.reinit, "reinitialised_categories": cats, "tied_aliases": plan.aliases,
    })
    return out


def count_params(model: torch.nn.Module) -> int:
    """Unique parameters (`parameters()` yields a tied tensor once)."""
    return sum(p.numel() for p in model.parameters())


def random_student(folder: str | Path, spec: Any, seed: int = 0) -> torch.nn.Module:
    """The baseline: the same k-block architecture as the student of `folder`, every tensor at random init."""
    from transformers import AutoModelForCausalLM

    config = load_config(Path(folder).expanduser(), spec.trust_remote_code)
    blocks = resolve_blocks(spec, getattr(config, layer_field(config)))
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(student_config(config, blocks), trust_remote_code=spec.trust_remote_code)
