"""MkDocs hook: the committed results in the site, from results/ itself (never copied by hand).

`<!-- include: results/REPORT.md -->` on a page is replaced by that file, its relative links
rewritten to results/...; every file of results/ that a page links to (figures, tables, the
folders' READMEs) is added to the site under results/, so links resolve and the strict build
catches one that does not.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r"<!-- include: (results/[\w./-]+) -->")
LINK = re.compile(r"\]\((?!https?://|#|/)([^)#\s]+)(#[^)]*)?\)")
WANTED = (".png", ".csv", ".md")


def _rewritten(path: Path) -> str:
    text = path.read_text()
    base = path.parent.relative_to(ROOT)
    return LINK.sub(lambda mo: f"]({(base / mo.group(1)).as_posix()}{mo.group(2) or ''})", text)


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    def include(mo):
        text = _rewritten(ROOT / mo.group(1))
        depth = page.file.src_uri.count("/")
        return LINK.sub(lambda m: f"]({'../' * depth}{m.group(1)}{m.group(2) or ''})", text) if depth else text

    return INCLUDE.sub(include, markdown)


def on_files(files, config, **kwargs):
    for path in sorted((ROOT / "results").rglob("*")):
        if path.suffix in WANTED and path.is_file() and "runs" not in path.parts and "llm_cache" not in path.parts:
            files.append(File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path)))
    return files
