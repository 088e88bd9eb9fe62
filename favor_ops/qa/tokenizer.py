"""The QA tokenizer: the WordPiece vocabulary of all-MiniLM-L6-v2 (offline) or any AutoTokenizer source.

A WordPiece (BERT) tokenizer has no BOS/EOS: [CLS] starts a sequence and [SEP] ends an answer.
"""

from __future__ import annotations

import os

from favor_ops.qa.config import MINILM_TOKENIZER


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        if name == MINILM_TOKENIZER:
            from favor_ops.retrieval.text_tower import minilm_path

            tok = AutoTokenizer.from_pretrained(str(minilm_path()))
        else:
            tok = AutoTokenizer.from_pretrained(name)
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    if tok.bos_token_id is None and tok.cls_token_id is not None:
        tok.bos_token = tok.cls_token
    if tok.eos_token_id is None and tok.sep_token_id is not None:
        tok.eos_token = tok.sep_token
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok
