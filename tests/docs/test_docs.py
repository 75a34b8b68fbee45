"""The README and docs/ stay true to the repository: links resolve, every flag is documented.

The README is a front page (at most 250 lines); everything else lives in docs/, one page
per topic. These tests keep it that way: every relative link (and ``#anchor``) in
README.md and docs/*.md points at a file (and heading) that exists, every flag that
``jcsr-bench --help`` or a subcommand's ``--help`` shows appears in docs/, and every page
is reachable from the index.
"""

from __future__ import annotations

import argparse
import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

from helpers import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
README_MAX_LINES = 250


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


@cache
def tokens(path: Path) -> list:
    return MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))


def github_slug(text: str) -> str:
    """GitHub's heading anchor (github-slugger): lower case, punctuation dropped (letters,
    digits, ``_``, ``-`` and spaces kept), each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file; repeated headings get -1, -2, ... as on GitHub."""
    found: list[str] = []
    seen: dict[str, int] = {}
    stream = tokens(path)
    for i, token in enumerate(stream):
        if token.type != "heading_open":
            continue
        text = "".join(child.content for child in stream[i + 1].children or []
                       if child.type in ("text", "code_inline"))
        slug = github_slug(text)
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}"
        else:
            seen[slug] = 0
        found.append(slug)
    return frozenset(found)


def links(path: Path) -> list[str]:
    """Targets of the file's links and images (code blocks and spans excluded)."""
    found = []
    for token in tokens(path):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(child.attrs["href"])
            elif child.type == "image":
                found.append(child.attrs["src"])
    return found


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    root = root.resolve()
    problems = []
    for target in links(path):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:  # https://..., mailto:: not ours to check
            continue
        where = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if root not in where.parents:
            problems.append(f"{target}: outside the repository")
        elif not where.is_file():
            problems.append(f"{target}: no such file")
        elif parts.fragment and where.suffix == ".md" and parts.fragment not in anchors(where):
            problems.append(f"{target}: no heading #{parts.fragment} in "
                            f"{where.relative_to(root).as_posix()}")
    return problems


@pytest.mark.parametrize("path", pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_slugs_follow_githubs_rules():
    assert github_slug("The `ci` suite") == "the-ci-suite"
    assert github_slug("Threads, and running on a cluster") == "threads-and-running-on-a-cluster"
    assert github_slug("Reproducing the paper's baseline 2 over baseline 1") == \
        "reproducing-the-papers-baseline-2-over-baseline-1"
    assert github_slug("Comparing: `compare BASELINE CURRENT`") == \
        "comparing-compare-baseline-current"


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# A heading\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-heading) [again](other.md#twice-1) [self](#top)\n"
                    "[gone](missing.md) [bad](other.md#nope) [web](https://example.com)\n"
                    "[up](../../x.md) `[code](missing.md)`\n\n# Top\n")
    assert broken_links(page, root=tmp_path) == [
        "missing.md: no such file", "other.md#nope: no heading #nope in other.md",
        "../../x.md: outside the repository"]


def cli_flags() -> dict[str, set[str]]:
    """``{"jcsr-bench run": {"--suite", ...}, ...}``: every long option each ``--help``
    shows, the top-level parser's and each subcommand's (nested ones too)."""
    from jcsr_bench.cli.main import build_parser

    shown: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        flags = shown.setdefault(name, set())
        for action in parser._actions:
            if action.help != argparse.SUPPRESS:
                flags.update(o for o in action.option_strings if o.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    walk(sub, f"{name} {command}")

    walk(build_parser(), "jcsr-bench")
    return shown


def docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def test_every_flag_the_help_shows_is_documented_in_docs():
    shown = cli_flags()
    assert {"jcsr-bench run", "jcsr-bench compare", "jcsr-bench list"} <= set(shown)
    assert "--qualities" in shown["jcsr-bench run"] and "--help" in shown["jcsr-bench"]
    text = docs_text()
    missing = sorted(f"{command} {flag}" for command, flags in shown.items() for flag in flags
                     if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text))
    assert missing == [], "flags no page under docs/ mentions (add them to docs/commands.md)"


def test_every_subcommand_has_its_section_in_the_commands_page():
    commands = {name.split()[1] for name in cli_flags() if name.count(" ") == 1}
    assert commands >= {"run", "leaderboard", "compare", "train-sr"}
    assert commands <= anchors(DOCS / "commands.md")


def test_the_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move topics to docs/"
    text = "\n".join(lines)
    # CI (.ci/run) runs exactly the README's test command; the Quick start keeps both.
    assert "pip install -q -e \".[test]\" && python -m pytest -q\n" in text
    assert "pip install -q -e \".[test]\" && jcsr-bench run\n" in text
    assert "jcsr-bench run --codec bmshj --sr esrgan-b2" in text
    assert any(t.startswith("leaderboards/samples/") and t.endswith(".png")
               for t in links(README)), "the tour of a run's outputs shows a committed picture"


def test_every_docs_page_is_reachable_from_the_index_and_the_readme():
    index = {(DOCS / urlsplit(t).path).resolve() for t in links(DOCS / "index.md")
             if not urlsplit(t).scheme}
    assert {p.resolve() for p in DOCS.glob("*.md")} - {(DOCS / "index.md").resolve()} <= index
    assert "docs/index.md" in links(README)


def test_the_plugin_guides_test_snippet_lives_in_one_place():
    marker = "```python\nimport jcsr_posterize.plugin\n"
    counts = {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8").count(marker)
              for p in pages()}
    assert {page: n for page, n in counts.items() if n} == {"docs/plugins.md": 1}
