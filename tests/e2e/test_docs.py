"""The documentation stays true: the site builds strictly, and the commands it shows exist and run.

Three checks over README.md and every page of docs/:

- `mkdocs build --strict` succeeds (a broken link or anchor, or a page missing from disk, fails it);
- every `abm-sla ...` command shown — in any code block or inline code span — names a real subcommand,
  and every `--option` it shows is an option of that subcommand;
- the ```console blocks are run, in order, page by page, in a fresh folder: each `$ abm-sla ...` line
  must exit 0, and the lines shown under it must be in what it printed. A page's ```csv blocks titled
  `crm-export/<file>.csv` are written there first, so a page can show a small export and run the
  pipeline on it. Runs are direct (no Prefect API), offline.

Marker: a console block that needs a Prefect server, a CRM or the network is preceded by the line
`<!-- docs-test: skip (reason) -->`; it is still checked by the second test, but not run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from abm_sla.cli import app, main

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SKIP_MARKER = re.compile(r"<!--\s*docs-test:\s*skip\b[^>]*-->")
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)


def _blocks(text: str) -> list[tuple[str, str, str, bool]]:
    """(language, attributes, body, skipped) of every fenced block, in order."""
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        skipped = bool(before) and bool(SKIP_MARKER.search(before[-1]))
        found.append((match.group(1), match.group(2), match.group(3), skipped))
    return found


def _commands(text: str) -> list[str]:
    """Every `abm-sla ...` command line of a page: in code blocks (continuations joined) and inline code."""
    lines = []
    for _, _, body, _ in _blocks(text):
        joined = re.sub(r"\\\n\s*", " ", body)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            line = re.sub(r"^(\S+=\S+\s+)+", "", line)  # VAR=value prefixes
            if line.startswith(("abm-sla ", ".venv/bin/abm-sla ")):
                lines.append(line.split("#", 1)[0].strip())
    outside = FENCE.sub("", text)
    lines += [" ".join(span.split()) for span in re.findall(r"`(abm-sla [^`]+)`", outside)]
    return lines


def _command(words: list[str]) -> tuple[object, list[str]]:
    """The click command a command line names, and the words that named it."""
    command = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        if not hasattr(command, "commands"):  # a command, not a group
            break
        choices = word.split("|")
        if word.startswith("-") or not all(choice in command.commands for choice in choices):
            break
        path.append(word)
        command = command.commands[choices[0]]
    return command, path


def _options(command) -> set[str]:
    return {"--help"} | {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_docs_build_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "behaviour" / "index.html").exists()


def test_docs_carry_their_own_contract() -> None:
    """No page sends the reader to a behaviour contract outside the repository."""
    found = [f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
             for page in PAGES
             for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"\bSPEC\b|shared folder|\b[Tt]he spec\b", line)]
    assert not found, "say 'the contract' and link docs/reference/behaviour.md instead:\n" + "\n".join(found)


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_every_command_shown_exists_with_its_options() -> None:
    problems, seen = [], 0
    for page in PAGES:
        for line in _commands(page.read_text(encoding="utf-8")):
            words = line.replace("[", " ").replace("]", " ").split()
            if words[0].endswith("abm-sla"):
                words = words[1:]
            if not words or words[0].startswith(("<", "…")) or words[0].isupper():
                continue  # a placeholder: `abm-sla <command> --help`
            seen += 1
            command, path = _command(words)
            if not path and words != ["--help"]:
                problems.append(f"{page.name}: unknown command: {line}")
                continue
            known = _options(command)
            for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", " ".join(words[len(path):])):
                if option not in known:
                    problems.append(f"{page.name}: {' '.join(path)} has no option {option}: {line}")
    assert seen > 30, "the docs show fewer abm-sla commands than expected: is the parser broken?"
    assert not problems, "\n".join(problems)


def _runnable_pages() -> list[Path]:
    return [page for page in PAGES
            if any(lang == "console" and not skipped for lang, _, _, skipped in _blocks(page.read_text("utf-8")))]


@pytest.mark.parametrize("page", _runnable_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_console_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("ABM_SLA_DATABASE_URL", raising=False)
    monkeypatch.setenv("ABM_SLA_RUNTIME", "direct")
    ran = 0
    for lang, attributes, body, skipped in _blocks(page.read_text(encoding="utf-8")):
        title = re.search(r'title="([^"]+)"', attributes)
        if lang == "csv" and title and title.group(1).startswith("crm-export/"):
            target = tmp_path / title.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        if lang != "console" or skipped:
            continue
        out = None
        for line in body.splitlines():
            if not line.startswith("$ "):
                # output shown under a command: the command printed it (spaces aside)
                if line.strip() and out is not None:
                    assert " ".join(line.split()) in " ".join(out.out.split()), f"{page.name}: not printed: {line}"
                continue
            words = shlex.split(line[2:], comments=True)
            assert words[0] == "abm-sla", f"{page.name}: a console block runs only abm-sla (or mark it skipped): {line}"
            code = main(words[1:])
            out = capsys.readouterr()
            assert code == 0, f"{page.name}: `{line[2:]}` exited {code}: {out.err[-2000:]}"
            ran += 1
    assert ran


def test_operations_page_names_every_deployment_in_full() -> None:
    """Each deployment of prefect.yaml appears as `<flow name>/<deployment name>`, the name the CLI and API take."""
    import importlib

    import yaml

    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    page = (ROOT / "docs" / "operations" / "index.md").read_text(encoding="utf-8")
    missing = []
    for deployment in deployments:
        path, function = deployment["entrypoint"].split(":")
        module = path.removesuffix(".py").replace("/", ".")
        full_name = f"{getattr(importlib.import_module(module), function).name}/{deployment['name']}"
        if f"`{full_name}`" not in page:
            missing.append(full_name)
    assert len(deployments) >= 11
    assert not missing, f"docs/operations/index.md does not name: {missing}"
