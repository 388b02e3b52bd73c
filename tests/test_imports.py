"""No import circles anywhere in the package: every `import` and `from ... import` of a
counting module, at module level or inside a function, is an edge; the graph has no cycle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "counting"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The counting modules `path` imports (a `from pkg import name` that names a submodule
    counts as importing that submodule)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("counting")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("counting"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in modules else base)
    return {m for m in out if m in modules and m != me}


def graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    return {module_name(p): imports(p, modules) for p in files}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_in_the_package():
    edges = graph()
    assert "counting.store" in edges and "counting.store.atomic" in edges["counting.store"]
    assert cycles(edges) == []


def test_atomic_writes_are_a_leaf():
    assert graph()["counting.store.atomic"] == set()


def package_of(module: str) -> str:
    """The stage a module belongs to: its subpackage of counting (counting.sweep for
    counting.sweep.cohort), or counting itself for the modules at the package root."""
    parts = module.split(".")
    is_package = (PACKAGE.parent.joinpath(*parts) / "__init__.py").is_file()
    return ".".join(parts[:2]) if len(parts) > 2 or (is_package and len(parts) == 2) else "counting"


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for a, bs in edges.items():
        for b in bs:
            if package_of(a) != package_of(b):
                out.setdefault(package_of(a), set()).add(package_of(b))
    return out


def test_no_import_circles_between_the_stages():
    """At package level too: counting.cli -> counting.experiment -> counting.cli was one."""
    stages = package_graph(graph())
    assert "counting.sweep" in stages and "counting.training" in stages["counting.sweep"]
    assert cycles(stages) == []


def test_nothing_below_the_cli_imports_it():
    edges = graph()
    up = sorted(a for a, bs in edges.items() if not a.startswith("counting.cli")
                for b in bs if b.startswith("counting.cli"))
    assert up == []


def test_the_package_root_holds_a_handful_of_modules():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 8, root


def test_nothing_outside_the_tasks_dispatches_on_a_tasks_name():
    """A task owns its behaviour (counting.tasks.base.Task's hooks): outside counting/tasks no
    comparison with a task's name and no dict keyed by task names; the registry is the one list."""
    from counting.tasks.registry import TASKS

    names = set(TASKS)
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "tasks"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                consts = {s.value for s in ast.walk(ast.Tuple(elts=sides)) if isinstance(s, ast.Constant)}
                if consts & names:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} compares with {sorted(consts & names)}")
            elif isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if len(keys & names) >= 2:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} a dict keyed by {sorted(keys & names)}")
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
                elts = {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
                if len(elts & names) >= 2:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} a second list of tasks {sorted(elts)}")
    assert not found, "\n".join(found)


def test_each_registry_is_the_only_list_of_its_names_and_the_config_reads_them_without_jax():
    """The samplers (counting.tasks.registry), the worst-case families (counting.tasks.families)
    and the compaction size rules (counting.sweep.sizes) are named once: no other module of the package assigns a tuple or list of their names only, every
    task implements exactly the drawn samplers, and the config checks them without importing JAX."""
    import subprocess
    import sys

    from counting.sweep.sizes import SIZES
    from counting.tasks import class_of
    from counting.tasks.families import FAMILIES
    from counting.tasks.registry import DRAWN, SAMPLERS, TASKS

    owners = {"samplers": (set(SAMPLERS), PACKAGE / "tasks" / "registry.py"),
              "families": (set(FAMILIES), PACKAGE / "tasks" / "families.py"),
              "size rules": (set(SIZES), PACKAGE / "sweep" / "sizes.py")}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.List)):
                elts = {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
                for what, (names, owner) in owners.items():
                    if path != owner and len(elts) >= 2 and elts <= names:  # family lists share some names
                        found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} a second list of {what} {sorted(elts)}")
    assert not found, "\n".join(found)
    for task in TASKS:
        module = sys.modules[class_of(task).__module__]
        assert tuple(module.SAMPLERS) == DRAWN, task
    code = ("import sys; from counting.config import CohortConfig, TaskConfig; "
            "CohortConfig.from_dict({'compact_sizes': 'pow2_3'}); TaskConfig.from_dict({'sampler': 'pairs'}); "
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
