"""Configuration of the FAVOR model: frozen dataclasses, nested, JSON round-trippable.

Every size in the model comes from here. Derived sizes are properties, never
stored twice:

    D  = visual.qformer_hidden_size           width of one modality half (768 published)
    2D = FavorConfig.slot_width                width of a synced slot and of the causal Q-Former's encoder
    S_a = ceil(speech.frame_rate_hz / fps)     speech frames per video frame (25 at 2 FPS)
    S  = max(visual.num_query_tokens, S_a)     slots per frame after padding (32 published)
    L*S = FavorConfig.window_tokens            slots per window (320 published)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MASK_MODES = ("causal", "released", "none")  # none: no causal module (ablation): queries read the input slots
AUDIO_SYNC_MODES = ("frame", "clip")  # clip: no sync (ablation): every frame's audio slots hold the clip-mean speech


class ConfigError(ValueError):
    """A configuration is inconsistent (sizes that do not divide, unknown mask mode, ...)."""


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise ConfigError(reason)


@dataclass(frozen=True)
class VisualConfig:
    """InstructBLIP vision tower (EVA-ViT-g/14 in the release) + its instruction-conditioned Q-Former."""

    source: str | None = None  # InstructBLIP hub id or local dir; None = random init from the sizes below
    image_size: int = 224
    patch_size: int = 14
    num_channels: int = 3
    hidden_size: int = 1408
    num_hidden_layers: int = 39
    num_attention_heads: int = 16
    intermediate_size: int = 6144
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02  # random init only (InstructBLIP's own default 1e-10 gives dead features)
    qformer_hidden_size: int = 768
    qformer_num_hidden_layers: int = 12
    qformer_num_attention_heads: int = 12
    qformer_intermediate_size: int = 3072
    qformer_cross_attention_frequency: int = 2
    qformer_vocab_size: int = 30523
    qformer_max_position_embeddings: int = 512
    qformer_layer_norm_eps: float = 1e-12
    qformer_pad_token_id: int = 0
    num_query_tokens: int = 32  # Nq
    image_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    image_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    instruction: str = ""  # text given to the Q-Former with its queries ("" = unconditioned)
    # The tokenised instruction (filled at load from the source's Q-Former tokenizer when empty).
    instruction_token_ids: tuple[int, ...] = ()
    frame_batch_size: int = 64  # frames per vision forward: bounds activation memory

    def __post_init__(self):
        _check(self.image_size % self.patch_size == 0,
               f"image_size {self.image_size} % patch_size {self.patch_size} != 0")
        _check(self.hidden_size % self.num_attention_heads == 0, "vision hidden_size % heads != 0")
        _check(self.qformer_hidden_size % self.qformer_num_attention_heads == 0, "qformer hidden_size % heads != 0")
        _check(len(self.image_mean) == self.num_channels and len(self.image_std) == self.num_channels,
               "image_mean/image_std need one value per channel")
        _check(all(0 <= t < self.qformer_vocab_size for t in self.instruction_token_ids),
               "instruction_token_ids outside the Q-Former vocabulary")
        _check(self.frame_batch_size >= 1, "frame_batch_size must be >= 1")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_image_tokens(self) -> int:
        return self.num_patches + 1  # + class token

    def vision_hf_config(self):
        from transformers import InstructBlipVisionConfig

        return InstructBlipVisionConfig(
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
        )

    def qformer_hf_config(self):
        from transformers import InstructBlipQFormerConfig

        return InstructBlipQFormerConfig(
            vocab_size=self.qformer_vocab_size,
            hidden_size=self.qformer_hidden_size,
            num_hidden_layers=self.qformer_num_hidden_layers,
            num_attention_heads=self.qformer_num_attention_heads,
            intermediate_size=self.qformer_intermediate_size,
            max_position_embeddings=self.qformer_max_position_embeddings,
            layer_norm_eps=self.qformer_layer_norm_eps,
            pad_token_id=self.qformer_pad_token_id,
            cross_attention_frequency=self.qformer_cross_attention_frequency,
            encoder_hidden_size=self.hidden_size,
        )

    def with_hf_sizes(self, hf_config) -> "VisualConfig":
        """This config with every size taken from a transformers InstructBlipConfig (what a source really holds)."""
        v, q = hf_config.vision_config, hf_config.qformer_config
        image_size = v.image_size if isinstance(v.image_size, int) else v.image_size[0]
        patch_size = v.patch_size if isinstance(v.patch_size, int) else v.patch_size[0]
        return dataclasses.replace(
            self,
            image_size=image_size,
            patch_size=patch_size,
            num_channels=getattr(v, "num_channels", self.num_channels),
            hidden_size=v.hidden_size,
            num_hidden_layers=v.num_hidden_layers,
            num_attention_heads=v.num_attention_heads,
            intermediate_size=v.intermediate_size,
            layer_norm_eps=v.layer_norm_eps,
            qformer_hidden_size=q.hidden_size,
            qformer_num_hidden_layers=q.num_hidden_layers,
            qformer_num_attention_heads=q.num_attention_heads,
            qformer_intermediate_size=q.intermediate_size,
            qformer_cross_attention_frequency=q.cross_attention_frequency,
            qformer_vocab_size=q.vocab_size,
            qformer_max_position_embeddings=q.max_position_embeddings,
            qformer_layer_norm_eps=q.layer_norm_eps,
            qformer_pad_token_id=q.pad_token_id if q.pad_token_id is not None else 0,
            num_query_tokens=hf_config.num_query_tokens,
        )


@dataclass(frozen=True)
class SpeechConfig:
    """Whisper encoder (large-v2 in the release) + a trainable Linear d_model -> D."""

    source: str | None = None  # Whisper hub id or local dir; None = random init from the sizes below
    num_mel_bins: int = 80
    d_model: int = 1280
    encoder_layers: int = 32
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    max_source_positions: int = 1500  # encoder frames per chunk
    sample_rate_hz: int = 16000
    hop_length: int = 160  # mel hop in samples (100 Hz mel frames)
    n_fft: int = 400
    conv_stride: int = 2  # Whisper's second conv halves the mel rate: 50 Hz encoder frames
    chunk_s: int = 30  # Whisper's fixed context; longer audio is encoded chunk by chunk and stitched
    chunk_batch_size: int = 8  # 30 s chunks per encoder forward

    def __post_init__(self):
        _check(self.d_model % self.encoder_attention_heads == 0, "whisper d_model % heads != 0")
        _check(self.frames_per_chunk == self.max_source_positions,
               f"chunk of {self.chunk_s} s gives {self.frames_per_chunk} encoder frames but the encoder holds "
               f"max_source_positions={self.max_source_positions}")
        _check(self.chunk_samples % self.samples_per_frame == 0, "chunk_samples must be a whole number of frames")

    @property
    def mel_rate_hz(self) -> float:
        return self.sample_rate_hz / self.hop_length

    @property
    def samples_per_frame(self) -> int:
        return self.hop_length * self.conv_stride  # 320 samples = 20 ms

    @property
    def frame_rate_hz(self) -> float:
        return self.sample_rate_hz / self.samples_per_frame  # 50 Hz

    @property
    def chunk_samples(self) -> int:
        return self.chunk_s * self.sample_rate_hz

    @property
    def mel_frames_per_chunk(self) -> int:
        return self.chunk_samples // self.hop_length  # 3000

    @property
    def frames_per_chunk(self) -> int:
        return self.mel_frames_per_chunk // self.conv_stride  # 1500

    def whisper_hf_config(self):
        from transformers import WhisperConfig

        return WhisperConfig(
            vocab_size=64,  # decoder side is never built; small ids keep the config valid
            pad_token_id=1,
            bos_token_id=2,
            eos_token_id=3,
            decoder_start_token_id=2,
            num_mel_bins=self.num_mel_bins,
            d_model=self.d_model,
            encoder_layers=self.encoder_layers,
            encoder_attention_heads=self.encoder_attention_heads,
            encoder_ffn_dim=self.encoder_ffn_dim,
            decoder_layers=1,
            decoder_attention_heads=self.encoder_attention_heads,
            decoder_ffn_dim=self.encoder_ffn_dim,
            max_source_positions=self.max_source_positions,
            max_target_positions=8,
        )

    def with_hf_sizes(self, hf_config) -> "SpeechConfig":
        return dataclasses.replace(
            self,
            num_mel_bins=hf_config.num_mel_bins,
            d_model=hf_config.d_model,
            encoder_layers=hf_config.encoder_layers,
            encoder_attention_heads=hf_config.encoder_attention_heads,
            encoder_ffn_dim=hf_config.encoder_ffn_dim,
            max_source_positions=hf_config.max_source_positions,
        )


@dataclass(frozen=True)
class CausalQFormerConfig:
    """The causal Q-Former over a window's synced slots (BERT-base-sized, 2 layers in the release).

    Its encoder width (the slot width 2D) is not stored here: it derives from the visual Q-Former width
    (`FavorConfig.slot_width`) and is passed to the module.
    """

    hidden_size: int = 768
    num_hidden_layers: int = 2
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    num_query_tokens: int = 32
    max_position_embeddings: int = 4096  # learned slot positions inside a window (release: 4096)
    layer_norm_eps: float = 1e-12  # BERT layers; the slot LayerNorm uses torch's default like the release
    slot_layer_norm_eps: float = 1e-5
    hidden_dropout_prob: float = 0.0
    attention_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    mask_mode: str = "causal"  # "causal": frame t sees frames <= t; "released": the published checkpoint's mask

    def __post_init__(self):
        _check(self.mask_mode in MASK_MODES, f"mask_mode must be one of {MASK_MODES}, got {self.mask_mode!r}")
        _check(self.hidden_size % self.num_attention_heads == 0, "causal Q-Former hidden_size % heads != 0")


@dataclass(frozen=True)
class WindowConfig:
    """Frame sampling and windowing: FAVOR uses 2 FPS and non-overlapping 10-frame (5 s) windows."""

    fps: float = 2.0
    frames_per_window: int = 10  # L
    stride_frames: int = 10
    window_batch_size: int = 32  # windows per causal Q-Former forward: bounds memory
    audio_sync: str = "frame"  # "frame": each frame gets the speech of its own 1/fps slice (FAVOR); "clip": the
    #                            mean speech feature of all the speech given (the whole clip) in every frame (ablation)

    def __post_init__(self):
        _check(self.fps > 0, "fps must be > 0")
        _check(self.audio_sync in AUDIO_SYNC_MODES, f"audio_sync must be one of {AUDIO_SYNC_MODES}, "
                                                    f"got {self.audio_sync!r}")
        _check(1 <= self.stride_frames <= self.frames_per_window, "need 1 <= stride_frames <= frames_per_window")

    def window_spec(self):
        from favor_ops.media.windowing import WindowSpec

        return WindowSpec(frames_per_window=self.frames_per_window, stride_frames=self.stride_frames)


@dataclass(frozen=True)
class FavorConfig:
    name: str = "custom"
    visual: VisualConfig = field(default_factory=VisualConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    causal_qformer: CausalQFormerConfig = field(default_factory=CausalQFormerConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    llm_hidden_size: int = 5120  # Vicuna-13B
    diversity_weight: float = 0.01  # lambda
    official_checkpoint: str | None = None  # released FAVOR delta checkpoint (.pt) to load after the encoders
    init_seed: int = 0  # random init is seeded: every worker building the same preset gets the same weights
    gpu_dtype: str = "bfloat16"  # autocast dtype on GPU ("bfloat16" or "float16"); CPU runs fp32

    def __post_init__(self):
        _check(self.window_tokens <= self.causal_qformer.max_position_embeddings,
               f"a window holds {self.window_tokens} slots but the causal Q-Former has only "
               f"{self.causal_qformer.max_position_embeddings} positions")
        _check(self.slot_width % self.causal_qformer.num_attention_heads == 0,
               f"slot width {self.slot_width} % causal Q-Former heads != 0")
        _check(self.gpu_dtype in ("bfloat16", "float16"), "gpu_dtype must be bfloat16 or float16")

    # ---- derived sizes ----
    @property
    def modality_width(self) -> int:
        """D: width of the visual query tokens and of the projected speech frames."""
        return self.visual.qformer_hidden_size

    @property
    def slot_width(self) -> int:
        """2D: a synced slot is a visual slot and an audio slot joined on the feature axis."""
        return 2 * self.modality_width

    @property
    def audio_slots_per_frame(self) -> int:
        from favor_ops.media.sync import audio_slots_per_frame

        return audio_slots_per_frame(self.windows.fps, self.speech.frame_rate_hz)

    @property
    def slots_per_frame(self) -> int:
        """S = max(Nq, ceil(50 / fps))."""
        return max(self.visual.num_query_tokens, self.audio_slots_per_frame)

    @property
    def window_tokens(self) -> int:
        """L * S slots per window."""
        return self.windows.frames_per_window * self.slots_per_frame

    @property
    def llm_tokens_per_second(self) -> float:
        """Query tokens handed to the LLM per second of media (6.4 at 2 FPS, W=10, 32 queries)."""
        return self.causal_qformer.num_query_tokens * self.windows.fps / self.windows.stride_frames

    def decode_config(self) -> dict[str, Any]:
        """Keyword arguments for favor_ops.media.decode.DecodeConfig: the frames and audio this model wants."""
        return {"fps": self.windows.fps, "image_size": self.visual.image_size,
                "sample_rate_hz": self.speech.sample_rate_hz}

    # ---- serialisation ----
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FavorConfig":
        d = dict(d)
        nested = {"visual": VisualConfig, "speech": SpeechConfig, "causal_qformer": CausalQFormerConfig,
                  "windows": WindowConfig}
        for key, sub in nested.items():
            if key in d:
                d[key] = _dataclass_from_dict(sub, d[key])
        return _dataclass_from_dict(cls, d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FavorConfig":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "FavorConfig":
        return cls.from_json(Path(path).read_text())

    def replace(self, **changes) -> "FavorConfig":
        return dataclasses.replace(self, **changes)


def _dataclass_from_dict(cls, d: dict[str, Any]):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(known)
    _check(not unknown, f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for name, value in d.items():
        if isinstance(value, list):  # JSON turns tuples into lists
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


__all__ = [
    "MASK_MODES", "ConfigError", "VisualConfig", "SpeechConfig", "CausalQFormerConfig", "WindowConfig",
    "FavorConfig",
]
