"""Developer sessions: `nox -l` lists them. The README's test command runs `tests`,
`tests-interpreter` and `docs`; `bench` and `gpu` run only when asked for."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "tests-interpreter", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PACKAGES = ["packages/core", "packages/stages", "packages/gpu-triton"]
# Machines without a GPU pin torch's CPU build (a newer torch means a multi-GB CUDA wheel).
CPU_CONSTRAINTS = ["-c", str(ROOT / "constraints" / "cpu.txt")]
# The GPU session pins the torch and Triton the GPU machines run (CUDA builds).
GPU_CONSTRAINTS = ["-c", str(ROOT / "constraints" / "gpu.txt")]
TESTPATHS = ["packages/core/tests", "packages/stages/tests", "packages/gpu-triton/tests", "tests"]
BENCH_ARGS = ["-o", "python_files=bench_*.py"]


def install(session: nox.Session, *groups: str, packages: list[str] = PACKAGES) -> None:
    """Install the given packages (editable) and dev dependency groups."""
    requirements: list[str] = []
    for group in groups:
        requirements += nox.project.dependency_groups(PYPROJECT, group)
    constraints = GPU_CONSTRAINTS if session.name == "gpu" else CPU_CONSTRAINTS
    editable = [arg for pkg in packages for arg in ("-e", pkg)]
    session.install(*constraints, *editable, *requirements)


@nox.session
def tests(session: nox.Session) -> None:
    """Run every test that needs neither a GPU nor the Triton interpreter."""
    install(session, "test")
    session.run(
        "pytest",
        *TESTPATHS,
        "-m",
        "not gpu and not interpreter and not compile_check",
        *session.posargs,
    )


@nox.session(name="tests-interpreter")
def tests_interpreter(session: nox.Session) -> None:
    """Run the Triton kernels under TRITON_INTERPRET=1, then compile them for sm_80/sm_90."""
    install(session, "test")
    session.run(
        "pytest",
        "packages/gpu-triton/tests",
        "tests",
        "-m",
        "interpreter and not gpu",
        *session.posargs,
        env={"TRITON_INTERPRET": "1"},
    )
    session.run("pytest", "packages/gpu-triton/tests", "-m", "compile_check", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint with ruff, and check core's layering with import-linter."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    # import-linter reads the source of an importable package; core's dependencies are not
    # needed for that.
    session.install("--no-deps", "-e", "packages/core")
    session.run("ruff", "check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check every package's sources with mypy --strict."""
    # core's `cli` extra brings rich, which pydotcompute.cli._display imports (when installed);
    # `metrics` brings prometheus-client (typed), which the metrics endpoint imports.
    install(session, "typecheck", packages=["packages/core[cli,metrics]", *PACKAGES[1:]])
    session.run("mypy", *(f"{pkg}/src" for pkg in PACKAGES))


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with mkdocs --strict: a broken link, a
    missing page or a docstring mkdocstrings cannot read fails it. (Every code block of
    the pages runs in `tests`: tests/test_docs.py.)"""
    install(session, "docs", packages=["packages/core[cli]", "packages/stages"])
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"))


@nox.session
def demo(session: nox.Session) -> None:
    """Run the guide's pipeline on the CPU and print its results and telemetry."""
    install(session, packages=["packages/core[cli]", "packages/stages"])
    session.run("pydotcompute", "demo", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run the CPU benchmarks, save the run, and compare with the last saved one."""
    install(session, "test", "bench")
    storage = ROOT / ".benchmarks"
    compare = ["--benchmark-compare"] if any(storage.rglob("*.json")) else []
    session.run(
        "pytest",
        "benchmarks",
        "--ignore=benchmarks/gpu",
        *BENCH_ARGS,
        "--benchmark-autosave",
        *compare,
        *session.posargs,
    )


@nox.session(default=False)
def gpu(session: nox.Session) -> None:
    """On a CUDA machine with a network: what benchmarks/gpu/run_gpu_checks.sh does on one
    without (wheels of this checkout, the gpu tests, the GPU benchmarks, one JSON of every
    figure in .benchmarks/gpu/), with torch and Triton pinned (constraints/gpu.txt)."""
    install(session, "test")
    python = str(Path(session.bin) / "python")
    wheels = Path(session.create_tmp()) / "wheels"
    scripts = ROOT / "benchmarks" / "gpu"
    env = {"PYTHON": python}
    session.run("bash", str(scripts / "build_wheels.sh"), str(wheels), "--packages-only", env=env)
    out = ROOT / ".benchmarks" / "gpu"
    session.run(
        "bash",
        str(scripts / "run_gpu_checks.sh"),
        str(wheels),
        "--out",
        str(out),
        *session.posargs,
        env=env,
    )
