"""One tokenizer interface: a CLIP tokenizer from a local folder (openai's BPE: `AutoTokenizer.from_pretrained`)
or a byte-level BPE trained with `tokenizers` on the captions (the demo). Both are Hugging Face tokenizers that
add start/end tokens, so the text tower pools the end-of-text token either way."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from paperloom import UserError

BOS, EOS, PAD, UNK = "<|startoftext|>", "<|endoftext|>", "<pad>", "<unk>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> Any:
    """A lower-cased BPE on `texts` wrapped as a PreTrainedTokenizerFast that adds <|startoftext|> ... <|endoftext|>.
    The end token's id is not 2 (HF CLIPTextModel treats eos_token_id == 2 as the legacy argmax pooling)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.BPEDecoder()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK, BOS, EOS], show_progress=False)
    texts = list(texts)
    if not texts:
        raise UserError("no captions to train a tokenizer on; the data is empty")
    tok.train_from_iterator(texts, trainer)
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A {EOS}", special_tokens=[(BOS, bos),
                                                                                                   (EOS, eos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK)


def load_tokenizer(folder: str | Path) -> Any:
    """The tokenizer saved in a model folder (tokenizer.json / vocab.json + merges.txt)."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.json", "tokenizer_config.json")):
        raise UserError(f"{folder} has no tokenizer files (tokenizer.json or vocab.json + merges.txt); save one there "
                        "or set tokenizer=train")
    tok = AutoTokenizer.from_pretrained(str(folder))
    if tok.pad_token is None:  # openai's CLIP tokenizer pads with <|endoftext|>
        tok.pad_token = tok.eos_token
    return tok


def special_ids(tokenizer: Any) -> dict[str, int]:
    return {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id}


def tokenize(tokenizer: Any, texts: list[str], context_length: int) -> dict[str, torch.Tensor]:
    """{"input_ids", "attention_mask"}: (B, context_length), truncated keeping the end token, padded."""
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=context_length,
                    return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
