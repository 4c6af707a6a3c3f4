"""What README.md says, held to what the program does: a user who follows it gets what it shows."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from aggregator.config import SiteConfig, SourceSettings

from .conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _config_example() -> str:
    """The YAML block under `## Configuration`, as a user would save it."""
    section = README.split("\n## Configuration\n", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_readme_configuration_example_passes_check(tmp_path):
    """Saved as a file, it failed `check` (`site.templates: not a folder`): it named a
    `theme` folder no user has."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(_config_example(), encoding="utf-8")
    result = run_cli("--config", str(cfg), "check", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    assert "1 category, 1 source" in result.stdout


def test_every_site_key_is_in_the_readme_configuration_example():
    """`site.description` and `site.user_agent` were read but shown nowhere in the README."""
    example = _config_example()
    site = example.split("site:\n", 1)[1].split("\ndefaults:", 1)[0]
    shown = set(re.findall(r"^  (?:# )?(\w+):", site, re.MULTILINE))
    assert set(SiteConfig.model_fields) - shown == set()


def test_every_source_setting_has_a_row_in_the_readme_polling_table():
    """`timezone`, a source setting (default `site.timezone`), was missing from the table of
    source settings, as were the filter and retention keys documented further on."""
    table = README.split("Source settings (also allowed under\n`defaults:`):", 1)[1].split("\n\n", 2)[1]
    keys = {key for row in table.splitlines() for key in re.findall(r"`(\w+)`", row.split(" | ")[0])}
    assert set(SourceSettings.model_fields) - keys == set()


def test_the_tests_without_the_shared_folder_stop_naming_it(tmp_path):
    """The README's test command in a clone placed without `../shared/` beside it failed to
    collect five modules with FileNotFoundErrors; it stops at once, naming the folder."""
    clone = tmp_path / "aggregator"
    (clone / "tests").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "conftest.py", clone / "tests" / "conftest.py")
    (clone / "tests" / "__init__.py").write_text("")
    (clone / "tests" / "test_one.py").write_text("def test_one():\n    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 4, out  # a usage error: nothing collected, nothing run
    assert f"the tests need the shared folder beside the checkout, {tmp_path / 'shared'}" in out, out
    assert "FileNotFoundError" not in out and "1 passed" not in out, out
    quick_start = README.split("## Commands", 1)[0]  # and the README says so by the test command
    assert all(f"`{part}/`" in quick_start for part in ("corpus", "reference", "schemas", "tools"))


def test_the_readme_names_every_debian_package_ci_installs():
    """`.ci/run` installs and requires `jekyll`, which the README's list left out."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    packages = {p for group in re.findall(r"missing\+=\(([^)]*)\)", script) for p in group.split()}
    assert "jekyll" in packages
    listed = README.split("(`.ci/run` does the same", 1)[1].split("## Commands", 1)[0]
    assert {p for p in packages if f"`{p}`" not in listed} == set()


EXIT_CODE = re.compile(r"(?<![\w.-])(0|1|2|130)(?![\w-]|\.\d)")  # not in `0.1`, `-1`, `utf-8`


def _command_rows() -> list[tuple[str, str]]:
    """(command, exit code column) of each row of the README's command table."""
    table = README.split("## Commands\n", 1)[1].strip().split("\n\n", 1)[0]
    rows = []
    for row in table.splitlines()[2:]:
        cells = row.split(" | ")
        rows.append((re.match(r"\| `aggregator ([a-z-]+)", cells[0]).group(1), cells[-1].rstrip(" |")))
    return rows


def test_the_help_gives_the_exit_codes_the_readme_gives():
    """`fetch --help` left out 130 (interrupted), and `run --help` gave exit 1 only for another
    daemon or a port taken, not for a `--host` that is no address of this machine, as the
    README does; `serve` and `publish` gave none. A command whose help states its exit codes
    states each the README's row gives, and the same reasons for `--host`."""
    rows = _command_rows()
    assert {"fetch", "run", "serve", "publish"} <= {command for command, _ in rows}
    helps = {}
    for command, codes in rows:
        if command not in helps:
            result = run_cli(command, "--help")
            assert result.returncode == 0, result.stderr
            helps[command] = " ".join(result.stdout.split())
        text = helps[command]
        if "xit " not in text:
            continue  # states no exit code (`status`): the README's general rules hold
        readme, stated = (set(EXIT_CODE.findall(words)) for words in (codes, text))
        assert readme - stated == set(), (command, codes, text)
        if "no address of this machine" in codes:
            assert "--host is no address of this machine" in text, (command, text)
    assert all("xit " in helps[command] for command in ("fetch", "run", "serve", "publish"))
