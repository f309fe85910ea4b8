"""The package as users install it without the checkout: a wheel built from the project's files, installed into a
fresh virtual environment outside the repository, runs a job, composes a user's config folder over the packaged
configs and reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers.cli import FAST

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment (about half a minute)

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "README.md", "ganbench", "hydra_plugins", "conf"]  # what a build reads


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the project's files (a build writes into its source tree). Without build
    isolation: the test's own setuptools builds it, so no download is needed."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), "."]
    done = subprocess.run(build, cwd=source, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = dist.glob("ganbench-*.whl")
    return built


def test_the_wheel_holds_every_module_and_config(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "ganbench").rglob("*.py") if "conf" not in path.parts}
    plugins = {str(path.relative_to(ROOT)) for path in (ROOT / "hydra_plugins").rglob("*.py")}
    configs = {f"ganbench/{path.relative_to(ROOT)}" for path in (ROOT / "conf").rglob("*.yaml")}
    assert modules | plugins | configs <= names, sorted((modules | plugins | configs) - names)


def test_a_wheel_installed_outside_the_checkout_trains_composes_user_configs_and_reports(
    wheel: Path, tmp_path: Path
) -> None:
    """The fresh environment gets the wheel alone; its dependencies come from this test's environment through a .pth
    line (installing torch again would take minutes), which adds their folder without processing its .pth files: the
    checkout's editable install stays out of reach. The job runs from a folder outside the checkout."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    Path(site_packages, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    work = tmp_path / "work"
    (work / "my_conf" / "loss").mkdir(parents=True)
    (work / "my_conf" / "loss" / "my_ns.yaml").write_text("defaults:\n  - ns\n  - _self_\nname: my_ns\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "WANDB_SERVICE")}
    train = [
        str(environment / "bin" / "ganbench-train"), "loss=my_ns", f"hydra.searchpath=[file://{work / 'my_conf'}]",
        "hydra.run.dir=run", *FAST,
    ]  # fmt: skip
    done = subprocess.run(train, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "my_ns on ring: completed after 20 G steps" in done.stdout
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["loss"] == "my_ns"
    where = subprocess.run(
        [python, "-c", "import ganbench, ganbench.train as t; print(ganbench.__file__); print(t.CONFIG_DIR)"],
        cwd=work, env=env, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(site_packages) for path in where), where  # the installed copy, not the checkout

    report = subprocess.run(
        [str(environment / "bin" / "ganbench-report"), "run"], cwd=work, env=env, capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert (work / "run" / "report" / "comparison.md").exists()
