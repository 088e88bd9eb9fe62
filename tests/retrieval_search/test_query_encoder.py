"""The QueryEncoder adapter: AlignedModel outputs of every documented shape -> unit QueryVectors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from favor_ops.retrieval.query_encoder import AlignedQueryEncoder, QueryEncoder, QueryVectors, as_query_vectors
from favor_ops.retrieval.search_errors import SearchInputError
from tests.retrieval_search.planted_store import FakeAlignedModel


def test_bare_vector_is_normalised():
    q = as_query_vectors(np.array([3.0, 4.0]), 2)
    assert q.vector.tolist() == pytest.approx([0.6, 0.8]) and q.tokens is None
    assert q.multivector.shape == (1, 2)


def test_pair_dict_object_and_tensor_forms():
    tokens = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    from_pair = as_query_vectors((torch.tensor([0.0, 2.0]), tokens), 2)
    assert from_pair.vector.tolist() == [0.0, 1.0] and from_pair.tokens.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    from_dict = as_query_vectors({"pooled": [1.0, 0.0], "tokens": None}, 2)
    assert from_dict.vector.tolist() == [1.0, 0.0] and from_dict.tokens is None
    encoding = SimpleNamespace(vector=np.array([0.0, 3.0]), pooled=np.array([1.0, 0.0]), tokens=np.ones((1, 3, 2)))
    from_object = as_query_vectors(encoding, 2)
    assert from_object.vector.tolist() == [0.0, 1.0]  # `vector` wins over `pooled`
    assert from_object.tokens.shape == (3, 2) and from_object.tokens[0].tolist() == pytest.approx([2**-0.5, 2**-0.5])


def test_wrong_width_and_non_finite_are_rejected():
    with pytest.raises(SearchInputError) as info:
        as_query_vectors(np.ones(3), 2)
    assert "expected E=2" in info.value.reason
    with pytest.raises(SearchInputError):
        as_query_vectors(np.array([np.nan, 1.0]), 2)


def test_aligned_adapter_is_a_query_encoder_and_checks_text():
    encoder = AlignedQueryEncoder(FakeAlignedModel())
    assert isinstance(encoder, QueryEncoder) and encoder.embed_dim == 8
    assert encoder.encode_text_query("giraffe").vector.tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    with pytest.raises(SearchInputError):
        encoder.encode_text_query("  ")
    assert encoder.decode_config().fps == 2.0 and encoder.decode_config().image_size == 32


def test_query_files_must_exist_and_not_be_empty(tmp_path):
    encoder = AlignedQueryEncoder(FakeAlignedModel())
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(SearchInputError) as info:
        encoder.encode_audio_file(str(empty))
    assert info.value.reason == "query file is empty"
    with pytest.raises(SearchInputError) as info:
        encoder.encode_image_file(str(tmp_path))
    assert info.value.reason == "query file does not exist or is not a regular file"


def test_audio_query_of_a_silent_video_is_refused(media_files):
    encoder = AlignedQueryEncoder(FakeAlignedModel())
    with pytest.raises(SearchInputError) as info:
        encoder.encode_audio_file(str(media_files["png"]))
    assert info.value.reason == "audio query file has no audio stream"


def test_query_vectors_multivector_prefers_tokens():
    q = QueryVectors(vector=np.array([1.0, 0.0], np.float32), tokens=np.eye(2, dtype=np.float32))
    assert q.multivector.shape == (2, 2)


def test_query_files_longer_than_the_limit_are_refused(media_files):
    from favor_ops.retrieval.query_encoder import QueryMediaLimits

    encoder = AlignedQueryEncoder(FakeAlignedModel(), limits=QueryMediaLimits(max_duration_s=3.0))
    assert encoder.decode_config().max_duration_s == 3.0
    with pytest.raises(SearchInputError) as info:
        encoder.encode_video_file(str(media_files["video"]))  # 6 s
    assert info.value.reason.startswith("cannot read query file")
