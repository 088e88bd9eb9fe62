"""The demo reuses a synthesized corpus only when the parameters and the generator settings both match."""

import dataclasses
import json

from favor_ops.corpus import plan
from pipelines.cli.demo_command import corpus_stamp

PARAMS = {"videos": 3, "seed": 7, "include_bad": False, "min_duration_s": 1.0, "max_duration_s": 4.0,
          "profile": "training"}


def test_stamp_round_trips_through_json_and_names_the_generator():
    stamp = corpus_stamp(PARAMS)
    assert json.loads(json.dumps(stamp)) == stamp  # what the stamp file holds compares equal to a fresh stamp
    assert stamp["generator"]["sounding_scale"] == plan.CORPUS_PROFILES["training"].sounding_scale
    assert stamp["generator"]["segment_max_s"] == 5.0  # the training profile's own settings


def test_a_generator_change_invalidates_the_stamp(monkeypatch):
    before = corpus_stamp(PARAMS)
    changed = dataclasses.replace(plan.CORPUS_PROFILES["training"], sounding_scale=1.0)
    monkeypatch.setitem(plan.CORPUS_PROFILES, "training", changed)
    assert corpus_stamp(PARAMS) != before
