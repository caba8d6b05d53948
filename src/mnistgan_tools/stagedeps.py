"""The code deps of every stage, derived from its script's imports: python -m mnistgan_tools.stagedeps

DVC reruns a stage when one of its declared ``deps`` changes, so a stage must list every
project file its script imports, directly or through the library; a module left out is an
edit that leaves ``dvc status`` clean while ``dvc repro`` serves results of other code. DVC
cannot find these files itself (a stage is a shell command to it), and a directory dep on
all of ``src/`` would retrain every GAN after an edit to the report renderer. So the lists
in dvc.yaml are written out per stage and checked here against the code:

* :func:`imported_files` follows a script's imports with the standard library's
  ``modulefinder`` (every import statement of the bytecode, inside functions too),
  searching only ``src/`` and ``stages/``, so third-party packages are not walked.
  A GAN family's module is imported by name at run time (mnistgan.gan.registry), which no
  static finder sees: the stage's ``--family`` argument names the family, and its module
  and generator class are followed too.
* :func:`check` compares them with each stage's ``deps`` in dvc.yaml: a project file
  imported but not listed (the stage could go stale) or listed but not imported (it would
  rerun for nothing).
* ``--write`` rewrites those lists in dvc.yaml (comments and everything else kept);
  ``--reruns`` prints, per project file, the stages an edit to it reruns.

Params are the other half: which keys a stage reads is found at run time
(mnistgan_tools.params_log) and checked by the end-to-end test, because keys are often
computed (``params[family]``).
"""

from __future__ import annotations

import argparse
import modulefinder
import shlex
import sys
from pathlib import Path

CODE_DIRS = ("src/", "stages/")


def _family_modules(root: Path, family: str) -> list[str]:
    """The modules a stage of ``family`` imports by name through the registry."""
    sys.path.insert(0, str(root / "src"))
    try:
        from mnistgan.gan import registry
    finally:
        sys.path.remove(str(root / "src"))
    spec = registry.get(family)
    return [spec.module, spec.generator.partition(":")[0]]


def imported_files(root: Path, script: Path, family: str | None = None) -> set[str]:
    """Every project file ``script`` imports, transitively, as repo-relative POSIX paths (itself included)."""
    finder = modulefinder.ModuleFinder(path=[str(root / "stages"), str(root / "src")])
    finder.run_script(str(script))
    if family:
        for name in _family_modules(root, family):
            finder.import_hook(name)
    files = {Path(m.__file__).resolve() for m in finder.modules.values() if m.__file__}
    return {f.relative_to(root.resolve()).as_posix() for f in files if f.is_relative_to(root.resolve())}


def _stages(dvc_yaml: dict) -> dict[str, dict]:
    """Each stage's definition (a foreach stage's ``do``), by stage name."""
    return {name: s.get("do", s) for name, s in dvc_yaml.get("stages", {}).items()}


def _script(cmd: str) -> tuple[str | None, str | None]:
    """The stage script a command runs, and the GAN family it names (``--family X``), if any."""
    words = shlex.split(cmd)
    script = next((w for w in words if w.startswith("stages/") and w.endswith(".py")), None)
    family = words[words.index("--family") + 1] if "--family" in words[:-1] else None
    return script, family


def derived(root: Path) -> dict[str, list[str]]:
    """Stage name -> the code deps its script's imports call for (sorted, script first)."""
    import yaml

    out = {}
    for name, s in _stages(yaml.safe_load((root / "dvc.yaml").read_text())).items():
        script, family = _script(s["cmd"] if isinstance(s["cmd"], str) else " ".join(s["cmd"]))
        if script:
            files = imported_files(root, root / script, family)
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
    parser = argparse.ArgumentParser(prog="python -m mnistgan_tools.stagedeps", description=__doc__,
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
        print(f"stagedeps: {len(problems)} problem(s); `python -m mnistgan_tools.stagedeps --write` fixes dvc.yaml",
              file=sys.stderr)
        return 1
    print(f"stagedeps: the code deps of all {len(derived(root))} stages match their imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
