"""The instruction encoder, tiny and random: a T5 encoder with a SentencePiece tokenizer.

Stands in for google/flan-t5-base and loads through the same calls (`AutoTokenizer`,
`T5EncoderModel.from_pretrained`). Its width (48) differs from the tiny CLIP's embed_dim (32) on
purpose, as FLAN-T5's and CLIP's may, so the projection between them is always exercised.
`PAPER_SHAPE` is FLAN-T5-base's encoder (random weights, the same tokenizer), for benchmarks.
"""

from __future__ import annotations

import io
import string
import tempfile
from pathlib import Path

import sentencepiece
import torch
from transformers import T5Config, T5EncoderModel, T5Tokenizer

from components.random_models.corpus import corpus

D_MODEL = 48
TINY_SHAPE = {"d_model": D_MODEL, "d_kv": 16, "d_ff": 96, "num_layers": 2, "num_heads": 3}
PAPER_SHAPE = {"d_model": 768, "d_kv": 64, "d_ff": 2048, "num_layers": 12, "num_heads": 12}


def build_instruction_encoder(out: Path, seed: int, shape: dict[str, int] = TINY_SHAPE) -> Path:
    """Write the T5 encoder (tiny unless `shape` says otherwise) and its tokenizer to `out`."""
    tokenizer = sentencepiece_tokenizer(corpus(seed))
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        **shape,
        feed_forward_proj="gated-gelu",  # FLAN-T5's feed-forward
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5EncoderModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def sentencepiece_tokenizer(lines: list[str], vocab_size: int = 1000) -> T5Tokenizer:
    """A T5 tokenizer (pad 0, eos 1, unk 2, 100 sentinels) from a unigram model of `lines`."""
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a few hundred lines support fewer pieces; take what they give
        required_chars=string.ascii_letters + string.digits + string.punctuation,
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "spiece.model").write_bytes(model.getvalue())
        return T5Tokenizer.from_pretrained(folder, model_max_length=512)
