"""The benchmark's statistics, from run records alone: the screening rule, test mAP per group of runs
and the paired comparisons with the student (differences per seed, a paired t-test, the share of the
teacher-student gap recovered and, for the teacher-labelled drives, the share of what their true map
gives; the gain by number of unlabelled drives). Rendering is ``report``'s."""

from __future__ import annotations

import numpy as np
from scipy import stats

from mapdistill_core.experiment.records import RunRecord

NOISE_RULE = "every seed's paired difference > 0 and a two-sided paired t-test p < 0.05"
SCREEN_RULE = "val gain over the references' mean above twice their seed standard deviation"
COMPARED = ("distilled", "distilled-long", "unlabeled", "pseudo", "upper")
"""Kinds of run each compared seed by seed with the student of the same seed."""
DRIVE_STUDY = ("unlabeled", "pseudo", "upper")
"""Kinds of run of the unlabelled-drive study: their groups are named <kind><number of drives>."""
TEACHER_LABELLED = ("unlabeled", "pseudo")
"""Kinds of the unlabelled-drive study whose drives the teacher labels; "upper" trains on the same
drives with their true map."""
STUDENTS = ("student", "student-long")
"""Groups of the student alone a compared group can be paired with (``partner``)."""


def screen(reference: list[float], value: float) -> dict:
    """A screened setting's val mAP against the reference runs' (the student alone, same schedule,
    several seeds): its gain over their mean, the noise floor (twice their sample standard
    deviation) and whether the gain clears it. Fewer than two references: no floor, never better."""
    mean = float(np.mean(reference))
    floor = 2 * float(np.std(reference, ddof=1)) if len(reference) > 1 else None
    gain = value - mean
    return {"gain": gain, "floor": floor, "better": floor is not None and gain > floor}


def paired(student: dict[int, float], other: dict[int, float], teacher: float | None) -> dict | None:
    """``other`` against ``student`` on the seeds both have (test mAP by seed): differences, their
    mean and std, a two-sided paired t-test, whether the gain is beyond seed noise (NOISE_RULE) and,
    given the teacher's mAP, the share of the teacher-student gap recovered. None without a shared seed."""
    seeds = sorted(set(student) & set(other))
    if not seeds:
        return None
    diffs = np.array([other[s] - student[s] for s in seeds])
    p_value = (
        float(stats.ttest_rel([other[s] for s in seeds], [student[s] for s in seeds]).pvalue)
        if (len(seeds) > 1 and np.ptp(diffs) > 0)
        else None
    )
    comparison = {
        "seeds": seeds,
        "differences": {str(s): float(d) for s, d in zip(seeds, diffs, strict=True)},
        "mean_difference": float(diffs.mean()),
        "std_difference": float(diffs.std(ddof=1)) if len(seeds) > 1 else None,
        "p_value": p_value,
        "beyond_seed_noise": bool((diffs > 0).all() and p_value is not None and p_value < 0.05),
        "rule": NOISE_RULE,
    }
    if teacher is not None:
        gap = teacher - float(np.mean([student[s] for s in seeds]))
        comparison["teacher_mAP"] = teacher
        comparison["gap"] = gap
        comparison["gap_recovered"] = float(diffs.mean() / gap) if gap > 0 else None
    return comparison


def summarize(records: dict[str, RunRecord]) -> dict:
    """Test mAP per group of runs (a group: the runs that differ only in their seed, e.g. "distilled"
    or "unlabeled60": mean, std, per seed) and, per compared group, ``<group>_vs_student``: ``paired``
    against its ``partner`` student group, plus that group's name, both step counts and, for
    teacher-labelled drives, ``label_share`` (what the true map of the same drives gives)."""
    by_group: dict[str, dict[int, float]] = {}
    for record in records.values():
        if record.test is not None:
            by_group.setdefault(record.group, {})[record.seed] = record.test_map
    summary: dict = {
        group: {
            "mAP_mean": float(np.mean(list(seeds.values()))),
            "mAP_std": float(np.std(list(seeds.values()), ddof=1)) if len(seeds) > 1 else None,
            "per_seed": {str(s): v for s, v in sorted(seeds.items())},
        }
        for group, seeds in by_group.items()
    }
    teacher = summary["teacher"]["mAP_mean"] if "teacher" in summary else None
    kinds = {r.group: r.kind for r in records.values()}
    for group in sorted(by_group, key=compared_order):
        student = partner(records, by_group, group) if kinds[group] in COMPARED else None
        if student is not None:
            comparison = paired(by_group[student], by_group[group], teacher)
            if comparison is not None:
                steps = {"steps": group_steps(records, group), "student_steps": group_steps(records, student)}
                summary[f"{group}_vs_student"] = comparison | {"student": student} | steps
                if kinds[group] in TEACHER_LABELLED:
                    upper = "upper" + kind_and_drives(group)[1]
                    share = label_share(by_group[student], by_group[group], by_group.get(upper, {}))
                    summary[f"{group}_vs_student"]["label_share"] = None if share is None else share | {"upper": upper}
    return summary


def label_share(student: dict[int, float], labelled: dict[int, float], upper: dict[int, float]) -> dict | None:
    """How much of the gain of the true map the teacher's labels give, on the seeds the three groups
    share (test mAP by seed): both mean gains over the student and their ratio (None when the true
    map gains nothing). None without a shared seed."""
    seeds = sorted(set(student) & set(labelled) & set(upper))
    if not seeds:
        return None
    gain = float(np.mean([labelled[s] - student[s] for s in seeds]))
    upper_gain = float(np.mean([upper[s] - student[s] for s in seeds]))
    return {
        "seeds": seeds,
        "gain": gain,
        "upper_gain": upper_gain,
        "recovered": gain / upper_gain if upper_gain > 0 else None,
    }


def drive_curve(summary: dict) -> dict[str, dict]:
    """The gain over the student by number of unlabelled drives, per kind of the drive study, from
    ``summarize``'s paired comparisons. Per kind: "drives", by count (string keys), the seeds, mean
    and std of the paired differences; "shared_seeds", the seeds every count of the kind has; and
    "shared_gain", by count, the mean difference on those seeds only, with "0" (the student
    itself) at 0 (empty without a shared seed). Counts compare only on shared seeds: seed noise
    is as large as the gains."""
    curve: dict[str, dict] = {}
    for key, comparison in summary.items():
        group = key.removesuffix("_vs_student")
        kind, drives = kind_and_drives(group)
        if key == group or kind not in DRIVE_STUDY or not drives:
            continue
        curve.setdefault(kind, {"drives": {}})["drives"][drives] = {
            "seeds": comparison["seeds"],
            "mean_difference": comparison["mean_difference"],
            "std_difference": comparison["std_difference"],
            "differences": comparison["differences"],
        }
    for entry in curve.values():
        counts = sorted(entry["drives"], key=int)
        entry["drives"] = {n: entry["drives"][n] for n in counts}
        shared = sorted(set.intersection(*(set(entry["drives"][n]["seeds"]) for n in counts)))
        entry["shared_seeds"] = shared
        entry["shared_gain"] = (
            {"0": 0.0}
            | {n: float(np.mean([entry["drives"][n]["differences"][str(s)] for s in shared])) for n in counts}
            if shared
            else {}
        )
    return {kind: curve[kind] for kind in DRIVE_STUDY if kind in curve}


def partner(records: dict[str, RunRecord], by_group: dict[str, dict], group: str) -> str | None:
    """The student group ``group`` is paired with: the student alone trained as many optimizer steps
    ("student-long" for the long distilled runs and the unlabelled-drive study), else
    "student"; only groups with test results count. None without one."""
    for student in STUDENTS:
        if student in by_group and group_steps(records, student) == group_steps(records, group):
            return student
    return "student" if "student" in by_group else None


def group_steps(records: dict[str, RunRecord], group: str) -> int:
    """The most optimizer steps a run of ``group`` trained."""
    return max(r.steps for r in records.values() if r.group == group)


def kind_and_drives(group: str) -> tuple[str, str]:
    """A group's kind and number of drives, as named: "unlabeled60" -> ("unlabeled", "60"),
    "distilled-long" -> ("distilled-long", "")."""
    kind = group.rstrip("0123456789")
    return kind, group[len(kind) :]


def compared_order(group: str) -> tuple[int, int, str]:
    """distilled first (its two schedules), then the unlabelled study by kind and number of drives."""
    kind, drives = kind_and_drives(group)
    return (COMPARED.index(kind) if kind in COMPARED else len(COMPARED), int(drives or 0), group)


def grad_share_phases(record: RunRecord) -> dict[str, dict]:
    """A run's gradient shares at its first, middle and last measurement."""
    shares = record.grad_share
    if not shares:
        return {}
    picks = {"early": shares[0], "middle": shares[len(shares) // 2], "late": shares[-1]}
    return {phase: dict(entry) for phase, entry in picks.items()}
