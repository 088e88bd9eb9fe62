"""Claim verdicts from hand-made ablation numbers."""

from favor_ops.evaluation.claims import check_claims


def _run(joint, single=0.5, said_while=None):
    run = {"tasks": {"text.joint.r1": {"value": joint, "n": 32}, "text.single.r1": {"value": single, "n": 51}}}
    if said_while is not None:
        run["qa_metrics"] = {"said_while": {"value": said_while, "n": 35}}
    return run


def test_verdicts_hold_do_not_hold_and_not_measured():
    metrics = {"ablations": {"runs": {
        "full": _run(0.5, said_while=0.4), "no_sync": _run(0.19, said_while=0.4), "no_causal": _run(0.6),
        "div_0.01": _run(0.5, single=0.39), "div_1.0": _run(0.5, single=0.39)}}}
    by = {(c.metric, c.worse): c for c in check_claims(metrics)}
    assert by[("text.joint.r1", "no_sync")].verdict == "holds"
    assert by[("text.joint.r1", "no_sync")].sentence() == (
        "synchronisation helps joint audio-visual retrieval: holds here (text.joint.r1: full 0.500 vs no_sync 0.190, "
        "n=32)")
    assert by[("qa.said_while", "no_sync")].verdict == "does not hold"  # equal is not better
    assert by[("qa.said_while", "no_sync")].sentence().endswith("full 0.400 vs no_sync 0.400, n=35 -- no difference)")
    assert by[("text.joint.r1", "no_causal")].verdict == "does not hold"
    assert by[("qa.said_while", "no_causal")].verdict == "not measured"
    assert by[("text.single.r1", "div_1.0")].verdict == "does not hold"


def test_no_ablations_no_claims():
    assert check_claims({"tasks": {}}) == []
