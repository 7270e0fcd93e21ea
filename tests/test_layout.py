"""The house in order: the tree shows the architecture, dependencies point down, style and types hold.

These run the project's own checks (import-linter, ruff, mypy) with the settings in
pyproject.toml, so a future upward import, an unstyled line or a type error fails CI.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tinyembed"
MAX_LOOSE_MODULES = 6


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)


def _packages() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def _loose_modules() -> set[str]:
    return {p.stem for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}


def test_few_loose_modules_sit_beside_the_packages():
    loose = _loose_modules()
    assert len(loose) <= MAX_LOOSE_MODULES, f"{len(loose)} loose modules: {sorted(loose)}"


def test_the_package_map_in_init_lists_every_package_and_module_of_the_tree():
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    listed = set()
    for line in doc.splitlines():
        if line.startswith("    ") and line.strip():  # "    name, name     what it is"
            names = line.strip().split("  ")[0]
            listed |= {n.strip() for n in names.split(",")}
    assert listed == _packages() | _loose_modules()


def _imports_of(path: Path):
    """(top-level package of ``path``, [(imported module, names)]) with relative imports resolved."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts  # ('tinyembed', 'nn', 'module')
    package = parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ((node.module,) if node.module else ()))
            else:
                module = node.module or ""
            yield module, [alias.name for alias in node.names], node.lineno


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "tinyembed" else parts[0]


def test_no_private_name_is_imported_from_another_package():
    leaks = []
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for module, names, line in _imports_of(path):
            if not module.startswith("tinyembed"):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private_module = [p for p in module.split(".")[1:] if p.startswith("_")]
            if (private or private_module) and _top(module) != own:
                leaks.append(f"{path.relative_to(ROOT)}:{line} imports {private or private_module} from {module}")
    assert leaks == []


def test_dependencies_point_down_as_the_import_linter_contract_says():
    result = _run("-c", "import sys; from importlinter.cli import lint_imports_command; "
                        "sys.exit(lint_imports_command())")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" in result.stdout and "0 broken" in result.stdout


def test_ruff_finds_nothing():
    result = _run("-m", "ruff", "check", "--no-cache", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_finds_nothing_in_the_library():
    result = _run("-m", "mypy", "--no-incremental")
    assert result.returncode == 0, result.stdout[-4000:]


def test_no_file_keeps_a_merge_conflict():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    markers = ("<<<<<<< ", ">>>>>>> ")
    left = [f"{name}:{i}" for name in tracked if (ROOT / name).suffix in {".py", ".md", ".toml", ".ipynb", ".cfg"}
            for i, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1)
            if line.startswith(markers)]
    assert not left, f"merge conflict markers at {left}"
