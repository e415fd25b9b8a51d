"""The package layout is the architecture: which folder may import which (docs/architecture.md says it in words)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The layers, inner first; a layer may import itself and those listed for it (plus the standard library and
# third-party packages not forbidden below).
ALLOWED = {
    "abm_sla": set(),
    "abm_sla.errors": set(),
    "abm_sla.domain": {"abm_sla.errors"},
    "abm_sla.infra": {"abm_sla.errors"},
    # The adapters: CRM sources and the warehouse (a sync writes what it reads; the warehouse keys on CRM records).
    "abm_sla.crm": {"abm_sla.errors", "abm_sla.domain", "abm_sla.infra", "abm_sla.warehouse"},
    "abm_sla.warehouse": {"abm_sla.errors", "abm_sla.domain", "abm_sla.infra", "abm_sla.crm"},
    "abm_sla.services": {"abm_sla.errors", "abm_sla.domain", "abm_sla.infra", "abm_sla.crm", "abm_sla.warehouse"},
    # The composition root: the command line runs the flows (imported lazily: Prefect is slow to import).
    "abm_sla.cli": {"abm_sla", "tasks", "flows", "deployments"},
    "tasks": {"abm_sla"},
    "flows": {"abm_sla", "tasks"},
    "deployments": {"abm_sla", "tasks", "flows"},
}
# The pure domain touches no database, network, files, templates, terminal or orchestrator.
DOMAIN_FORBIDDEN = {"prefect", "sqlalchemy", "alembic", "psycopg", "duckdb", "dask", "distributed", "requests",
                    "httpx", "urllib3", "simple_salesforce", "hubspot", "jinja2", "matplotlib", "rich", "typer",
                    "os", "shutil", "subprocess", "socket", "tempfile", "csv", "sqlite3"}
CLOCK = re.compile(r"\b(?:(?:datetime|dt\.datetime|Timestamp|pd\.Timestamp)\.(?:now|utcnow|today)|"
                   r"date\.today|time\.time|time\.monotonic)\(")
FILE_IO = re.compile(r"\.(?:read_text|write_text|read_bytes|write_bytes|open)\(|\bopen\(|\bread_csv\(|\.to_csv\(")


def layer(module: str) -> str | None:
    """The layer a dotted module name belongs to (the longest ALLOWED key it starts with)."""
    keys = [key for key in ALLOWED if module == key or module.startswith(key + ".")]
    return max(keys, key=len) if keys else None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, the names of `from abm_sla import x` resolved to `abm_sla.x`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in {"abm_sla", "abm_sla.domain", "abm_sla.services", "abm_sla.infra"}:
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def sources(*folders: str) -> list[Path]:
    found = (path for folder in folders for path in (ROOT / folder).rglob("*.py"))
    return sorted(path for path in found if "migrations" not in path.parts)


@pytest.mark.parametrize("path", sources("abm_sla", "tasks", "flows", "deployments"), ids=module_name)
def test_a_module_imports_only_the_layers_beneath_it(path: Path) -> None:
    own = layer(module_name(path))
    assert own is not None, f"{module_name(path)} is in no layer: add it to ALLOWED and docs/architecture.md"
    wrong = [f"line {line}: {name}" for line, name in imports(path)
             if (target := layer(name)) and target != own and not any(
                 target == allowed or target.startswith(allowed + ".") for allowed in ALLOWED[own])]
    if own.startswith("abm_sla"):
        wrong += [f"line {line}: {name}" for line, name in imports(path) if name.split(".")[0] == "prefect"]
    assert not wrong, f"{module_name(path)} ({own}) imports outside its layer: {wrong}"


@pytest.mark.parametrize("path", sources("abm_sla/domain"), ids=module_name)
def test_the_domain_reads_no_clock_and_does_no_io(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    forbidden = [f"line {line}: {name}" for line, name in imports(path) if name.split(".")[0] in DOMAIN_FORBIDDEN]
    assert not forbidden, f"{module_name(path)} imports I/O or orchestration: {forbidden}"
    assert not CLOCK.search(text), f"{module_name(path)} reads the clock: {CLOCK.search(text)[0]}"
    assert not FILE_IO.search(text), f"{module_name(path)} reads or writes files: {FILE_IO.search(text)[0]}"


def test_the_checks_catch_a_violation(tmp_path: Path) -> None:
    """The walker sees a forbidden import and a clock read (so the tests above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from abm_sla import stages\nimport sqlalchemy\nx = pd.Timestamp.now()\n")
    names = [name for _, name in imports(bad)]
    assert names == ["abm_sla.stages", "sqlalchemy"]
    assert CLOCK.search(bad.read_text())
    assert layer("abm_sla.services.stages") == "abm_sla.services"
    assert "abm_sla.services" not in ALLOWED["abm_sla.domain"]
