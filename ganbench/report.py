"""``ganbench-report <dir>`` or ``ganbench-report --wandb entity/project``: compare runs from their records.

Prints the comparison table and writes ``comparison.md``, ``comparison.csv`` and ``samples.png`` to the report folder
(default ``<dir>/report``). When the runs belong to a study (phases wide, narrow, seeds), it also writes the study
report there (``study.md``: Table 2, search scores, budget curves, metrics per loss and the seeds-phase commands, with
their CSV and PNG files; ganbench.analysis.study_report) and prints Table 2 and the seeds-phase commands.

A ``summary.json`` that is not a run record (garbage, truncated, another format) is left out and listed, with why, on
stderr and at the end of the reports: the exit status is non-zero only when no record can be read.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ganbench.analysis.comparison import comparison_table, samples_figure
from ganbench.analysis.runs import LoadedRuns, load_runs
from ganbench.analysis.study import better_label
from ganbench.analysis.study_report import (
    DEFAULT_SEEDS,
    STUDY_MARKDOWN,
    StudySection,
    is_study,
    markdown_table,
    table2_markdown,
    write_study_report,
)
from ganbench.record import SUMMARY_FILE, Unreadable


class ReportError(Exception):
    """Nothing to report on: the message says what was expected where."""


@dataclass
class Report:
    """What ``write_report`` produced: the comparison table, the files written and the study's sections (if any)."""

    markdown: str
    files: list[str]
    sections: list[StudySection]


def _files(count: int) -> str:
    """'1 summary.json file', '3 summary.json files': how many records a message is about."""
    return f"{count} {SUMMARY_FILE} file{'' if count == 1 else 's'}"


def _listed(unreadable: Unreadable) -> str:
    """One unreadable record as the terminal shows it: the path to open, then why it was left out."""
    return f"{unreadable.path}: {unreadable.reason}"


def runs_from_dir(root: Path) -> LoadedRuns:
    """The runs recorded under ``root``; a clear error when there are none or none can be read (saying why)."""
    if not root.is_dir():
        raise ReportError(f"no such directory: {root}")
    loaded = load_runs(root)
    if not loaded.runs.empty:
        return loaded
    if loaded.unreadable:
        reasons = "; ".join(map(_listed, loaded.unreadable))
        raise ReportError(f"no run record could be read under {root} ({_files(len(loaded.unreadable))}): {reasons}")
    raise ReportError(
        f"no run records ({SUMMARY_FILE}) under {root}; pass a run or multirun directory written by ganbench-train"
    )


def runs_from_wandb(path: str) -> LoadedRuns:
    """The runs of a W&B project; W&B's own failures (no login, no network, no such project) become a ReportError."""
    if not re.fullmatch(r"[^/\s]+/[^/\s]+", path):
        raise ReportError(f"--wandb takes entity/project, got {path!r}")
    import wandb  # imported here: slow to import, and only this path needs it

    from ganbench.analysis.wandb_runs import load_runs_from_wandb

    try:
        runs = load_runs_from_wandb(path)
    except wandb.errors.Error as error:
        raise ReportError(f"could not read the W&B project {path}: {error}") from error
    if runs.empty:
        raise ReportError(f"no finished runs (with a status in their summary) in the W&B project {path}")
    return LoadedRuns(runs, [])


def unreadable_markdown(unreadable: list[Unreadable]) -> str:
    """The report's last section, listing the records left out and why; empty when every record was read."""
    if not unreadable:
        return ""
    items = "\n".join(f"- `{item.path}`: {item.reason}" for item in unreadable)
    return (
        f"\n## Unreadable records\n\n{_files(len(unreadable))} could not be read as run records and are left out of "
        f"this report:\n\n{items}\n"
    )


def unreadable_warning(unreadable: list[Unreadable]) -> str:
    """The same list for stderr: the report is complete for the other runs, but these were not in it."""
    lines = [f"  {_listed(item)}" for item in unreadable]
    heading = f"ganbench-report: {_files(len(unreadable))} could not be read as run records, left out of the report:"
    return "\n".join([heading, *lines])


def write_report(loaded: LoadedRuns, out_dir: Path, title: str, num_seeds: int = DEFAULT_SEEDS) -> Report:
    """Write the comparison of the runs to ``out_dir``, and the study report when they belong to a study; both end
    with the records that could not be read."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = loaded.runs
    table = comparison_table(runs)
    markdown = markdown_table(table)
    unreadable = unreadable_markdown(loaded.unreadable)
    (out_dir / "comparison.md").write_text(f"# Loss comparison: {title}\n\n{markdown}\n{unreadable}")
    table.to_csv(out_dir / "comparison.csv", index=False)
    files = ["comparison.md", "comparison.csv"]
    figure = samples_figure(runs)
    if figure is not None:
        figure.savefig(out_dir / "samples.png", dpi=120)
        files.append("samples.png")
    sections = write_study_report(runs, out_dir, title, num_seeds) if is_study(runs) else []
    if sections:
        with (out_dir / STUDY_MARKDOWN).open("a") as study_markdown:
            study_markdown.write(unreadable)
        files += [STUDY_MARKDOWN, *(name for section in sections for name in section.files.values())]
    return Report(markdown, files, sections)


def study_summary(section: StudySection, num_seeds: int) -> str:
    """Table 2 and the seeds-phase commands of one dataset, as printed on the terminal."""
    heading = (
        f"{section.dataset}: Table 2 (best {section.metric}, {better_label(section.higher_is_better)}; "
        f"search phase {section.search_phase or 'none'})"
    )
    lines = [heading, table2_markdown(section)]
    if section.commands:
        lines += ["", f"Seeds phase: each loss's best setting with {num_seeds} seeds:", *section.commands.values()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ganbench-report", description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="?", help="a multirun or study directory (any folder of run dirs)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs of a W&B project instead (online)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: <runs>/report)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds in the printed seeds-phase commands")
    args = parser.parse_args(argv)
    if (args.runs is None) == (args.wandb is None):
        parser.error("give either a runs directory or --wandb entity/project")
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.wandb:
        title, out_dir = f"W&B {args.wandb}", args.out or Path(f"{args.wandb.replace('/', '_')}_report")
    else:
        title, out_dir = str(args.runs), args.out or args.runs / "report"
    try:
        loaded = runs_from_wandb(args.wandb) if args.wandb else runs_from_dir(args.runs)
        report = write_report(loaded, out_dir, title, args.seeds)
    except ReportError as error:
        print(f"ganbench-report: {error}", file=sys.stderr)
        sys.exit(2)
    print(report.markdown)
    for section in report.sections:
        print(f"\n{study_summary(section, args.seeds)}")
    print(f"\nwritten to {out_dir}: {', '.join(report.files)}")
    if loaded.unreadable:
        print(unreadable_warning(loaded.unreadable), file=sys.stderr)


if __name__ == "__main__":
    main()
