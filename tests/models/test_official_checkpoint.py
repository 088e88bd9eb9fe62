"""The released FAVOR checkpoint's key names (BriansIDP/AudioVisualLLM, model/openllama.py + model/Qformer.py),
written out here by hand at tiny sizes, load into FavorModel with nothing missing or left over."""

import pytest
import torch

from favor_ops.models.official_checkpoint import OfficialCheckpointError, load_official_checkpoint
from tests.models import tiny_model  # noqa: F401  (fixture)


def official_state_dict(model, with_aliases=True, seed=0):
    """What `OpenLLAMAPEFTModel` saves (trainable parameters) for alignmode 2, at the model's sizes."""
    cfg = model.config
    H, E, F = cfg.causal_qformer.hidden_size, cfg.slot_width, cfg.causal_qformer.intermediate_size
    g = torch.Generator().manual_seed(seed)
    t = lambda *shape: torch.randn(*shape, generator=g).half()  # noqa: E731  (the release saves fp16)
    sd = {
        "speech_pre_qformer_proj.weight": t(cfg.modality_width, cfg.speech.d_model),
        "speech_pre_qformer_proj.bias": t(cfg.modality_width),
        "ln_video.weight": t(E), "ln_video.bias": t(E),
        "video_frame_position_embedding.weight": t(cfg.causal_qformer.max_position_embeddings, E),
        "video_query_tokens": t(1, cfg.causal_qformer.num_query_tokens, H),
        "video_Qformer.bert.embeddings.LayerNorm.weight": t(H),
        "video_Qformer.bert.embeddings.LayerNorm.bias": t(H),
        "llama_proj.weight": t(cfg.llm_hidden_size, H), "llama_proj.bias": t(cfg.llm_hidden_size),
    }
    for i in range(cfg.causal_qformer.num_hidden_layers):
        p = f"video_Qformer.bert.encoder.layer.{i}."
        # BertSelfAttention(is_causal_attention=True): query/key/value Linear(encoder_width, encoder_width)
        for name in ("query", "key", "value"):
            sd[f"{p}encoder_causal_attention.self.{name}.weight"] = t(E, E)
            sd[f"{p}encoder_causal_attention.self.{name}.bias"] = t(E)
        sd[f"{p}encoder_causal_attention.output.dense.weight"] = t(E, E)
        sd[f"{p}encoder_causal_attention.output.dense.bias"] = t(E)
        sd[f"{p}encoder_causal_attention.output.LayerNorm.weight"] = t(E)
        sd[f"{p}encoder_causal_attention.output.LayerNorm.bias"] = t(E)
        for name in ("query", "key", "value"):
            sd[f"{p}attention.self.{name}.weight"] = t(H, H)
            sd[f"{p}attention.self.{name}.bias"] = t(H)
        sd[f"{p}attention.output.dense.weight"] = t(H, H)
        sd[f"{p}attention.output.dense.bias"] = t(H)
        sd[f"{p}attention.output.LayerNorm.weight"] = t(H)
        sd[f"{p}attention.output.LayerNorm.bias"] = t(H)
        # cross-attention: query from the queries (H), key/value from the slots (encoder_width)
        sd[f"{p}crossattention.self.query.weight"] = t(H, H)
        sd[f"{p}crossattention.self.query.bias"] = t(H)
        for name in ("key", "value"):
            sd[f"{p}crossattention.self.{name}.weight"] = t(H, E)
            sd[f"{p}crossattention.self.{name}.bias"] = t(H)
        sd[f"{p}crossattention.output.dense.weight"] = t(H, H)
        sd[f"{p}crossattention.output.dense.bias"] = t(H)
        sd[f"{p}crossattention.output.LayerNorm.weight"] = t(H)
        sd[f"{p}crossattention.output.LayerNorm.bias"] = t(H)
        sd[f"{p}intermediate_query.dense.weight"] = t(F, H)
        sd[f"{p}intermediate_query.dense.bias"] = t(F)
        sd[f"{p}output_query.dense.weight"] = t(H, F)
        sd[f"{p}output_query.dense.bias"] = t(H)
        sd[f"{p}output_query.LayerNorm.weight"] = t(H)
        sd[f"{p}output_query.LayerNorm.bias"] = t(H)
    # LoRA on Vicuna's attention (peft naming)
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        sd[f"llama_model.base_model.model.model.layers.0.self_attn.{proj}.lora_A.default.weight"] = t(4, 16)
        sd[f"llama_model.base_model.model.model.layers.0.self_attn.{proj}.lora_B.default.weight"] = t(16, 4)
    if with_aliases:  # ZeRO-3 saves repeat shared modules under their other names
        for key in list(sd):
            if key.startswith("video_Qformer."):
                sd["joint_Qformer." + key[len("video_Qformer."):]] = sd[key].clone()
        sd["joint_query_tokens"] = sd["video_query_tokens"].clone()
        sd["llama_proj_joint.weight"] = sd["llama_proj.weight"].clone()
        sd["ln_joint.bias"] = sd["ln_video.bias"].clone()
        sd["video_Qformer.bert.embeddings.position_ids"] = torch.arange(512)[None]
    return sd


def test_every_official_tensor_loads(tiny_model):
    from favor_ops.models.loading import load_favor_model

    model = load_favor_model("tiny")
    sd = official_state_dict(model)
    report = load_official_checkpoint(model, sd)
    ours = model.state_dict()
    trainable = [k for k in ours if k.startswith(("causal_qformer.", "speech.proj.", "llm_proj."))]
    assert sorted(report.loaded) == sorted(trainable)  # every FAVOR tensor set, nothing missing
    assert len(report.llm_state_dict) == 8 and report.ignored == ["video_Qformer.bert.embeddings.position_ids"]
    assert len(report.aliases_checked) == sum(k.startswith("joint_Qformer.") for k in sd) + 3
    # Values land where the release's code uses them.
    assert torch.equal(ours["speech.proj.weight"], sd["speech_pre_qformer_proj.weight"].float())
    assert torch.equal(ours["causal_qformer.query_tokens"], sd["video_query_tokens"].float())
    assert torch.equal(ours["causal_qformer.layers.1.frame_attn.key.weight"],
                       sd["video_Qformer.bert.encoder.layer.1.encoder_causal_attention.self.key.weight"].float())
    assert torch.equal(ours["causal_qformer.layers.0.cross_attn.value.weight"],
                       sd["video_Qformer.bert.encoder.layer.0.crossattention.self.value.weight"].float())
    assert torch.equal(ours["causal_qformer.layers.0.mlp.ln.bias"],
                       sd["video_Qformer.bert.encoder.layer.0.output_query.LayerNorm.bias"].float())
    assert torch.equal(ours["llm_proj.weight"], sd["llama_proj.weight"].float())
    # Encoders are untouched (they come from InstructBLIP / Whisper).
    assert torch.equal(ours["visual.query_tokens"], tiny_model.state_dict()["visual.query_tokens"])


def test_mismatches_are_refused(tiny_model):
    sd = official_state_dict(tiny_model, with_aliases=False)
    missing = dict(sd)
    del missing["video_Qformer.bert.encoder.layer.1.output_query.dense.bias"]
    with pytest.raises(OfficialCheckpointError, match="missing"):
        load_official_checkpoint(tiny_model, missing)
    unexpected = {**sd, "video_Qformer.bert.encoder.layer.0.intermediate.dense.weight": torch.zeros(1)}
    with pytest.raises(OfficialCheckpointError, match="unexpected"):
        load_official_checkpoint(tiny_model, unexpected)
    shaped = {**sd, "llama_proj.weight": torch.zeros(3, 3)}
    with pytest.raises(OfficialCheckpointError, match="mis-shaped"):
        load_official_checkpoint(tiny_model, shaped)
    aliased = {**sd, "joint_query_tokens": sd["video_query_tokens"] + 1}
    with pytest.raises(OfficialCheckpointError, match="alias"):
        load_official_checkpoint(tiny_model, aliased)


def test_official_file_through_the_preset_path(tmp_path):
    from favor_ops.models.loading import load_favor_model

    model = load_favor_model("tiny")
    sd = official_state_dict(model, seed=5)
    path = tmp_path / "pytorch_model_1_101.pt"
    torch.save(sd, path)
    loaded = load_favor_model("tiny", mask_mode="released", overrides={"official_checkpoint": str(path)})
    assert loaded.causal_qformer.mask_mode == "released"
    assert torch.equal(loaded.llm_proj.bias, sd["llama_proj.bias"].float())
