"""The code deps of every stage, derived from its script's imports: python -m mnistgan.stagedeps

DVC reruns a stage when one of its declared ``deps`` changes, so a stage must list every
project file its script imports, directly or through the library; a module left out is an
edit that leaves ``dvc status`` clean while ``dvc repro`` serves results of other code. DVC
cannot find these files itself (a stage is a shell command to it), and a directory dep on
all of ``src/`` would retrain every GAN after an edit to the report renderer. So the lists
in dvc.yaml are written out per stage and checked here against the code:

* :func:`imported_files` follows a script's imports with ``ast`` (top-level and inside
  functions), transitively, through ``mnistgan`` and the sibling ``stages/`` modules;
  importing a submodule counts its package's ``__init__.py`` too.
* :func:`check` compares them with each stage's ``deps`` in dvc.yaml: a project file
  imported but not listed (the stage could go stale) or listed but not imported (it would
  rerun for nothing).
* ``--write`` rewrites those lists in dvc.yaml (comments and everything else kept).

Params are the other half: which keys a stage reads is found at run time
(:class:`mnistgan.params.Tracked`, ``$MNISTGAN_PARAMS_LOG``) and checked by the end-to-end
test, because keys are often computed (``params[family]``). No library does either job:
import-graph tools (pydeps, modulegraph) report modules, not the repository files DVC
needs, and know nothing of dvc.yaml.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "mnistgan"
CODE_DIRS = ("src/", "stages/")


def _module_file(root: Path, dotted: str) -> Path | None:
    """The file of a project module: ``mnistgan.x.y`` under src/, a bare name under stages/."""
    parts = dotted.split(".")
    base = root / "src" if parts[0] == PACKAGE else root / "stages"
    if parts[0] != PACKAGE and len(parts) > 1:
        return None
    for cand in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
        if cand.is_file():
            return cand
    return None


def _with_packages(root: Path, dotted: str) -> list[Path]:
    """The module's file and the ``__init__.py`` of every package on its way (all run on import)."""
    parts = dotted.split(".")
    files = [_module_file(root, ".".join(parts[:i])) for i in range(1, len(parts) + 1)]
    return [f for f in files if f is not None]


def _module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root / "src") if path.is_relative_to(root / "src") else path.relative_to(root / "stages")
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(root: Path, path: Path) -> set[Path]:
    """Project files that ``path`` imports directly."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    here = _module_name(root, path)
    out: set[Path] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = here.split(".") if is_package else here.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import submodule`
        for name in names:
            if name.split(".")[0] == PACKAGE or _module_file(root, name) is not None:
                out.update(_with_packages(root, name))
    return out


def imported_files(root: Path, script: Path) -> set[str]:
    """Every project file ``script`` imports, transitively, as repo-relative POSIX paths (itself included)."""
    todo, seen = [script.resolve()], set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imports(root, path) - seen)
    return {p.relative_to(root).as_posix() for p in seen}


def _stages(dvc_yaml: dict) -> dict[str, dict]:
    """Each stage's definition (a foreach stage's ``do``), by stage name."""
    return {name: s.get("do", s) for name, s in dvc_yaml.get("stages", {}).items()}


def _script(cmd: str) -> str | None:
    words = " ".join(cmd.split()).split(" ")
    return next((w for w in words if w.startswith("stages/") and w.endswith(".py")), None)


def derived(root: Path) -> dict[str, list[str]]:
    """Stage name -> the code deps its script's imports call for (sorted, script first)."""
    import yaml

    out = {}
    for name, s in _stages(yaml.safe_load((root / "dvc.yaml").read_text())).items():
        script = _script(s["cmd"] if isinstance(s["cmd"], str) else " ".join(s["cmd"]))
        if script:
            files = imported_files(root, root / script)
            out[name] = [script] + sorted(files - {script})
    return out


def check(root: Path) -> list[str]:
    """One line per code dep missing from, or superfluous in, a stage's deps in dvc.yaml."""
    import yaml

    problems = []
    stages = _stages(yaml.safe_load((root / "dvc.yaml").read_text()))
    for name, want in derived(root).items():
        listed = [d for d in stages[name].get("deps", []) if isinstance(d, str) and d.startswith(CODE_DIRS)]
        for f in want:
            if f not in listed:
                problems.append(f"{name}: imports {f}, which is not among its deps")
        for f in listed:
            if f not in want:
                problems.append(f"{name}: lists {f} as a dep but does not import it")
    return problems


def write(root: Path) -> None:
    """Rewrite each stage's code deps in dvc.yaml to the derived list (data deps kept, after them)."""
    from ruamel.yaml import YAML

    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)  # the hand-written style of dvc.yaml
    path = root / "dvc.yaml"
    doc = rt.load(path.read_text())
    want = derived(root)
    for name, s in doc["stages"].items():
        body = s["do"] if "do" in s else s
        if name not in want:
            continue
        deps = body["deps"]
        kept = [(d, deps.ca.items.get(i)) for i, d in enumerate(deps)
                if not (isinstance(d, str) and d.startswith(CODE_DIRS))]  # data deps, with their comments
        deps.clear()
        deps.ca.items.clear()
        deps.extend(want[name] + [d for d, _ in kept])
        for i, (_, comment) in enumerate(kept, start=len(want[name])):
            if comment:
                deps.ca.items[i] = comment
    with path.open("w") as f:
        rt.dump(doc, f)


def reruns(root: Path) -> dict[str, list[str]]:
    """Project file -> the stages an edit to it reruns (directly; their dependants follow)."""
    out: dict[str, list[str]] = {}
    for stage, files in derived(root).items():
        for f in files:
            out.setdefault(f, []).append(stage)
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnistgan.stagedeps", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the code deps in dvc.yaml")
    parser.add_argument("--reruns", action="store_true", help="print, per project file, the stages an edit reruns")
    args = parser.parse_args(argv)
    root = Path.cwd()
    if not (root / "dvc.yaml").is_file():
        parser.error(f"no dvc.yaml in {root}; run from the project root")
    if args.write:
        write(root)
    if args.reruns:
        for f, stages in reruns(root).items():
            print(f"{f}: {', '.join(stages)}")
        return 0
    problems = check(root)
    for line in problems:
        print(f"stagedeps: {line}", file=sys.stderr)
    if problems:
        print(f"stagedeps: {len(problems)} problem(s); `python -m mnistgan.stagedeps --write` fixes dvc.yaml",
              file=sys.stderr)
        return 1
    print(f"stagedeps: the code deps of all {len(derived(root))} stages match their imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
