"""Tiny random encoder-decoder models of every supported family, for tests and benchmarks.

Weights are re-initialised with a larger scale so that different encoder layers read out as different
text: a default-initialised random model repeats one token for every input and every layer, which would
make the method's invariants pass vacuously.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import transformers as tf
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from decoderlens.adapter import ModelAdapter, module_at

VOCAB_WORDS = [f"w{i}" for i in range(56)]
SPECIALS = ["<pad>", "</s>", "<s>", "<unk>"]
VOCAB_SIZE = len(SPECIALS) + len(VOCAB_WORDS)
PAD, EOS, BOS = 0, 1, 2
SAMPLE_RATE = 16_000


def word_tokenizer(with_bos: bool = False) -> tf.PreTrainedTokenizerFast:
    """A word-level tokenizer over ``w0 .. w55`` that appends ``</s>`` (and optionally prepends ``<s>``)."""
    vocab = {w: i for i, w in enumerate([*SPECIALS, *VOCAB_WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    single = "<s> $A </s>" if with_bos else "$A </s>"
    core.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<s>", BOS), ("</s>", EOS)]
    )
    return tf.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", bos_token="<s>", unk_token="<unk>"
    )


def _is_norm(name: str) -> bool:
    """Whether a parameter belongs to a norm (``layer_norm``, ``layernorm``, GPT-2's ``ln_1`` and ``ln_f``)."""
    return "norm" in name.lower() or any(part.startswith("ln_") for part in name.split("."))


def spread_weights(model: Any, seed: int = 0, std: float = 0.35, eos_boost: float = 2.5) -> None:
    """Re-initialise weights at a large scale so that layers and inputs read out differently.

    Matrices get a large std; norm weights are perturbed away from 1 (so that applying the wrong norm
    changes results); the end-of-sequence row of the output head is scaled up so that some rows stop
    early and others do not, which exercises finished-row handling in batched decoding.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "relative_attention_bias" not in name:
                fan_in = param.shape[-1] if param.dim() == 2 else int(np.prod(param.shape[1:]))
                scale = std * (3.0 if param.dim() == 2 else 1.0) / max(1.0, fan_in**0.5) * 4
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
            elif param.dim() == 1 and _is_norm(name) and name.endswith("weight"):
                param.copy_(1.0 + 0.3 * torch.randn(param.shape, generator=gen))
        head = model.get_output_embeddings()
        if head is not None:
            head.weight[EOS] *= eos_boost


_SEQ2SEQ: dict[str, Any] = dict(d_model=32, encoder_layers=3, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                max_position_embeddings=128, vocab_size=VOCAB_SIZE, pad_token_id=PAD, eos_token_id=EOS,
                bos_token_id=BOS, decoder_start_token_id=EOS, forced_eos_token_id=None)
_T5: dict[str, Any] = dict(vocab_size=VOCAB_SIZE, d_model=32, d_kv=8, d_ff=64, num_layers=3, num_decoder_layers=2,
           num_heads=4, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD)
_BERT: dict[str, Any] = dict(vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
             intermediate_size=64, pad_token_id=PAD)


def _composite(config_cls: Any, model_cls: Any, encoder: Any, decoder: Any) -> torch.nn.Module:
    config = config_cls.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = BOS, PAD, EOS
    return model_cls(config=config)  # type: ignore[no-any-return]


def _gpt2_decoder() -> tf.GPT2Config:
    """A cross-attending GPT-2 decoder wider than the encoders (its head untied, so that the boosted
    end-of-sequence row ends some readouts early, not all)."""
    return tf.GPT2Config(vocab_size=VOCAB_SIZE, n_embd=48, n_layer=2, n_head=4, n_positions=128,
                         add_cross_attention=True, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
                         tie_word_embeddings=False)


def _bert2bert() -> torch.nn.Module:
    dec = tf.BertConfig(**{**_BERT, "num_hidden_layers": 2}, is_decoder=True, add_cross_attention=True)
    return _composite(tf.EncoderDecoderConfig, tf.EncoderDecoderModel, tf.BertConfig(**_BERT), dec)


def bert2gpt2() -> torch.nn.Module:
    """A text encoder-decoder of a BERT encoder and a GPT-2 decoder, with spread weights, in eval mode."""
    torch.manual_seed(0)
    model = _composite(tf.EncoderDecoderConfig, tf.EncoderDecoderModel, tf.BertConfig(**_BERT), _gpt2_decoder())
    spread_weights(model)
    return model.eval()


def _vit_decoder() -> torch.nn.Module:
    """ViT with a cross-attending GPT-2 decoder, the pairing of image-captioning checkpoints."""
    enc = tf.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=3,
                       num_attention_heads=4, intermediate_size=64)
    return _composite(tf.VisionEncoderDecoderConfig, tf.VisionEncoderDecoderModel, enc, _gpt2_decoder())


def _whisper() -> torch.nn.Module:
    config = tf.WhisperConfig(vocab_size=VOCAB_SIZE, num_mel_bins=16, encoder_layers=3, decoder_layers=2,
                              d_model=32, encoder_attention_heads=4, decoder_attention_heads=4,
                              encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=50,
                              max_target_positions=64, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS,
                              decoder_start_token_id=BOS, begin_suppress_tokens=None, suppress_tokens=None)
    return tf.WhisperForConditionalGeneration(config)


def _speech2text() -> torch.nn.Module:
    config = tf.Speech2TextConfig(**{k: v for k, v in _SEQ2SEQ.items() if k != "max_position_embeddings"},
                                  max_source_positions=256, max_target_positions=64, input_feat_per_channel=16,
                                  num_conv_layers=2, conv_channels=32, conv_kernel_sizes=[5, 5])
    return tf.Speech2TextForConditionalGeneration(config)


def _speecht5() -> torch.nn.Module:
    config = tf.SpeechT5Config(vocab_size=VOCAB_SIZE, hidden_size=32, encoder_layers=3, decoder_layers=2,
                               encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                               decoder_ffn_dim=64, conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 8),
                               num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                               max_speech_positions=512, max_text_positions=128, pad_token_id=PAD,
                               eos_token_id=EOS, bos_token_id=BOS, decoder_start_token_id=BOS,
                               mask_time_prob=0.0)
    return tf.SpeechT5ForSpeechToText(config)


@dataclass(frozen=True)
class TinyFamily:
    """How to build one family's tiny model and the kind of input it reads."""

    name: str
    build: Callable[[], torch.nn.Module]
    modality: str = "text"
    tokenizer_bos: bool = False


def _s2s(config_cls: Any, model_cls: Any, **extra: Any) -> Callable[[], torch.nn.Module]:
    return lambda: model_cls(config_cls(**{**_SEQ2SEQ, **extra}))


def _t5(config_cls: Any, model_cls: Any, **extra: Any) -> Callable[[], torch.nn.Module]:
    return lambda: model_cls(config_cls(**{**_T5, **extra}))


TINY_FAMILIES: dict[str, TinyFamily] = {
    f.name: f
    for f in [
        TinyFamily("t5", _t5(tf.T5Config, tf.T5ForConditionalGeneration)),
        TinyFamily("mt5", _t5(tf.MT5Config, tf.MT5ForConditionalGeneration)),
        TinyFamily("umt5", _t5(tf.UMT5Config, tf.UMT5ForConditionalGeneration)),
        TinyFamily("longt5", _t5(tf.LongT5Config, tf.LongT5ForConditionalGeneration, local_radius=4)),
        TinyFamily("switch_transformers", _t5(tf.SwitchTransformersConfig,
                   tf.SwitchTransformersForConditionalGeneration, num_experts=2, expert_capacity=64,
                   num_sparse_encoder_layers=1, num_sparse_decoder_layers=1)),
        TinyFamily("bart", _s2s(tf.BartConfig, tf.BartForConditionalGeneration), tokenizer_bos=True),
        TinyFamily("mbart", _s2s(tf.MBartConfig, tf.MBartForConditionalGeneration)),
        TinyFamily("marian", _s2s(tf.MarianConfig, tf.MarianMTModel, decoder_start_token_id=PAD)),
        TinyFamily("m2m_100", _s2s(tf.M2M100Config, tf.M2M100ForConditionalGeneration)),
        TinyFamily("nllb-moe", _s2s(tf.NllbMoeConfig, tf.NllbMoeForConditionalGeneration, num_experts=2,
                   expert_capacity=64, encoder_sparse_step=2, decoder_sparse_step=2)),
        TinyFamily("pegasus", _s2s(tf.PegasusConfig, tf.PegasusForConditionalGeneration,
                   decoder_start_token_id=PAD)),
        TinyFamily("pegasus_x", _s2s(tf.PegasusXConfig, tf.PegasusXForConditionalGeneration,
                   decoder_start_token_id=PAD, num_global_tokens=4, block_size=8, stagger_local_blocks=False)),
        TinyFamily("led", _s2s(tf.LEDConfig, tf.LEDForConditionalGeneration, attention_window=8,
                   max_encoder_position_embeddings=128, max_decoder_position_embeddings=64),
                   tokenizer_bos=True),
        TinyFamily("blenderbot", _s2s(tf.BlenderbotConfig, tf.BlenderbotForConditionalGeneration)),
        TinyFamily("blenderbot-small", _s2s(tf.BlenderbotSmallConfig,
                   tf.BlenderbotSmallForConditionalGeneration)),
        TinyFamily("plbart", _s2s(tf.PLBartConfig, tf.PLBartForConditionalGeneration)),
        TinyFamily("mvp", _s2s(tf.MvpConfig, tf.MvpForConditionalGeneration), tokenizer_bos=True),
        TinyFamily("bigbird_pegasus", _s2s(tf.BigBirdPegasusConfig, tf.BigBirdPegasusForConditionalGeneration,
                   attention_type="original_full")),
        TinyFamily("fsmt", lambda: tf.FSMTForConditionalGeneration(tf.FSMTConfig(
                   langs=["en", "de"], src_vocab_size=VOCAB_SIZE, tgt_vocab_size=VOCAB_SIZE, d_model=32,
                   encoder_layers=3, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                   encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=PAD,
                   eos_token_id=EOS, bos_token_id=BOS, decoder_start_token_id=EOS, tie_word_embeddings=False,
                   forced_eos_token_id=None))),
        TinyFamily("prophetnet", lambda: tf.ProphetNetForConditionalGeneration(tf.ProphetNetConfig(
                   vocab_size=VOCAB_SIZE, hidden_size=32, num_encoder_layers=3, num_decoder_layers=2,
                   num_encoder_attention_heads=4, num_decoder_attention_heads=4, encoder_ffn_dim=64,
                   decoder_ffn_dim=64, ngram=2, num_buckets=8, relative_max_distance=32,
                   max_position_embeddings=128, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS,
                   decoder_start_token_id=BOS))),
        TinyFamily("encoder-decoder", _bert2bert),
        TinyFamily("whisper", _whisper, modality="speech"),
        TinyFamily("speech_to_text", _speech2text, modality="speech"),
        TinyFamily("speecht5", _speecht5, modality="speech"),
        TinyFamily("vision-encoder-decoder", _vit_decoder, modality="vision"),
    ]
}


def tiny_model(family: str, seed: int = 0) -> Any:
    """A tiny random model of ``family`` in eval mode with spread weights."""
    torch.manual_seed(seed)
    model: Any = TINY_FAMILIES[family].build()
    spread_weights(model, seed)
    model.eval()
    model.generation_config.max_new_tokens = 8
    return model


def tiny_processor(family: str) -> Any:
    """The tokenizer (text) or processor (speech, vision) that goes with ``tiny_model(family)``."""
    spec = TINY_FAMILIES[family]
    tokenizer = word_tokenizer(with_bos=spec.tokenizer_bos)
    if spec.modality == "text":
        return tokenizer
    fe: Any
    if family == "whisper":
        fe = tf.WhisperFeatureExtractor(feature_size=16, sampling_rate=SAMPLE_RATE, chunk_length=1, n_fft=400,
                                        hop_length=160)
        return tf.WhisperProcessor(feature_extractor=fe, tokenizer=tokenizer)
    if family == "speech_to_text":
        fe = tf.Speech2TextFeatureExtractor(feature_size=16, num_mel_bins=16, sampling_rate=SAMPLE_RATE)
        return tf.Speech2TextProcessor(feature_extractor=fe, tokenizer=tokenizer)
    if family == "speecht5":
        fe = tf.SpeechT5FeatureExtractor(sampling_rate=SAMPLE_RATE, return_attention_mask=True)
        return tf.SpeechT5Processor(feature_extractor=fe, tokenizer=tokenizer)
    ip = tf.ViTImageProcessorPil(size={"height": 32, "width": 32})
    return tf.TrOCRProcessor(image_processor=ip, tokenizer=tokenizer)


def sample_texts(count: int, seed: int = 0, min_len: int = 2, max_len: int = 12) -> list[str]:
    """Random word sequences of varied length (so that batches need padding)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VOCAB_WORDS, size=int(rng.integers(min_len, max_len + 1))))
            for _ in range(count)]


def sample_waveforms(count: int, seed: int = 0) -> list[np.ndarray]:
    """Random 16 kHz waveforms of varied length (0.3 to 0.9 s): tones plus noise."""
    rng = np.random.default_rng(seed)
    waves = []
    for _ in range(count):
        n = int(rng.integers(int(0.3 * SAMPLE_RATE), int(0.9 * SAMPLE_RATE)))
        t = np.arange(n) / SAMPLE_RATE
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(n)
        waves.append(wave.astype(np.float32))
    return waves


def sample_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Random 32x32 RGB images as uint8 arrays."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8) for _ in range(count)]


@contextlib.contextmanager
def truncated_encoder(model: Any, num_blocks: int) -> Iterator[None]:
    """Temporarily keep only the first ``num_blocks`` encoder blocks: the naive way to read a layer, which a readout
    of that layer must equal."""
    adapter = ModelAdapter(model)
    parent_path, _, name = adapter.layout.layers.rpartition(".")
    parent = module_at(adapter.encoder, parent_path) if parent_path else adapter.encoder
    full = getattr(parent, name)
    setattr(parent, name, torch.nn.ModuleList(list(full)[:num_blocks]))
    try:
        yield
    finally:
        setattr(parent, name, full)
