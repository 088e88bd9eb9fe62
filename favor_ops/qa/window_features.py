"""Window tokens of a corpus clip as the LLM sees them, computed with the aligned model (what the index stores).

`ClipWindowFeatures` encodes each manifest clip once (and once with the audio of another clip, for the "does the
audio match?" negatives: favor_ops.qa.swapped_audio) and caches the (W, Nq, E) float16 tokens, each window's AV
agreement (favor_ops.qa.window_channels) and, for checkpoints with frame heads, the (W, L, E) float16 per-frame vectors
(favor_ops.qa.question_grounding) per (file, partner, model version) on disk.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import torch

from favor_ops.qa.prompt import PromptWindow
from favor_ops.qa.swapped_audio import fit_audio, swapped_partner
from favor_ops.qa.window_channels import av_agreement

CACHE_VERSION = "v3"  # v2: + each window's AV agreement; v3: + per-frame vectors


class ClipWindowFeatures:
    def __init__(self, aligned, corpus_dir: str | Path, cache_dir: str | Path, model_version: str,
                 records: list[dict]):
        self.aligned = aligned
        self.corpus_dir = Path(corpus_dir)
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.version = hashlib.sha256(model_version.encode()).hexdigest()[:10]
        self.records = {r["clip_id"]: r for r in records}
        self._all = records
        self._decoded: dict[str, object] = {}
        self._partners: dict[str, dict] = {}

    def _decode(self, rec: dict):
        from favor_ops.media.decode import DecodeConfig, decode

        if rec["clip_id"] not in self._decoded:
            if len(self._decoded) > 4:
                self._decoded.clear()
            cfg = DecodeConfig(**self.aligned.favor.config.decode_config())
            self._decoded[rec["clip_id"]] = decode(str(self.corpus_dir / rec["file"]), cfg)
        return self._decoded[rec["clip_id"]]

    def _partner(self, clip_id: str) -> dict:
        """The clip whose audio `clip_id`'s swapped-audio windows hear, found once per clip (training asks per step)."""
        if clip_id not in self._partners:
            self._partners[clip_id] = swapped_partner(self._all, clip_id, self.aligned.favor.config.windows.fps)
        return self._partners[clip_id]

    def windows(self, clip_id: str, *, swapped_audio: bool = False) -> list[PromptWindow]:
        rec = self.records[clip_id]
        partner = self._partner(clip_id) if swapped_audio else None
        tag = f"{rec['sha256'][:16]}-{partner['sha256'][:16] if partner else 'own'}-{self.version}-{CACHE_VERSION}"
        path = self.cache_dir / f"{tag}.npz"
        if not path.is_file():
            decoded = self._decode(rec)
            audio = decoded.audio if decoded.has_audio else None
            if partner is not None:
                other = self._decode(partner)
                audio = fit_audio(other.audio, len(decoded.audio) if audio is not None and len(audio) else
                                  int(decoded.info.duration_s * self.aligned.favor.config.speech.sample_rate_hz))
            with torch.inference_mode():
                vec = self.aligned.encode_media(decoded.frames_rgb if decoded.has_video else None, audio,
                                                duration_s=float(decoded.info.duration_s))
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.part.npz")  # one per process: runs may share a cache
            agreement = np.array([np.nan if x is None else x for x in map(av_agreement, vec.audio_vec, vec.visual_vec)],
                                 np.float32)  # (W,) NaN: no audio or no video
            frames = {} if vec.frame_audio is None else {"frame_audio": vec.frame_audio.astype(np.float16),
                                                         "frame_visual": vec.frame_visual.astype(np.float16)}
            np.savez(tmp, tokens=vec.tokens.astype(np.float16), t_start=vec.t_start_s, t_end=vec.t_end_s,
                     av_agreement=agreement, **frames)
            tmp.replace(path)
        data = np.load(path)
        n = len(data["t_start"])
        frame_audio = data["frame_audio"].astype(np.float32) if "frame_audio" in data else [None] * n  # (W, L, E)
        frame_visual = data["frame_visual"].astype(np.float32) if "frame_visual" in data else [None] * n
        return [PromptWindow(float(a), float(b), t.astype(np.float32), av_agreement=None if np.isnan(c) else float(c),
                             frame_audio=fa, frame_visual=fv)
                for a, b, t, c, fa, fv in zip(data["t_start"], data["t_end"], data["tokens"], data["av_agreement"],
                                              frame_audio, frame_visual)]

    def warm(self, pairs, progress: bool = True) -> None:
        """Encode every (clip, swapped?) the pairs need, with a progress bar."""
        needed = sorted({(p.clip_id, p.swapped_audio) for p in pairs})
        iterator = needed
        if progress:
            from tqdm import tqdm

            iterator = tqdm(needed, desc="QA window tokens", unit="clip", file=sys.stderr)
        for clip_id, swapped in iterator:
            self.windows(clip_id, swapped_audio=swapped)
