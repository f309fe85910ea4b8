"""``ganbench-report <dir>``: compare the runs of a sweep (or any folder of runs) from their records.

Prints the comparison table and writes ``comparison.md``, ``comparison.csv`` and ``samples.png`` to the report folder
(default ``<dir>/report``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ganbench.analysis.comparison import comparison_table, samples_figure
from ganbench.analysis.runs import load_runs
from ganbench.record import SUMMARY_FILE


class ReportError(Exception):
    """Nothing to report on: the message says what was expected where."""


def write_report(root: Path, out_dir: Path | None = None) -> str:
    """Write the report files for the runs under ``root`` and return the table as Markdown."""
    if not root.is_dir():
        raise ReportError(f"no such directory: {root}")
    runs = load_runs(root)
    if runs.empty:
        raise ReportError(
            f"no run records ({SUMMARY_FILE}) under {root}; pass a run or multirun directory written by ganbench-train"
        )
    out_dir = out_dir or root / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    table = comparison_table(runs)
    shown = table.astype(object).where(table.notna(), None)  # tabulate prints None (not NaN) as missingval
    markdown = shown.to_markdown(index=False, floatfmt=".4g", missingval="—")
    (out_dir / "comparison.md").write_text(f"# Loss comparison: {root}\n\n{markdown}\n")
    table.to_csv(out_dir / "comparison.csv", index=False)
    figure = samples_figure(runs)
    if figure is not None:
        figure.savefig(out_dir / "samples.png", dpi=120)
    return markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ganbench-report", description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="a multirun directory (or any folder containing run directories)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: <runs>/report)")
    args = parser.parse_args(argv)
    try:
        markdown = write_report(args.runs, args.out)
    except ReportError as error:
        print(f"ganbench-report: {error}", file=sys.stderr)
        sys.exit(2)
    print(markdown)
    print(f"\nwritten to {args.out or args.runs / 'report'}: comparison.md, comparison.csv, samples.png")


if __name__ == "__main__":
    main()
