"""Where the `demo` checkpoint lives, and the model a command uses when given none.

`favor demo` trains the demo model into `$FAVOR_HOME/models/demo` (FAVOR_HOME
defaults to `.favor` in the working directory). Commands that run a model take
`--model CKPT|PRESET`; without it they use that checkpoint when it exists and
the randomly initialised `demo` preset otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

FAVOR_HOME_ENV = "FAVOR_HOME"
DEFAULT_PRESET = "demo"


def favor_home() -> Path:
    return Path(os.environ.get(FAVOR_HOME_ENV, ".favor"))


def demo_checkpoint_dir() -> Path:
    return favor_home() / "models" / "demo"


def default_model_spec() -> str:
    from favor_ops.models.checkpoint import is_favor_checkpoint

    checkpoint = demo_checkpoint_dir()
    return str(checkpoint) if is_favor_checkpoint(checkpoint) else DEFAULT_PRESET
