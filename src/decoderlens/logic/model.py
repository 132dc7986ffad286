"""The logic task's word-level tokenizer and encoder-decoder model, as ordinary Hugging Face objects."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

from decoderlens.logic.config import ModelShape
from decoderlens.logic.formulas import BINARY, UNARY, VALUES, VARIABLES

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over the task's symbols that appends ``</s>``."""
    symbols = [*SPECIAL_TOKENS, *VARIABLES, *UNARY, *BINARY, *VALUES]
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=64,
    )


def build_model(vocab_size: int, shape: ModelShape | None = None) -> T5ForConditionalGeneration:
    """A randomly initialised T5 encoder-decoder of the given shape (default: ``ModelShape()``)."""
    shape = shape or ModelShape()
    config = T5Config(  # type: ignore[call-arg]
        vocab_size=vocab_size,
        d_model=shape.d_model,
        d_kv=shape.d_model // shape.num_heads,
        d_ff=shape.d_ff,
        num_layers=shape.num_layers,
        num_decoder_layers=shape.num_layers,
        num_heads=shape.num_heads,
        dropout_rate=shape.dropout,
        relative_attention_num_buckets=shape.position_buckets,
        relative_attention_max_distance=shape.position_buckets // 2,
        feed_forward_proj="relu",
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    model = T5ForConditionalGeneration(config)
    # T5's untied output head starts with unit-variance weights, i.e. huge logits; scale it to 1/sqrt(d).
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, shape.d_model**-0.5)
    return model
