"""Query side of search: text or a media file -> query vectors in the store's embedding space.

`QueryEncoder` is what search needs; `AlignedQueryEncoder` adapts the alignment engineer's
`AlignedModel` (favor_ops.retrieval.aligned_model, imported lazily by `load_query_encoder`):

    AlignedModel.embed_dim                                   E, the stored vector width
    AlignedModel.encode_text(list[str]) -> (B, E)            unit-norm
    AlignedModel.encode_audio_query(waveform (T,) @16 kHz)   -> (E,) [+ tokens (Q, E)]
    AlignedModel.encode_image_query(frames_rgb (N,H,W,3))    -> (E,) [+ tokens (Q, E)]
    AlignedModel.encode_video_query(DecodedMedia)            -> (E,) [+ tokens (Q, E)]
    AlignedModel.favor.config.decode_config()                -> DecodeConfig kwargs (fps, image_size)

The media query encoders may return a bare vector, a (vector, tokens) pair, a dict with
"vector"/"pooled" and "tokens", or an object with such attributes; `as_query_vectors` accepts
each. Files are decoded here with favor_ops.media.decode at the model's frame rate and size;
an unreadable file raises SearchInputError (stage "search") with the decoder's one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from favor_ops.errors import StageError
from favor_ops.retrieval.search_errors import SearchInputError


@dataclass(frozen=True)
class QueryVectors:
    """One query in the store's space: a single unit vector and, when the encoder has them, query tokens."""

    vector: np.ndarray  # (E,) float32, unit-norm
    tokens: np.ndarray | None = None  # (Q, E) float32, unit-norm rows; None: MaxSim uses `vector` alone

    @property
    def multivector(self) -> np.ndarray:
        """What MaxSim compares with the stored tokens: (Q, E) tokens, else (1, E)."""
        return self.tokens if self.tokens is not None else self.vector[None, :]


@runtime_checkable
class QueryEncoder(Protocol):
    """Turns a query (text or a media file) into QueryVectors of width `embed_dim`."""

    embed_dim: int

    def encode_text_query(self, text: str) -> QueryVectors: ...

    def encode_audio_file(self, path: str) -> QueryVectors: ...

    def encode_image_file(self, path: str) -> QueryVectors: ...

    def encode_video_file(self, path: str) -> QueryVectors: ...


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def as_query_vectors(result: Any, embed_dim: int, what: str = "query") -> QueryVectors:
    """Normalise an encoder's output (vector | (vector, tokens) | dict | object) into unit QueryVectors."""
    vector = tokens = None
    if isinstance(result, QueryVectors):
        vector, tokens = result.vector, result.tokens
    elif isinstance(result, dict):
        vector = next((result[k] for k in ("vector", "pooled", "embedding") if result.get(k) is not None), None)
        tokens = result.get("tokens")
    elif isinstance(result, (tuple, list)) and len(result) == 2 and not np.isscalar(result[0]):
        vector, tokens = result
    elif hasattr(result, "tokens") or hasattr(result, "vector") or hasattr(result, "pooled"):
        vector = getattr(result, "vector", None)
        vector = getattr(result, "pooled", None) if vector is None else vector
        tokens = getattr(result, "tokens", None)
    else:
        vector = result
    tokens_np = None if tokens is None else _to_numpy(tokens).reshape(-1, _to_numpy(tokens).shape[-1])
    if vector is None:
        if tokens_np is None:
            raise SearchInputError(what, "the query encoder returned no vector")
        vector_np = tokens_np.mean(axis=0)
    else:
        vector_np = _to_numpy(vector).reshape(-1)
    if vector_np.shape[0] != embed_dim or (tokens_np is not None and tokens_np.shape[-1] != embed_dim):
        raise SearchInputError(what, f"the query encoder returned width {vector_np.shape[0]}, expected E={embed_dim}")
    if not np.all(np.isfinite(vector_np)) or (tokens_np is not None and not np.all(np.isfinite(tokens_np))):
        raise SearchInputError(what, "the query encoder returned non-finite values")
    vector_np = _unit_rows(vector_np)
    tokens_np = None if tokens_np is None else _unit_rows(tokens_np)
    return QueryVectors(vector=vector_np.astype(np.float32), tokens=None if tokens_np is None else tokens_np.astype(np.float32))


def check_query_file(path: str) -> str:
    """A local, readable, non-empty regular file, else SearchInputError."""
    if not isinstance(path, str) or not path.strip():
        raise SearchInputError(str(path), "query file path is empty")
    file = Path(path)
    if not file.is_file():
        raise SearchInputError(path, "query file does not exist or is not a regular file")
    try:
        with open(file, "rb") as handle:
            if not handle.read(1):
                raise SearchInputError(path, "query file is empty")
    except OSError as err:
        raise SearchInputError(path, f"query file is not readable: {err.strerror or err}") from None
    return str(file)


@dataclass(frozen=True)
class QueryMediaLimits:
    max_duration_s: float = 120.0  # longest query file decoded (whole-file decode holds every frame in memory)


class AlignedQueryEncoder:
    """QueryEncoder over an AlignedModel (see module docstring); decodes query files itself."""

    def __init__(self, aligned_model: Any, decode_config: Any | None = None, limits: QueryMediaLimits = QueryMediaLimits()):
        self.model = aligned_model
        self.embed_dim = int(aligned_model.embed_dim)
        self.limits = limits
        self._decode_config = decode_config

    def decode_config(self):
        """The model's frame rate and size, with the query duration limit."""
        import dataclasses

        from favor_ops.media.decode import DecodeConfig

        if self._decode_config is None:
            favor = getattr(self.model, "favor", None)
            config = getattr(favor, "config", None)
            kwargs = config.decode_config() if config is not None and hasattr(config, "decode_config") else {}
            cfg = kwargs if isinstance(kwargs, DecodeConfig) else DecodeConfig(**dict(kwargs or {}))
            self._decode_config = dataclasses.replace(cfg, max_duration_s=min(cfg.max_duration_s, self.limits.max_duration_s))
        return self._decode_config

    def _decode(self, path: str):
        from favor_ops.media.decode import decode

        checked = check_query_file(path)
        try:
            return decode(checked, self.decode_config())
        except StageError as err:
            raise SearchInputError(path, f"cannot read query file: {err.reason}") from None

    def encode_text_query(self, text: str) -> QueryVectors:
        if not isinstance(text, str) or not text.strip():
            raise SearchInputError("text", "query text is empty")
        vectors = _to_numpy(self.model.encode_text([text]))  # (1, E)
        return as_query_vectors(vectors.reshape(-1, vectors.shape[-1])[0], self.embed_dim, "text")

    def encode_audio_file(self, path: str) -> QueryVectors:
        decoded = self._decode(path)
        if not decoded.has_audio or decoded.audio.size == 0:
            raise SearchInputError(path, "audio query file has no audio stream")
        return as_query_vectors(self.model.encode_audio_query(decoded.audio), self.embed_dim, path)

    def encode_image_file(self, path: str) -> QueryVectors:
        decoded = self._decode(path)
        if not decoded.has_video or len(decoded.frames_rgb) == 0:
            raise SearchInputError(path, "image query file has no picture")
        return as_query_vectors(self.model.encode_image_query(decoded.frames_rgb[:1]), self.embed_dim, path)  # (1,H,W,3)

    def encode_video_file(self, path: str) -> QueryVectors:
        decoded = self._decode(path)
        if not decoded.has_video and not decoded.has_audio:
            raise SearchInputError(path, "video query file has neither picture nor sound")
        return as_query_vectors(self.model.encode_video_query(decoded), self.embed_dim, path)


def load_query_encoder(spec: str | None = None, device: str = "cpu") -> QueryEncoder:
    """Model spec (aligned checkpoint dir, FavorModel checkpoint or preset; None: the default) -> QueryEncoder."""
    try:
        from favor_ops.retrieval.aligned_model import load_aligned_model
    except ImportError as err:
        raise SearchInputError(str(spec), f"retrieval model support is not installed: {err}") from None
    if spec is None:
        from favor_ops.models.default_checkpoint import default_model_spec

        spec = default_model_spec()
    return AlignedQueryEncoder(load_aligned_model(spec, device=device))

