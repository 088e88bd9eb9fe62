"""The search server (FastAPI): a JSON API over the feature store and one search page.

    GET  /healthz                              liveness + row counts (no token needed)
    GET  /                                     the search page (static/index.html, no token needed)
    GET  /search?q=...&mode=av&k=10&where=...  text search (where repeats: COLUMN OP VALUE)
    POST /search                               JSON {"q", "mode", "k", "where": [...]} or multipart form
                                               (fields q/mode/k/where, file + kind=audio|image|video)
    GET  /videos/{video_id}                    the video's metadata and its windows' spans
    GET  /videos/{video_id}/clip?start=&end=   the segment as fragmented MP4 (ffmpeg, streamed)
    GET  /videos/{video_id}/thumbnail?t=       one JPEG frame (ffmpeg)

Security: the media served is looked up by `video_id` (lowercase hex) in the store; a path is never
taken from a request. Times are validated against the stored duration. With a token configured
(`ServeConfig.token`, from --token or FAVOR_API_TOKEN) every data endpoint needs
`Authorization: Bearer TOKEN` (or `?access_token=TOKEN`, for <video>/<img> elements that cannot send
headers); otherwise 401. Bad input is a 4xx JSON `{"error": "one line"}`, never a 500.

Limits: JSON bodies up to 1 MiB and uploads up to `max_upload_bytes` (413 beyond, counted on the bytes
received, with or without a Content-Length); an uploaded query file must start like a media container
ffmpeg decodes (WAV, MP3, FLAC, Ogg, MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV, ASF, PNG, JPEG, GIF,
BMP, TIFF, WebP...) and must not be a playlist or manifest (HLS, DASH, ffconcat), which would make
ffmpeg open other files or URLs; a search runs at most `request_timeout_s` (504 beyond).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from favor_ops.errors import FavorError, StageError
from favor_ops.retrieval.search_errors import SearchInputError

STATIC_DIR = Path(__file__).resolve().parent / "static"
VIDEO_ID_PATTERN = re.compile(r"^[0-9a-f]{1,64}$")
UPLOAD_SUFFIX_PATTERN = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
UPLOAD_KINDS = {"audio": "audio_path", "image": "image_path", "video": "video_path"}
MIB = 1024 * 1024
OPEN_PATHS = frozenset({"/", "/healthz"})  # answered without a token (the page and liveness: no data)


@dataclass(frozen=True)
class ServeConfig:
    db: str  # LanceDB URI of the feature store
    model: str | None = None  # query encoder spec (None: the default checkpoint), loaded on first use
    device: str = "cpu"
    token: str | None = None  # bearer token; None: no authentication (bind to loopback only)
    max_upload_bytes: int = 50 * MIB  # largest query file accepted
    max_clip_s: float = 300.0  # longest clip streamed
    clip_chunk_bytes: int = 64 * 1024  # bytes per streamed read of ffmpeg's output
    thumbnail_width: int = 320  # JPEG width in pixels (height keeps the aspect ratio)
    ffmpeg_timeout_s: float = 60.0  # thumbnails
    time_tolerance_s: float = 0.05  # end may exceed the stored duration by this much (rounding)
    request_timeout_s: float | None = 30.0  # longest search (query encoding + store); None: no limit
    max_json_bytes: int = 1 * MIB  # largest JSON body of POST /search


class ApiError(Exception):
    """A request error with its HTTP status and one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": str(reason).strip().splitlines()[0] if str(reason).strip() else "error"}, status_code=status)


class SearchService:
    """Holds the store and the (lazily loaded) query encoder; thread-safe for the server's pool."""

    def __init__(self, config: ServeConfig, store=None, encoder=None):
        self.config = config
        self._store = store
        self._encoder = encoder
        self._lock = threading.Lock()

    @property
    def store(self):
        if self._store is None:
            from favor_ops.store.feature_store import FeatureStore

            with self._lock:
                if self._store is None:
                    self._store = FeatureStore.open(self.config.db)
        return self._store

    def encoder(self):
        if self._encoder is None:
            from favor_ops.retrieval.query_encoder import load_query_encoder

            with self._lock:
                if self._encoder is None:
                    self._encoder = load_query_encoder(self.config.model, device=self.config.device)
        return self._encoder

    def search(self, request) -> list[dict]:
        from favor_ops.retrieval.search import MODE_TRANSCRIPT, encode_query, hits_as_dicts, search_encoded, validate_request

        try:
            request, conditions = validate_request(request)
        except (OverflowError, RecursionError):  # a date at the edge of the calendar, absurdly nested values
            raise ApiError(400, "a filter value is out of range") from None
        _check_filter_values(conditions)
        if request.mode == MODE_TRANSCRIPT:  # no model: never waits behind a slow query encoding
            query = encode_query(None, request)
        else:
            encoder = self.encoder()
            with self._lock:  # one query encoding at a time (torch models are not re-entrant friendly)
                query = encode_query(encoder, request)
        return hits_as_dicts(search_encoded(self.store, request, query))

    def video(self, video_id: str) -> dict:
        from favor_ops.store.feature_store import sql_quote
        from favor_ops.store.schema import VIDEOS, WINDOWS

        store = self.store
        if not store.has_table(VIDEOS):
            raise ApiError(404, f"video {video_id} is not in the store")
        rows = store.table(VIDEOS).search().where(f"video_id = {sql_quote(video_id)}").limit(1).to_list()
        if not rows:
            raise ApiError(404, f"video {video_id} is not in the store")
        row = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in rows[0].items()}
        windows = []
        if store.has_table(WINDOWS):
            frame = (store.table(WINDOWS).search().where(f"video_id = {sql_quote(video_id)}")
                     .select(["window_idx", "t_start", "t_end", "transcript"]).limit(None).to_pandas())  # fmt: skip
            frame = frame.sort_values("window_idx")
            windows = [
                {"window_idx": int(w), "t_start": float(a), "t_end": float(b), "transcript": t or ""}
                for w, a, b, t in zip(frame["window_idx"], frame["t_start"], frame["t_end"], frame["transcript"])
            ]
        row["windows"] = windows
        return row


# ---- validation -------------------------------------------------------------------------------------


def check_video_id(video_id: str) -> str:
    if not isinstance(video_id, str) or not VIDEO_ID_PATTERN.match(video_id):
        raise ApiError(400, "video_id must be 1-64 lowercase hex digits")
    return video_id


def _check_filter_values(conditions) -> None:
    """Filter values the store cannot compare: timestamps before year 1000 (rendered without a 4-digit year)."""
    import datetime as dt

    for condition in conditions:
        value = condition.value
        if isinstance(value, dt.datetime) and not 1000 <= value.year <= 9999:
            raise ApiError(400, f"{condition.column} must be a date between the years 1000 and 9999")


def format_size(n_bytes: int) -> str:
    """1 MiB, 1.5 MiB, 200 KiB, 512 bytes."""
    for unit, size in (("MiB", MIB), ("KiB", 1024)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n_bytes} bytes"


# Uploaded query files: the first bytes of the containers accepted (checked before ffmpeg sees the file).
MEDIA_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"RIFF"),  # WAV, AVI, WebP (checked further below)
    (4, b"ftyp"),  # MP4, MOV, M4A, 3GP, HEIF/AVIF
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"OggS"), (0, b"fLaC"), (0, b"ID3"), (0, b"FORM"),  # Ogg/Opus/Vorbis, FLAC, MP3 with tags, AIFF
    (0, b"caff"), (0, b".snd"), (0, b"#!AMR"), (0, b"MThd"),  # CAF, AU, AMR, MIDI
    (0, b"\x89PNG\r\n\x1a\n"), (0, b"\xff\xd8\xff"), (0, b"GIF87a"), (0, b"GIF89a"), (0, b"BM"),
    (0, b"II*\x00"), (0, b"MM\x00*"),  # PNG, JPEG, GIF, BMP, TIFF
    (0, b"FLV"), (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"), (0, b"\x00\x00\x01\xba"),  # FLV, ASF, MPEG-PS
    (0, b"\x00\x00\x01\xb3"),  # MPEG video elementary stream
)
RIFF_FORMS = (b"WAVE", b"AVI ", b"WEBP", b"RMP3")
# Demuxers that open other files or URLs named inside the upload: HLS and ffconcat need their header first
# (refused by the signatures anyway), DASH is probed anywhere in the first MiB ("<MPD" + "dash:profile").
# Markers are long enough that media bytes never hold them by chance.
FOLLOWING_MARKERS = (b"#extm3u", b"ffconcat version", b"dash:profile")
SNIFF_BYTES = 2 * MIB  # ffmpeg probes formats on at most the first 1 MiB


def check_upload_content(head: bytes) -> None:
    """400 unless `head` (the upload's first bytes) starts like an accepted media container and holds no
    playlist/manifest marker: ffmpeg picks the demuxer from the content, and HLS/DASH/ffconcat inputs make it
    read the files they list (any local media file the server can read) or fetch URLs."""
    lowered = head.lower()
    if any(marker in lowered for marker in FOLLOWING_MARKERS):
        raise ApiError(400, "cannot read query file: playlists and manifests are not accepted, upload the media itself")
    mpeg_ts = len(head) > 188 and head[0] == 0x47 and head[188] == 0x47
    mpeg_audio = len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # MP3 / ADTS AAC frame sync
    riff_ok = head[:4] != b"RIFF" or head[8:12] in RIFF_FORMS
    known = any(head[offset:offset + len(magic)] == magic for offset, magic in MEDIA_SIGNATURES)
    if not ((known and riff_ok) or mpeg_ts or mpeg_audio):
        raise ApiError(400, "cannot read query file: not an audio, image or video format this server accepts")


def parse_time(name: str, value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError(400, f"{name} is required (seconds)")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be a number of seconds, got {str(value)[:20]!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ApiError(400, f"{name} must be a finite number of seconds >= 0")
    return seconds


def _local_media(uri: str):
    from favor_ops.media.source import local_media_path

    return local_media_path(uri)


def _check_reachable(uri: str, video_id: str) -> None:
    """410 when the stored source file is gone (before any streaming starts)."""
    from favor_ops.media.source import is_local_uri

    try:
        if is_local_uri(uri):
            path = uri[len("file://"):] if uri.startswith("file://") else uri
            reachable = os.path.isfile(path)
        else:
            import fsspec

            fs, fs_path = fsspec.core.url_to_fs(uri)
            reachable = fs.isfile(fs_path)
    except Exception:  # noqa: BLE001 - any failure to reach it is the same answer
        reachable = False
    if not reachable:
        raise ApiError(410, f"the source file of video {video_id} is no longer reachable")


def _stored_media(service: SearchService, video_id: str) -> tuple[str, float]:
    """(uri, duration_s) of an indexed video; the uri comes from the store only."""
    video = service.video(check_video_id(video_id))
    if not video.get("has_video") and video.get("has_audio") is not True:
        raise ApiError(409, f"video {video_id} has no playable stream")
    duration = video.get("duration_s")
    if duration is None or not math.isfinite(float(duration)):
        raise ApiError(409, f"video {video_id} has no known duration")
    _check_reachable(str(video["uri"]), video_id)
    return str(video["uri"]), float(duration)


def clip_command(path: str, start_s: float, duration_s: float) -> list[str]:
    """ffmpeg: [start, start + duration) of `path` re-encoded as fragmented MP4 on stdout."""
    return ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start_s:.3f}", "-i", path, "-t", f"{duration_s:.3f}",
            "-map", "0:v:0?", "-map", "0:a:0?", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"]  # fmt: skip


def thumbnail_command(path: str, t_s: float, width: int) -> list[str]:
    return ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{t_s:.3f}", "-i", path, "-frames:v", "1",
            "-vf", f"scale={int(width)}:-2", "-f", "image2", "-c:v", "mjpeg", "pipe:1"]  # fmt: skip


# ---- the app ------------------------------------------------------------------------------------------


def create_app(config: ServeConfig, *, store=None, encoder=None) -> FastAPI:
    """The FastAPI app; `store` / `encoder` may be injected (tests), else opened from `config` on first use."""
    # no trailing-slash redirects: their Location is built from the client's Host header
    app = FastAPI(title="favor search", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    service = SearchService(config, store=store, encoder=encoder)
    app.state.service = service
    token = config.token or None

    @app.exception_handler(ApiError)
    async def _api_error(_request, err: ApiError):
        return _error(err.status, err.reason)

    @app.exception_handler(SearchInputError)
    async def _search_error(_request, err: SearchInputError):
        return _error(400, err.reason)

    @app.exception_handler(StageError)
    async def _stage_error(_request, err: StageError):  # store/model problems: the server's side
        return _error(503, f"{err.stage}: {err.reason}")

    @app.exception_handler(FavorError)
    async def _favor_error(_request, err: FavorError):
        return _error(503, str(err))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        return _error(422, f"{where or 'request'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request, err: StarletteHTTPException):
        return _error(err.status_code, err.detail if isinstance(err.detail, str) else "request refused")

    @app.middleware("http")
    async def _authenticate(request: Request, call_next):
        path = request.url.path
        # exact paths only: a prefix ("/static/") would let "/static/../search" past the check
        if token and path not in OPEN_PATHS:
            header = request.headers.get("authorization", "")
            given = header[7:].strip() if header.lower().startswith("bearer ") else request.query_params.get("access_token", "")
            if not given or not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        try:
            return await call_next(request)
        except Exception:  # noqa: BLE001 - never a traceback to the client
            return _error(500, "internal error")

    @app.get("/healthz")
    def healthz() -> dict:
        from favor_ops.store.schema import VIDEOS, WINDOWS

        store = service.store
        counts = {name: (store.table(name).count_rows() if store.has_table(name) else 0) for name in (VIDEOS, WINDOWS)}
        return {"status": "ok", "videos": counts[VIDEOS], "windows": counts[WINDOWS], "auth": bool(token)}

    @app.get("/")
    def page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/search")
    async def search_get(request: Request) -> dict:
        params = request.query_params
        unknown = set(params.keys()) - {"q", "text", "mode", "k", "where", "access_token"}
        if unknown:
            raise ApiError(400, f"unknown parameter {sorted(unknown)[0][:30]!r}")
        fields = {"q": params.get("q", params.get("text")), "mode": params.get("mode"), "k": params.get("k"),
                  "where": params.getlist("where")}  # fmt: skip
        return await _bounded(config, _run_search, service, fields, None)

    @app.post("/search")
    async def search_post(request: Request) -> dict:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            return await _search_multipart(service, request)
        if content_type not in ("application/json", ""):
            raise ApiError(415, "POST /search takes application/json or multipart/form-data")
        raw = await _read_limited(request, config.max_json_bytes, "JSON body")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
            raise ApiError(400, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "JSON body must be an object")
        unknown = set(body) - {"q", "text", "mode", "k", "where"}
        if unknown:
            raise ApiError(400, f"unknown field {sorted(unknown)[0][:30]!r}")
        fields = {"q": body.get("q", body.get("text")), "mode": body.get("mode"), "k": body.get("k"),
                  "where": body.get("where") or []}  # fmt: skip
        return await _bounded(config, _run_search, service, fields, None)

    @app.get("/videos/{video_id}")
    def video(video_id: str) -> dict:
        return service.video(check_video_id(video_id))

    @app.get("/videos/{video_id}/clip")
    def clip(video_id: str, start: str | None = None, end: str | None = None):
        uri, duration = _stored_media(service, video_id)
        start_s, end_s = parse_time("start", start), parse_time("end", end)
        if not start_s < end_s:
            raise ApiError(400, "start must be before end")
        if end_s > duration + config.time_tolerance_s:
            raise ApiError(400, f"end {end_s:g} s is past the end of the video ({duration:g} s)")
        if end_s - start_s > config.max_clip_s:
            raise ApiError(400, f"clips are at most {config.max_clip_s:g} s")
        return StreamingResponse(_stream_clip(uri, start_s, end_s - start_s, config.clip_chunk_bytes), media_type="video/mp4")

    @app.get("/videos/{video_id}/thumbnail")
    def thumbnail(video_id: str, t: str | None = None):
        uri, duration = _stored_media(service, video_id)
        t_s = parse_time("t", t if t is not None else "0")
        if t_s > duration + config.time_tolerance_s:
            raise ApiError(400, f"t {t_s:g} s is past the end of the video ({duration:g} s)")
        t_s = min(t_s, max(duration - 0.1, 0.0))  # a frame that exists
        with _local_media(uri) as path:
            try:
                done = subprocess.run(thumbnail_command(path, t_s, config.thumbnail_width), capture_output=True,
                                      timeout=config.ffmpeg_timeout_s, check=False)  # fmt: skip
            except subprocess.TimeoutExpired:
                raise ApiError(504, "thumbnail extraction timed out") from None
        if done.returncode != 0 or not done.stdout:
            raise ApiError(409, f"no frame at {t_s:g} s of video {video_id}")
        return Response(done.stdout, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    return app


async def _bounded(config: ServeConfig, func, *args):
    """`func(*args)` in the thread pool, answered with 504 after `request_timeout_s` (the thread finishes
    its work in the background; the client gets its answer)."""
    work = run_in_threadpool(func, *args)
    if not config.request_timeout_s:
        return await work
    try:
        return await asyncio.wait_for(work, timeout=config.request_timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"search took longer than {config.request_timeout_s:g} s") from None


async def _read_limited(request: Request, limit: int, what: str) -> bytes:
    """The request body, 413 as soon as it exceeds `limit` bytes (Content-Length or not)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"{what} larger than {format_size(limit)}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"{what} larger than {format_size(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)


def _stream_clip(uri: str, start_s: float, duration_s: float, chunk_bytes: int) -> Iterator[bytes]:
    with _local_media(uri) as path:
        process = subprocess.Popen(clip_command(path, start_s, duration_s), stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            while chunk := process.stdout.read(chunk_bytes):
                yield chunk
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.wait()


def _request_of(fields: dict, file_field: tuple[str, str] | None):
    from pipelines.cli.search_command import parse_k
    from favor_ops.retrieval.search import SearchRequest

    where = fields.get("where") or []
    if isinstance(where, str):
        where = [where]
    if not isinstance(where, list):
        raise ApiError(400, "where must be a list of filters")
    text = fields.get("q")
    if text is not None and not isinstance(text, str):
        raise ApiError(400, "q must be a string")
    mode = fields.get("mode") or "av"
    if not isinstance(mode, str):
        raise ApiError(400, "mode must be a string")
    k_value = fields.get("k")
    k = 10 if k_value in (None, "") else (k_value if isinstance(k_value, int) else parse_k(k_value))
    kwargs = {}
    if file_field is not None:
        kind, path = file_field
        kwargs[UPLOAD_KINDS[kind]] = path
        if text is not None and text.strip() == "":
            text = None
    return SearchRequest(text=text, mode=mode, k=k, where=tuple(tuple(w) if isinstance(w, list) else w for w in where), **kwargs)


def _run_search(service: SearchService, fields: dict, file_field: tuple[str, str] | None) -> dict:
    request = _request_of(fields, file_field)
    hits = service.search(request)
    return {"mode": request.mode, "k": request.k, "hits": hits}


async def _search_multipart(service: SearchService, request: Request) -> dict:
    limit = service.config.max_upload_bytes
    length = request.headers.get("content-length")
    if not length or not length.isdigit():
        raise ApiError(411, "uploads need a Content-Length")
    if int(length) > limit + 64 * 1024:
        raise ApiError(413, f"upload larger than {format_size(limit)}")
    form = await request.form(max_files=1, max_fields=40)
    try:
        upload = form.get("file")
        fields = {"q": form.get("q") or form.get("text"), "mode": form.get("mode"), "k": form.get("k"),
                  "where": [w for w in form.getlist("where") if isinstance(w, str) and w.strip()]}  # fmt: skip
        if upload is None or isinstance(upload, str):
            if form.get("kind"):
                raise ApiError(400, "kind given without a file")
            return await _bounded(service.config, _run_search, service, fields, None)
        kind = form.get("kind")
        if kind not in UPLOAD_KINDS:
            raise ApiError(400, "kind must be audio, image or video")
        suffix = Path(upload.filename or "").suffix
        suffix = suffix if UPLOAD_SUFFIX_PATTERN.match(suffix) else ""
        handle, temp_path = tempfile.mkstemp(prefix="favor-query-", suffix=suffix)
        try:
            with os.fdopen(handle, "wb") as sink:
                head = await run_in_threadpool(_copy_limited, upload.file, sink, limit)
            check_upload_content(head)  # before ffmpeg ever opens it
            return await _bounded(service.config, _run_search, service, fields, (kind, temp_path))
        finally:
            os.unlink(temp_path)
    finally:
        await form.close()


def _copy_limited(source, sink, limit: int) -> bytes:
    """Copy at most `limit` bytes (413 beyond); returns the first SNIFF_BYTES for check_upload_content."""
    copied, head = 0, bytearray()
    while block := source.read(1 * MIB):
        copied += len(block)
        if copied > limit:
            raise ApiError(413, f"upload larger than {format_size(limit)}")
        if len(head) < SNIFF_BYTES:
            head += block[: SNIFF_BYTES - len(head)]
        sink.write(block)
    if copied == 0:
        raise ApiError(400, "uploaded file is empty")
    return bytes(head)

