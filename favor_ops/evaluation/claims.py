"""The paper's claims, checked against an ablation study's numbers and stated plainly, whichever way they come out.

    sync matters           full > no_sync    on joint-AV text->window R@1 and on "what is said while" QA
    the causal module      full > no_causal  on the same two
    diversity weight       a large lambda hurts: div_1.0 < div_0.01 on single-modality R@1

Each check is a row: the two values with their sample count and a verdict, "holds", "does not hold" (the numbers say
otherwise, reported as such), or "not measured" (a run or the metric is missing, e.g. QA for ablation runs that train
only the alignment). With n in the tens, one query is several points: the verdicts describe this run, not a law.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

JOINT_R1 = "text.joint.r1"
SINGLE_R1 = "text.single.r1"
QA_SAID_WHILE = "qa.said_while"

CLAIMS: tuple[tuple[str, str, str, str], ...] = (
    # (claim, metric key, the run that should be better, the run it is compared with)
    ("synchronisation helps joint audio-visual retrieval", JOINT_R1, "full", "no_sync"),
    ("synchronisation helps 'what is said while' QA", QA_SAID_WHILE, "full", "no_sync"),
    ("the causal module helps joint audio-visual retrieval", JOINT_R1, "full", "no_causal"),
    ("the causal module helps 'what is said while' QA", QA_SAID_WHILE, "full", "no_causal"),
    ("a large diversity weight (1.0) hurts retrieval compared with 0.01", SINGLE_R1, "div_0.01", "div_1.0"),
)


@dataclass(frozen=True)
class ClaimCheck:
    claim: str
    metric: str
    better: str
    worse: str
    better_value: float | None
    worse_value: float | None
    n: int | None
    verdict: str  # "holds" | "does not hold" | "not measured"

    def sentence(self) -> str:
        if self.verdict == "not measured":
            return f"{self.claim}: not measured ({self.better} or {self.worse} has no {self.metric})"
        tie = " -- no difference" if self.better_value == self.worse_value else ""
        return (f"{self.claim}: {self.verdict} here ({self.metric}: {self.better} {self.better_value:.3f} vs "
                f"{self.worse} {self.worse_value:.3f}, n={self.n}{tie})")


def _metric(run: dict, key: str) -> tuple[float | None, int | None]:
    if key.startswith("qa."):
        qa = run.get("qa_metrics") or {}
        m = qa.get(key.split(".", 1)[1]) if isinstance(qa, dict) else None
    else:
        m = (run.get("tasks") or {}).get(key)
    if not isinstance(m, dict) or m.get("value") is None:
        return None, None
    return float(m["value"]), int(m.get("n") or 0)


def check_claims(metrics: dict) -> list[ClaimCheck]:
    """One ClaimCheck per claim from metrics["ablations"]["runs"]; [] without ablations."""
    runs = (metrics.get("ablations") or {}).get("runs") or {}
    if not runs:
        return []
    out = []
    for claim, key, better, worse in CLAIMS:
        (bv, bn), (wv, _) = _metric(runs.get(better, {}), key), _metric(runs.get(worse, {}), key)
        if bv is None or wv is None:
            verdict = "not measured"
        else:
            verdict = "holds" if bv > wv else "does not hold"
        out.append(ClaimCheck(claim, key, better, worse, bv, wv, bn, verdict))
    return out


def claims_as_dicts(metrics: dict) -> list[dict]:
    return [asdict(c) | {"sentence": c.sentence()} for c in check_claims(metrics)]
