"""MkDocs hook: the committed results in the site, from results/ itself (never copied by hand).

`<!-- include: results/REPORT.md -->` on a page is replaced by that file, its relative links
rewritten to results/...; every file of results/ that a page links to (figures and their PDFs,
tables, the folders' READMEs) is added to the site under results/, so links resolve and the
strict build catches one that does not.

Every committed experiment folder (one holding `table.csv`, `figures/` or PNGs of its own)
becomes a page, generated here at build time: its command and wall time (the rows of
`results/README.md` that name the folder: that table is the one source), its README if it has
one, its figures inline (PDFs linked), its `thresholds.csv` as a table and links to its other
CSVs. `results/folders.md` lists every folder page. `results/README.md` is moved to
`results/README/` (it would otherwise take `results/index.html` from the Results page).
"""

from __future__ import annotations

import csv
import logging
import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
INCLUDE = re.compile(r"<!-- include: (results/[\w./-]+) -->")
LINK = re.compile(r"\]\((?!https?://|#|/)([^)#\s]+)(#[^)]*)?\)")
WANTED = (".png", ".pdf", ".csv", ".md")
SKIP = {"runs", "checkpoints", "llm_cache", "search", "tensorboard", "wandb"}
MAX_ROWS = 60
INDEX = "results/folders.md"
log = logging.getLogger("mkdocs.hooks.results")


def _rewritten(path: Path) -> str:
    text = path.read_text()
    base = path.parent.relative_to(ROOT)
    return LINK.sub(lambda mo: f"]({(base / mo.group(1)).as_posix()}{mo.group(2) or ''})", text)


# --- results/README.md: the rows that name each folder -------------------------------------


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@lru_cache(maxsize=1)
def _readme_tables() -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(section heading, the section's text before the table, header cells, rows) of every
    table of results/README.md."""
    tables, section, start, lines = [], "", 0, (RESULTS / "README.md").read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section, start = line[3:].strip(), i + 1
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1].strip()):
            preamble = "\n".join(lines[start:i]).strip()
            header, rows, i = _cells(line), [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            tables.append((section, preamble, header, rows))
            start = i
            continue
        i += 1
    return tables


def _names(row: list[str], name: str) -> bool:
    """A row names the folder when its first cell has `name` or `name/...` backticked, or its
    second (the command) says it writes `name/...`."""
    first = re.findall(r"`([^`]+)`", row[0])
    second = re.findall(r"`([^`]+)`", row[1]) if len(row) > 1 else []
    return any(s == name or s.startswith(name + "/") for s in first) or \
        any(s.startswith(name + "/") for s in second)


def _rows_for(name: str) -> list[tuple[str, str, list[str], list[list[str]]]]:
    found = []
    for section, preamble, header, rows in _readme_tables():
        mine = [r for r in rows if _names(r, name)]
        if mine:
            found.append((section, preamble, header, mine))
    return found


# --- the folders and their pages -----------------------------------------------------------


def _committed() -> set[str] | None:
    """Names of the folders of results/ that git holds files of (None: no git to ask)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "results"], cwd=ROOT, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    names = {p.split("/")[1] for p in out.stdout.split("\0") if p.count("/") >= 2}
    return names if out.returncode == 0 and names else None


def _walk() -> list[Path]:
    """Every file of results/ the site takes (WANTED suffixes), without walking into run folders."""
    found = []
    for top, dirs, names in os.walk(RESULTS):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        found += [Path(top, n) for n in sorted(names) if n.endswith(WANTED)]
    return found


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) + sorted((folder / "figures").glob("*.png"))


def _of(folder: Path, paths: dict[str, list[Path]], suffix: str) -> list[Path]:
    return [p for p in paths.get(folder.name, []) if p.suffix == suffix]


def _by_folder(paths: list[Path]) -> dict[str, list[Path]]:
    grouped: dict[str, list[Path]] = {}
    for path in paths:
        parts = path.relative_to(RESULTS).parts
        if len(parts) > 1:
            grouped.setdefault(parts[0], []).append(path)
    return grouped


def _folders() -> list[Path]:
    committed = _committed()
    found = []
    for folder in sorted(p for p in RESULTS.iterdir() if p.is_dir() and p.name not in SKIP):
        if committed is not None and folder.name not in committed:
            continue
        if (folder / "table.csv").is_file() or (folder / "figures").is_dir() or _pngs(folder):
            found.append(folder)
    return found


def _src_uri(folder: Path) -> str:
    # A folder's README becomes its page (same address, so links to it keep working).
    name = "README.md" if (folder / "README.md").is_file() else "index.md"
    return f"results/{folder.name}/{name}"


def _demoted(markdown: str) -> str:
    """The README under the page's own title: every heading one level down (not in code)."""
    out, fence = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        elif not fence and re.match(r"^#{1,5} ", line):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{max(size / 1e3, 0.1):.1f} kB"


def _table(path: Path) -> str:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return "(empty)"
    header, body = rows[0], rows[1:]

    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    text = [line(header), "|" + "---|" * len(header)] + [line(r) for r in body[:MAX_ROWS]]
    if len(body) > MAX_ROWS:
        text.append(f"\nThe first {MAX_ROWS} of {len(body)} rows: the whole table is "
                    f"[{path.name}]({path.name}).")
    return "\n".join(text)


def _page(folder: Path, paths: dict[str, list[Path]]) -> str:
    name, rel = folder.name, (lambda p: p.relative_to(folder).as_posix())
    # A page of tables and figures only stays out of the search index: its words are those of
    # results/README.md and of the folders page, both indexed, and indexing its tables is slow.
    search = [] if (folder / "README.md").is_file() else ["---", "search:", "  exclude: true", "---", ""]
    parts = search + [f"# {name}", "",
             f"The committed folder `results/{name}/` ([all folders](../folders.md)).", ""]
    found = _rows_for(name)
    parts += ["## Command and wall time", ""]
    if found:
        for section, preamble, header, rows in found:
            parts += [f"From [results/README.md](../README.md), *{section}*:", ""]
            if not any("command" in h for h in header) and preamble:
                # A table without a command column (a status table): its section's text says how.
                parts += [LINK.sub(lambda mo: f"](../{mo.group(1)}{mo.group(2) or ''})", preamble), ""]
            parts += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            parts += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    else:
        parts += ["No row of [results/README.md](../README.md) names this folder.", ""]
    if (folder / "README.md").is_file():
        parts += [_demoted((folder / "README.md").read_text()), ""]
    pngs = _pngs(folder)
    if pngs:
        parts += ["## Figures", ""]
        for png in pngs:
            pdf = png.with_suffix(".pdf")
            link = f" ([PDF]({rel(pdf)}))" if pdf.is_file() else ""
            parts += [f"**{rel(png)}**{link}", "", f"![{png.stem}]({rel(png)})", ""]
    if (folder / "thresholds.csv").is_file():
        parts += ["## Thresholds", "", "`thresholds.csv`, as committed:", "",
                  _table(folder / "thresholds.csv"), ""]
    tables = _of(folder, paths, ".csv")
    pages = [p for p in _of(folder, paths, ".md") if p != folder / "README.md"]
    if tables or pages:
        parts += ["## Tables", ""]
        parts += [f"- [{rel(p)}]({rel(p)}) ({_size(p)})" for p in tables + pages] + [""]
    return "\n".join(parts)


def _title(folder: Path) -> str:
    readme = folder / "README.md"
    if readme.is_file():
        first = readme.read_text().splitlines()[0] if readme.stat().st_size else ""
        if first.startswith("# "):
            return first[2:].strip().removeprefix(folder.name + ":").strip()
    return ""


def _index(folders: list[Path], paths: dict[str, list[Path]]) -> str:
    groups: dict[str, list[Path]] = {}
    for folder in folders:
        found = _rows_for(folder.name)
        groups.setdefault(found[0][0] if found else "Other folders", []).append(folder)
    parts = ["# Experiment folders", "",
             ("One page per committed folder of `results/`: the command and wall time that regenerate "
              "it (from [results/README.md](README.md)), its figures, its thresholds and its tables. "
              "What they mean, claim by claim: [the report](../results.md)."), ""]
    for section, members in groups.items():
        parts += [f"## {section}", "", "| folder | figures | tables | wall time | about |",
                  "|---|---|---|---|---|"]
        for folder in members:
            tables = len(_of(folder, paths, ".csv"))
            found = _rows_for(folder.name)
            wall = found[0][3][0][-1] if found and re.search("wall|cost", found[0][2][-1]) else ""
            parts.append(f"| [{folder.name}]({_src_uri(folder).removeprefix('results/')}) | "
                         f"{len(_pngs(folder))} | {tables} | {wall} | {_title(folder)} |")
        parts.append("")
    return "\n".join(parts)


# --- the hooks ---------------------------------------------------------------------------


def on_page_markdown(markdown: str, page, files, **kwargs) -> str:
    def include(mo):
        text = _rewritten(ROOT / mo.group(1))
        depth = page.file.src_uri.count("/")
        return LINK.sub(lambda m: f"]({'../' * depth}{m.group(1)}{m.group(2) or ''})", text) if depth else text

    if page.file.src_uri == "results/README.md":
        # The folder names of its tables link to the folders' pages.
        def folder_link(mo):
            name = mo.group(1)
            target = next((f for f in (f"results/{name}/README.md", f"results/{name}/index.md")
                           if files.get_file_from_path(f) is not None), None)
            return f"[{mo.group(0)}]({target.removeprefix('results/')})" if target else mo.group(0)

        def first_cell(line):
            cell, sep, rest = line[1:].partition("|")
            return "|" + re.sub(r"`(\w+)/?`", folder_link, cell) + sep + rest

        markdown = "\n".join(first_cell(line) if line.startswith("| `") else line
                             for line in markdown.splitlines())
    return INCLUDE.sub(include, markdown)


def on_files(files, config, **kwargs):
    _readme_tables.cache_clear()  # `mkdocs serve` rebuilds in one process
    folders, paths = _folders(), _walk()
    pages = {_src_uri(f) for f in folders}
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        if rel not in pages:
            file = File.generated(config, rel, abs_src_path=str(path))
            if rel == "results/README.md":
                file.dest_uri = "results/README/index.html"
            files.append(file)
    grouped = _by_folder(paths)
    for folder in folders:
        files.append(File.generated(config, _src_uri(folder), content=_page(folder, grouped)))
    files.append(File.generated(config, INDEX, content=_index(folders, grouped)))
    seen: dict[str, str] = {}
    for file in files:
        if file.dest_uri in seen:
            log.warning(f"{file.src_uri} and {seen[file.dest_uri]} both build {file.dest_uri}")
        seen.setdefault(file.dest_uri, file.src_uri)
    return files
