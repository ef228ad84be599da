"""The distillation benchmark's report, rendered from the run records alone (no weights needed).

It writes the results JSON, the markdown report (main table, every compared group seed by seed
against the student with the paired differences, the share of the gap recovered and, for the
teacher-labelled drives, the share of what their true map gives; the gain by number of unlabelled
drives, with its picture; the ablations, the val screening,
the gradient shares early / middle / late, the val curves) and the main table into README between
``<!-- synthetic_kd:begin -->`` and ``<!-- synthetic_kd:end -->``. The numbers come from
``statistics``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mapdistill_core.atomic import atomic_output
from mapdistill_core.config import config_to_dict
from mapdistill_core.distill.config import TERMS
from mapdistill_core.experiment.plan import Plan
from mapdistill_core.experiment.records import RunRecord
from mapdistill_core.experiment.statistics import (
    SCREEN_RULE,
    STUDENTS,
    compared_order,
    drive_curve,
    grad_share_phases,
    screen,
    summarize,
)
from mapdistill_core.map_elements import CLASS_NAMES
from mapdistill_core.metrics import THRESHOLDS
from mapdistill_core.results import provenance, write_json

README_BEGIN, README_END = "<!-- synthetic_kd:begin -->", "<!-- synthetic_kd:end -->"


def _pyplot():
    """pyplot on the Agg backend, imported only when a picture is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save_png(fig, path: Path) -> None:
    """Lay ``fig`` out, write it to ``path`` atomically as a PNG and release it."""
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    _pyplot().close(fig)


def _seeds(seeds: list[int]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}"


def table_groups(summary: dict) -> list[str]:
    """The groups of the main table, in order: teacher, the students alone (main and long schedule),
    the compared groups (distilled on both schedules, then the unlabelled study by kind and number of
    drives), each loss alone."""
    groups = [g for g in summary if "mAP_mean" in summary[g]]
    first = ("teacher", *STUDENTS)
    compared = sorted((g for g in groups if g not in (*first, *TERMS)), key=compared_order)
    return [g for g in first if g in groups] + compared + [t for t in TERMS if t in groups]


def main_table(records: dict[str, RunRecord], summary: dict, architecture: dict[str, dict]) -> str:
    """AP per class and threshold (mean over seeds), test mAP mean ± std, val mAP and parameters."""
    keys = [f"{t:.1f}" for t in THRESHOLDS]
    head = ["model", "seeds"] + [f"{c} @{k}" for c in CLASS_NAMES for k in keys]
    head += ["test mAP", "val mAP", "params (M)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in table_groups(summary):
        rows = [r for r in records.values() if r.group == group and r.test is not None]
        cells = [group, ", ".join(str(r.seed) for r in rows)]
        for c in CLASS_NAMES:
            for k in keys:
                values = [r.test["AP"][c][k] for r in rows if r.test["AP"][c] is not None]
                cells.append(_pct(float(np.mean(values))) if values else "n/a")
        s = summary[group]
        spread = f" ± {_pct(s['mAP_std'])}" if s["mAP_std"] is not None else ""
        arch = architecture.get("teacher" if group == "teacher" else "student", {})
        cells += [
            f"**{_pct(s['mAP_mean'])}**{spread}",
            _pct(float(np.mean([r.val_mAP for r in rows]))),
            f"{arch['params_m']:.2f}" if arch else "n/a",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_text(summary: dict) -> str:
    """Per compared group: its test mAP and the student's seed by seed, the paired statistics, the
    share of the teacher-student gap recovered and, for teacher-labelled drives, of the true map's gain."""
    keys = [k for k in summary if k.endswith("_vs_student")]
    if not keys:
        return "No seed has both a student and a distilled run yet.\n"
    return "\n".join(one_comparison(summary, key.removesuffix("_vs_student")) for key in keys)


def one_comparison(summary: dict, group: str) -> str:
    c = summary[f"{group}_vs_student"]
    student = c["student"]
    lines = [f"| seed | {student} | {group} | {group} - {student} |", "|---|---|---|---|"]
    s, d = summary[student]["per_seed"], summary[group]["per_seed"]
    for seed in c["seeds"]:
        lines.append(
            f"| {seed} | {_pct(s[str(seed)])} | {_pct(d[str(seed)])} | {100 * c['differences'][str(seed)]:+.1f} |"
        )
    std = f" ± {_pct(c['std_difference'])}" if c["std_difference"] is not None else ""
    p = "n/a (fewer than 2 seeds)" if c["p_value"] is None else f"{c['p_value']:.3f}"
    text = "\n".join(lines) + "\n\n"
    text += f"{group} against {student} ({c['student_steps']:,} steps): mean paired difference "
    text += f"{100 * c['mean_difference']:+.1f}{std} mAP over {len(c['seeds'])} seed(s); paired t-test p = {p}. "
    if c.get("gap_recovered") is not None:
        text += (
            f"Teacher {_pct(c['teacher_mAP'])}: the gap to {student} is {_pct(c['gap'])} mAP and "
            f"{group} recovers **{100 * c['gap_recovered']:.0f} %** of it. "
        )
    verdict = "exceeds" if c["beyond_seed_noise"] else "does not exceed"
    text += f"The gain **{verdict} seed noise** (rule: {c['rule']}).\n"
    share = c.get("label_share")
    if share and share["recovered"] is not None:
        seeds = ", ".join(str(s) for s in share["seeds"])
        text += (
            f"\nOn seed(s) {seeds}, the true map of the same drives ({share['upper']}) gains "
            f"{100 * share['upper_gain']:+.1f} mAP over {student}; the teacher's labels give "
            f"{100 * share['gain']:+.1f}, **{100 * share['recovered']:.0f} %** of what labels would.\n"
        )
    if c["steps"] != c["student_steps"]:
        text += (
            f"\n{group}'s runs trained {c['steps']:,} steps, {student}'s {c['student_steps']:,}: this difference "
            "mixes more data with a longer schedule.\n"
        )
    return text


def drives_text(curve: dict[str, dict]) -> str:
    """Per kind of the drive study, the mean paired gain over the student by number of drives (all
    its seeds), then the same on the seeds every count shares."""
    if not curve:
        return "No run of the unlabelled-drive study has finished yet.\n"
    counts = sorted({n for entry in curve.values() for n in entry["drives"]}, key=int)
    lines = ["| kind | " + " | ".join(f"{n} drives" for n in counts) + " |", "|---|" + "---|" * len(counts)]
    for kind, entry in curve.items():
        cells = []
        for n in counts:
            d = entry["drives"].get(n)
            if d is None:
                cells.append("")
                continue
            std = f" ± {_pct(d['std_difference'])}" if d["std_difference"] is not None else ""
            cells.append(f"{100 * d['mean_difference']:+.1f}{std} ({_seeds(d['seeds'])})")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\nTest mAP gain over the student that trained as many steps, mean ± std of the paired "
    text += "differences over the seeds listed. On the seeds every count of a kind shares:\n\n"
    for kind, entry in curve.items():
        if entry["shared_gain"]:
            gains = ", ".join(f"{n} drives {100 * g:+.1f}" for n, g in entry["shared_gain"].items())
            text += f"- {kind} ({_seeds(entry['shared_seeds'])}): {gains}\n"
        else:
            text += f"- {kind}: its numbers of drives share no seed\n"
    return text


def plot_drives(curve: dict[str, dict], path: Path) -> None:
    """Gain over the student by number of unlabelled drives, one line per kind: on the seeds every
    count shares (solid), and the mean ± std over all seeds of each count (error bars). A PNG."""
    plt = _pyplot()
    colors = {"unlabeled": "tab:red", "pseudo": "tab:orange", "upper": "tab:green"}
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for offset, (kind, entry) in enumerate(curve.items()):
        color = colors.get(kind, "tab:gray")
        if entry["shared_gain"]:
            xs = [int(n) for n in entry["shared_gain"]]
            ax.plot(
                xs,
                [100 * g for g in entry["shared_gain"].values()],
                color=color,
                marker="o",
                label=f"{kind}, {_seeds(entry['shared_seeds'])}",
            )
        for n, d in entry["drives"].items():
            std = 0.0 if d["std_difference"] is None else 100 * d["std_difference"]
            ax.errorbar(
                int(n) + (offset - 1),  # the kinds a drive apart, so their bars do not overlap
                100 * d["mean_difference"],
                yerr=std,
                color=color,
                fmt="s",
                alpha=0.5,
                markerfacecolor="none",
                capsize=3,
            )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("unlabelled drives added to the train split")
    ax.set_ylabel("test mAP gain over the student")
    ax.set_title("Gain by unlabelled drives (squares: mean ± std over all seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save_png(fig, path)


def grid_text(records: dict[str, RunRecord], plan_setting: dict) -> str:
    """The grid's val table. With reference runs (the student alone on the grid's schedule, one
    per seed) every setting is screened against their noise floor (``screen``); without them an
    entry with every lambda 0 is the reference, and the best setting is compared with it."""
    grid = [r for r in records.values() if r.kind == "grid"]
    references = [r for r in records.values() if r.kind == "reference"]
    if references:
        return screening_text(grid, references, plan_setting)
    if not grid:
        return "No grid run has finished yet.\n"
    reference = [r for r in grid if all(r.setting.get(t, 0.0) == 0 for t in TERMS)]
    settings = [r for r in grid if r not in reference]
    best = max(settings, key=lambda r: r.val_mAP) if settings else None
    lines = ["| run | setting (what differs from the plan's) | val mAP |", "|---|---|---|"]
    for r in grid:
        changed = {k: v for k, v in r.setting.items() if plan_setting.get(k) != v}
        setting = ", ".join(f"{k} {v}" for k, v in changed.items()) or "the plan's"
        mark = " (best)" if r is best else " (reference: no distillation)" if r in reference else ""
        lines.append(f"| {r.name} | {setting} | {_pct(r.val_mAP)}{mark} |")
    text = "\n".join(lines) + "\n"
    if best is None:
        return text
    notes = [
        "The plan's distillation setting is the best on val."
        if best.setting == plan_setting
        else "The plan's distillation setting is **not** the grid's best on val; the main runs use the plan's."
    ]
    if reference:
        ref = reference[0]
        verdict = "above" if best.val_mAP > ref.val_mAP else "**not above**"
        notes.append(
            f"The best setting ({best.name}, {_pct(best.val_mAP)}) is {verdict} the student without "
            f"distillation on the same schedule ({ref.name}, {_pct(ref.val_mAP)})."
        )
    return text + "\n" + " ".join(notes) + "\n"


def changed_setting(setting: dict, plan_setting: dict) -> str:
    changed = {k: v for k, v in setting.items() if plan_setting.get(k) != v}
    return ", ".join(f"{k} {v}" for k, v in changed.items()) or "the plan's"


def screening_text(grid: list[RunRecord], references: list[RunRecord], plan_setting: dict) -> str:
    """Each screened setting's val mAP, its gain over the references' mean and the verdict."""
    values = [r.val_mAP for r in references]
    floor = screen(values, values[0])["floor"]
    spread = f" ± {_pct(float(np.std(values, ddof=1)))}" if len(values) > 1 else ""
    lines = [
        f"Reference (the student alone, same schedule): {', '.join(r.name for r in references)}: val mAP "
        f"{_pct(float(np.mean(values)))}{spread}; noise floor (twice the seed deviation) "
        f"{'n/a (fewer than 2 seeds)' if floor is None else _pct(floor)}. Rule: {SCREEN_RULE}.\n",
        "| run | setting (what differs from the plan's) | val mAP | gain | better |",
        "|---|---|---|---|---|",
    ]
    if not grid:
        lines.append("| (no screened setting has finished yet) | | | | |")
    for r in grid:
        verdict = screen(values, r.val_mAP)
        lines.append(
            f"| {r.name} | {changed_setting(r.setting, plan_setting)} | {_pct(r.val_mAP)} | "
            f"{100 * verdict['gain']:+.1f} | {'**yes**' if verdict['better'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def grad_share_text(records: dict[str, RunRecord]) -> str:
    """Each term's share of the gradient norm and, where the run logged it, the cosine between its
    gradient and the map loss's (below 0: the term pulls against the task)."""
    terms = ("map", *TERMS)
    lines = ["| run | phase (step) | " + " | ".join(terms) + " |", "|---|---|" + "---|" * len(terms)]
    for r in records.values():
        cosines = {entry["step"]: entry for entry in r.grad_cosine}
        for phase, entry in grad_share_phases(r).items():
            cos = cosines.get(entry["step"], {})
            cells = [
                "-" if t not in entry else _pct(entry[t]) + " %" + (f" (cos {cos[t]:+.2f})" if t in cos else "")
                for t in terms
            ]
            lines.append(f"| {r.name} | {phase} ({entry['step']}) | " + " | ".join(cells) + " |")
    if len(lines) == 2:
        return "No run with distillation terms has finished yet.\n"
    return "\n".join(lines) + "\n"


def curves_text(records: dict[str, RunRecord]) -> str:
    runs = [r for r in records.values() if r.val_curve]
    epochs = sorted({p["epoch"] for r in runs for p in r.val_curve})
    lines = ["| run | " + " | ".join(str(e) for e in epochs) + " |", "|---|" + "---|" * len(epochs)]
    for r in runs:
        by_epoch = {p["epoch"]: p["mAP"] for p in r.val_curve}
        lines.append(
            f"| {r.name} | " + " | ".join(_pct(by_epoch.get(e)) if e in by_epoch else "" for e in epochs) + " |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(records: dict[str, RunRecord], path: Path) -> None:
    """Val mAP by epoch of every run but the grid, one colour per kind: a PNG."""
    plt = _pyplot()
    colors = {"teacher": "black", "student": "tab:blue", "distilled": "tab:red"}
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for r in records.values():
        if r.kind == "grid" or not r.val_curve:
            continue
        xs = [p["epoch"] for p in r.val_curve]
        ys = [100 * p["mAP"] for p in r.val_curve]
        ax.plot(
            xs,
            ys,
            color=colors.get(r.kind, "tab:gray"),
            alpha=0.9 if r.kind in colors else 0.4,
            label=r.name,
            marker="o",
            markersize=3,
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("val mAP")
    ax.set_title("Synthetic KD benchmark: val mAP by epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _save_png(fig, path)


def write_report(plan: Plan, records: dict[str, RunRecord], pending: list[str], architecture: dict[str, dict]) -> dict:
    """Write the plan's results (JSON), table (markdown), the val-curve and gain-by-drives PNGs beside
    it and README's table."""
    plan_path, setting, plan = plan.path, plan.full_setting, plan.config
    summary = summarize(records)
    curve = drive_curve(summary)
    table = main_table(records, summary, architecture)
    document = {
        "meta": provenance(
            plan=plan_path, plan_config=config_to_dict(plan), split="test", selection="best val mAP per run"
        ),
        "summary": summary,
        "drive_study": curve,
        "architecture": architecture,
        "pending": pending,
        "runs": {name: r.to_dict() for name, r in records.items()},
    }
    write_json(plan.results, document)
    curves = Path(plan.table).with_suffix(".png")
    drives = Path(plan.table).with_name(Path(plan.table).stem + "_drives.png")
    if records:
        plot_curves(records, curves)
    if curve:
        plot_drives(curve, drives)
    pending_text = f"Not finished yet: {', '.join(pending)}.\n" if pending else "Every run of the plan has finished.\n"
    markdown = "\n".join(
        [
            f"# Synthetic distillation benchmark\n\n`mapdistill experiment --config {plan_path}`; every run's "
            f"record (config, val curve, gradient shares, test metrics, machine) is in `{plan.records}/`.\n",
            pending_text,
            "## Test mAP (checkpoint selected on val, test evaluated once)\n",
            table,
            "AP in %, mean over the seeds listed; ± is the standard deviation over seeds. Speed: see README's "
            "`make bench` table.\n",
            "## Against the student, seed by seed\n",
            comparison_text(summary),
            "## Gain with the number of unlabelled drives\n",
            (f"![gain by drives]({drives.name})\n\n" if curve else "") + drives_text(curve),
            "## Distillation setting grid (val only)\n",
            grid_text(records, setting),
            "## Share of the student's gradient norm per loss term (cos: alignment with the map loss's gradient)\n",
            grad_share_text(records),
            "## Val mAP by epoch\n",
            f"![val curves]({curves.name})\n",
            curves_text(records),
        ]
    )
    with atomic_output(plan.table) as tmp:
        tmp.write_text(markdown, encoding="utf-8")
    if plan.readme:
        update_readme(Path(plan.readme), table + "\n" + comparison_text(summary))
    return document


def update_readme(path: Path, content: str) -> None:
    """Replace the text between README's benchmark markers with ``content``."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: no '{README_BEGIN}' ... '{README_END}' markers for the benchmark table")
    replaced = pattern.sub(lambda _: f"{README_BEGIN}\n{content}{README_END}", text)
    with atomic_output(path) as tmp:
        tmp.write_text(replaced, encoding="utf-8")
