"""The captioning MLLM and the instruction LLM, tiny and random, in Qwen2.5(-VL)'s own classes.

Both share one byte-level BPE tokenizer trained on the local corpus, with Qwen2.5's special
tokens in Qwen's order and Qwen2.5-VL's chat template, so the code that prompts
Qwen/Qwen2.5-VL-7B-Instruct and Qwen/Qwen2.5-7B-Instruct prompts these the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    PreTrainedModel,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2Tokenizer,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from components.random_models.corpus import corpus

# Qwen2's pre-tokenizer split, as in transformers' Qwen2Tokenizer.
PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)  # fmt: skip
# Qwen2.5-VL-Instruct's template; plain-string contents make it serve the text LLM too.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Images are resized to at most 112x112: an 8x8 grid of 14-pixel patches, 16 tokens after merging.
MIN_PIXELS, MAX_PIXELS = 56 * 56, 112 * 112
TEXT_WIDTH = 64


def build_writer(out: Path, seed: int) -> Path:
    """Write the tiny instruction LLM (Qwen2ForCausalLM) and its tokenizer to `out`."""
    tokenizer = chat_tokenizer(corpus(seed))
    torch.manual_seed(seed)
    config = Qwen2Config(**_text_config(tokenizer), tie_word_embeddings=False)
    _save(Qwen2ForCausalLM(config), tokenizer, out)
    return out


def build_captioner(out: Path, seed: int) -> Path:
    """Write the tiny captioning MLLM (Qwen2.5-VL) and its processor to `out`."""
    tokenizer = chat_tokenizer(corpus(seed))
    token = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config=_text_config(tokenizer)
        # M-RoPE's (time, height, width) sections sum to head_dim / 2 = 64 / 4 / 2
        | {"rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3]}},
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": TEXT_WIDTH,
            "fullatt_block_indexes": [1],
            "window_size": 112,
        },
        image_token_id=token("<|image_pad|>"),
        video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"),
        vision_end_token_id=token("<|vision_end|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    sizes = {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
    colour = {"image_mean": OPENAI_CLIP_MEAN, "image_std": OPENAI_CLIP_STD}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes, **colour),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**sizes, **colour),
        chat_template=CHAT_TEMPLATE,
    )
    _save(model, processor, out)
    return out


def chat_tokenizer(lines: list[str], vocab_size: int = 1000) -> Qwen2Tokenizer:
    """A byte-level BPE over `lines` with Qwen2's pre-tokenizer, special tokens appended last."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(lines, trainer)
    learned = json.loads(bpe.to_str())["model"]
    vocab = dict(learned["vocab"])
    vocab.update({token: len(vocab) + i for i, token in enumerate(SPECIAL_TOKENS)})
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=[tuple(pair) for pair in learned["merges"]],
        unk_token=None,
        eos_token="<|im_end|>",  # the Instruct models end a turn with it
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS),
        model_max_length=4096,
        chat_template=CHAT_TEMPLATE,
    )


def _text_config(tokenizer: Qwen2Tokenizer) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": TEXT_WIDTH,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "bos_token_id": None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _save(
    model: PreTrainedModel, preprocessor: Qwen2Tokenizer | Qwen2_5_VLProcessor, out: Path
) -> None:
    text = model.config.get_text_config()
    # As Qwen2.5-Instruct: stop on <|im_end|> or <|endoftext|>, decode greedily.
    model.generation_config = GenerationConfig(
        eos_token_id=[text.eos_token_id, text.pad_token_id],
        pad_token_id=text.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(out)
    preprocessor.save_pretrained(out)
