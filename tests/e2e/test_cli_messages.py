"""One specific line for each bad argument, and no secret in any of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from abm_sla.cli import main
from tests.e2e.test_cli import small_export  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("db", [
    "postgresql+psycopg://abm@127.0.0.1:1/abm?password=s3cr3t-pw",
    "postgresql+psycopg://abm:s3cr3t-pw@127.0.0.1:1/abm?sslmode=disable",
    "postgresql+psycopg://abm@127.0.0.1:1/abm?sslpassword=s3cr3t-pw&password=s3cr3t-pw",
])
def test_a_password_in_the_database_url_is_never_printed(capsys, db: str) -> None:
    assert main(["export", "scores", "--out", "x.csv", "--db", db]) == 1
    line = error_line(capsys)
    assert "cannot reach the database" in line and "s3cr3t" not in line and "***" in line


def test_a_non_numeric_port_is_named(capsys) -> None:
    assert main(["export", "scores", "--out", "x.csv", "--db", "postgresql+psycopg://abm:pw@db.local:54x2/abm"]) == 1
    line = error_line(capsys)
    assert "the port '54x2' is not a number" in line and ":pw@" not in line


def test_a_binary_model_file_is_named(capsys, small_export: Path, tmp_path: Path) -> None:  # noqa: F811
    model = tmp_path / "model.yaml"
    model.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    assert main(["run", "--path", str(small_export), "--as-of", "2026-03-03", "--model", str(model),
                 "--db", f"sqlite:///{tmp_path / 'w.db'}"]) == 1
    assert f"invalid scoring model {model}: not a YAML text file (binary content at byte" in error_line(capsys)


@pytest.mark.parametrize("as_of", ["99999-01-01", "1500-06-01T00:00:00Z"])
def test_an_out_of_range_year_is_named(capsys, small_export: Path, tmp_path: Path, as_of: str) -> None:  # noqa: F811
    assert main(["run", "--path", str(small_export), "--as-of", as_of, "--db", f"sqlite:///{tmp_path / 'w.db'}"]) == 1
    assert "is out of range: the year must be between 1678 and 2261" in error_line(capsys)


@pytest.mark.parametrize("runtime", ["direct", "prefect"])
def test_a_bad_file_is_one_line_through_prefect_too(
    capsys, monkeypatch, small_export: Path, tmp_path: Path, prefect_harness, runtime: str,  # noqa: F811
) -> None:
    """No Prefect "Finished in state Failed" line before the error's own."""
    monkeypatch.setenv("ABM_SLA_RUNTIME", runtime)
    activities = small_export / "activities.csv"
    activities.write_text(activities.read_text().replace("occurred_at", "when"), encoding="utf-8")
    assert main(["run", "--path", str(small_export), "--as-of", "2026-03-03", "--db",
                 f"sqlite:///{tmp_path / 'w.db'}"]) == 1
    assert error_line(capsys) == "error: activities.csv lacks the required column occurred_at"


@pytest.fixture
def read_only_warehouse(db_url: str, tmp_path: Path):
    """A migrated warehouse and a URL that may only read it: SQLite opened with ``mode=ro``, PostgreSQL as a
    role with ``SELECT`` only."""
    import uuid

    import sqlalchemy as sa

    from abm_sla.warehouse import Warehouse

    store = Warehouse(db_url)
    if store.dialect == "sqlite":
        yield f"sqlite:///file:{store.engine.url.database}?mode=ro&uri=true"
        return
    schema_name = db_url.rsplit("search_path%3D", 1)[1]
    role = f"abm_read_{uuid.uuid4().hex[:8]}"
    statements = [f'CREATE ROLE "{role}" LOGIN', f'GRANT USAGE ON SCHEMA "{schema_name}" TO "{role}"',
                  f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema_name}" TO "{role}"']
    with store.engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    yield db_url.replace("postgres@", f"{role}@", 1)
    with store.engine.begin() as connection:
        connection.execute(sa.text(f'DROP OWNED BY "{role}"'))
        connection.execute(sa.text(f'DROP ROLE "{role}"'))
    store.engine.dispose()


def test_a_read_only_warehouse_says_so(capsys, read_only_warehouse: str, small_export: Path) -> None:  # noqa: F811
    """A run into a warehouse this user may not write is one line that says so (not "cannot reach the
    database"); commands that only read still work."""
    code = main(["run", "--source", "files", "--path", str(small_export), "--as-of", "2026-03-01T12:00:00Z",
                 "--db", read_only_warehouse])
    assert code == 1
    line = error_line(capsys)
    assert line.startswith("error: the warehouse is read-only: "), line
    assert "cannot reach" not in line
    assert main(["runs", "--db", read_only_warehouse]) == 0


def test_a_read_only_warehouse_that_needs_its_migration_says_so(tmp_path: Path) -> None:
    from abm_sla.errors import WarehouseError
    from abm_sla.warehouse import Warehouse

    (tmp_path / "new.db").touch()  # no schema yet: the migration must write
    with pytest.raises(WarehouseError, match=r"^the warehouse is read-only: attempt to write a readonly database"):
        Warehouse(f"sqlite:///file:{tmp_path / 'new.db'}?mode=ro&uri=true")
