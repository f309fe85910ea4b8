"""gpu_check.sh's bookkeeping: the machine, one JSON entry and one printed line per stage, and the Markdown table.

    python scripts/gpu_check_report.py OUT init
    python scripts/gpu_check_report.py OUT add NAME RC SECONDS LIMIT SHOW COMMAND   # exit 1 unless the stage passed
    python scripts/gpu_check_report.py OUT markdown

A stage's figures are the rows of the Markdown tables its script printed (``NAME.log``), the gpu tests' are pytest's
JUnit XML (``NAME.xml``); SHOW is ``junit`` or ``LABEL_COLUMNS:VALUE_COLUMN``, what the printed line shows.
"""

import json
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

RECORD_FILE = "gpu_check.json"
SEPARATOR = re.compile(r"\|[-:| ]+\|")
STATUS = {"0": "ok", "124": "timed out", "137": "timed out", "skipped": "skipped (no time left)"}  # by exit code


def value(cell: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def table_rows(text: str) -> list[dict[str, int | float | str]]:
    """The rows of the Markdown tables in a stage's output (a header is the line above a |---| line)."""
    lines, rows, header = text.splitlines(), [], None
    for line, below in zip(lines, [*lines[1:], ""], strict=True):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            header = None
        elif SEPARATOR.fullmatch(below.strip()):
            header = cells
        elif header and not SEPARATOR.fullmatch(line.strip()):
            rows.append(dict(zip(header, map(value, cells), strict=False)))  # a row cut short by a timeout
    return rows


def test_cases(path: Path) -> list[dict[str, object]]:
    """Each test of a JUnit XML file: name, outcome, seconds and the failure's message."""
    if not path.exists():
        return []
    cases = []
    for case in ET.parse(path).iter("testcase"):
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        outcome = "passed" if problem is None else {"failure": "failed"}.get(problem.tag, problem.tag)
        message = "" if problem is None else (problem.get("message") or "")[:300]
        seconds = float(case.get("time", 0))
        cases.append({"test": case.get("name"), "outcome": outcome, "s": seconds, "message": message})
    return cases


def add(out: Path, name: str, rc: str, seconds: str, limit: str, show: str, command: str) -> None:
    record_path = out / RECORD_FILE
    status = STATUS.get(rc, f"failed (exit {rc})")
    stage = {"status": status, "seconds": int(seconds), "limit_s": int(limit), "command": command}
    if show == "junit":
        stage["tests"] = test_cases(out / f"{name}.xml")
        counts = {o: sum(c["outcome"] == o for c in stage["tests"]) for o in ("passed", "failed", "error", "skipped")}
        summary = ", ".join(f"{n} {o}" for o, n in counts.items() if n) or "no test ran"
        summary += "".join(f"; FAILED {c['test']}" for c in stage["tests"] if c["outcome"] in ("failed", "error"))
    else:
        labels, column = show.split(":")
        log = out / f"{name}.log"
        stage["rows"] = table_rows(log.read_text()) if log.exists() else []
        keys = labels.split(",")
        figures = (f"{' '.join(str(row.get(key)) for key in keys)} {row.get(column)}" for row in stage["rows"])
        summary = f"{column}: " + ", ".join(figures) if stage["rows"] else "no figures"
    err = out / f"{name}.err"
    stderr = [line for line in err.read_text().splitlines() if line.strip()] if err.exists() else []
    if status.startswith("failed") and stderr:  # the last line of a crash or a refusal says why
        stage["error"] = stderr[-1][:300]
        summary += f" | {err.name}: {stage['error']}"
    record = json.loads(record_path.read_text())
    record["stages"][name] = stage
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{name}: {status} in {seconds} s | {summary}", flush=True)
    sys.exit(status != "ok")


def init(out: Path) -> None:
    record_path = out / RECORD_FILE
    import torch

    query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    machine = {
        "gpu": subprocess.run(query, capture_output=True, text=True).stdout.strip(),
        "host": platform.node(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    record = {"started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine, "stages": {}}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"gpu_check: {machine['gpu']}, torch {machine['torch']} (CUDA {machine['cuda']}) -> {out}", flush=True)


def table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = [f"| {' | '.join(columns)} |", f"|{'---|' * len(columns)}"]
    return lines + [f"| {' | '.join(str(row.get(c, '')) for c in columns)} |" for row in rows]


def markdown(out: Path) -> None:
    record_path = out / RECORD_FILE
    record = json.loads(record_path.read_text())
    machine = record["machine"]
    lines = [
        "# GPU check",
        "",
        f"{machine['gpu']}; torch {machine['torch']} (CUDA {machine['cuda']}), Python {machine['python']}; "
        f"started {record['started']}.",
        "",
        *table([{"stage": n, **s} for n, s in record["stages"].items()], ["stage", "status", "seconds", "limit_s"]),
    ]
    for name, stage in record["stages"].items():
        lines += ["", f"## {name}", "", f"`{stage['command']}`", ""]
        if "tests" in stage:
            lines += table(stage["tests"], ["test", "outcome", "s", "message"])
        elif stage["rows"]:
            lines += table(stage["rows"], list(stage["rows"][0]))
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    out, action, *args = Path(sys.argv[1]), sys.argv[2], *sys.argv[3:]
    {"init": init, "add": add, "markdown": markdown}[action](out, *args)


if __name__ == "__main__":
    main()
