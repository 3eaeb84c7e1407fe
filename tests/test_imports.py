"""Every module imports: a renamed or moved name anywhere fails here, fast and clearly."""
import importlib
import pkgutil

import pytest

PACKAGES = ["ingest", "ocr", "converters", "signing", "repository", "api", "bench"]


def _modules() -> list[str]:
    names = ["cli"]
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        names += [i.name for i in pkgutil.walk_packages(mod.__path__, pkg + ".")
                  if ".migrations" not in i.name]
    return names


@pytest.mark.parametrize("name", _modules())
def test_module_imports(name):
    importlib.import_module(name)


def test_import_direction():
    """ocr imports nothing of ours; converters only ocr.types; signing and repository nothing."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    ours = {"ingest", "ocr", "converters", "signing", "repository", "api", "cli"}
    allowed = {"ocr": {"ocr"}, "converters": {"converters", "ocr.types"},
               "signing": {"signing"}, "repository": {"repository"}}
    problems = []
    for pkg, ok in allowed.items():
        for path in (root / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                         else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in ours and not any(name == a or name.startswith(a + ".") for a in ok):
                        problems.append(f"{path.relative_to(root)} imports {name}")
    assert not problems, problems
