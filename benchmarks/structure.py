"""Structure figures of the code base: import cycles, function-level imports,
the largest modules and lines of code (issue 12's before-and-after table).

    python benchmarks/structure.py [--json]

Reads the source with ``ast`` only (imports nothing of the project), so it
runs on any checkout, before or after a refactoring.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ('spacer', 'workers', 'spacer_survey', 'spacer_cli')


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of our packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob('*.py')):
            parts = list(path.relative_to(ROOT).with_suffix('').parts)
            if parts[-1] == '__init__':
                parts.pop()
            found['.'.join(parts)] = path
    return found


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split('.')
        base = base[:len(base) - node.level + (1 if is_package else 0)]
        prefix = '.'.join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ''
    return [prefix] + [f'{prefix}.{alias.name}' for alias in node.names]


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest of our modules that ``name`` is or lies in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition('.')[0]
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or (
        isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def imports_of(path: Path, module: str, modules: dict[str, Path]
               ) -> tuple[set[str], set[str], int]:
    """(modules imported at module level, in functions, count of function-level
    import statements of our own modules). Imports under ``if TYPE_CHECKING`` are not run, so
    they count as neither."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == '__init__.py'
    top: set[str] = set()
    inner: set[str] = set()
    inner_statements = 0

    def visit(node: ast.AST, in_function: bool) -> None:
        nonlocal inner_statements
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                targets = {t for n in _imported_names(child, module, is_package)
                           if (t := _resolve(n, modules)) and t != module}
                (inner if in_function else top).update(targets)
                if in_function and targets:
                    inner_statements += 1
            visit(child, in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, inner, inner_statements


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strongconnect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return found


def figures() -> dict:
    modules = module_files()
    graph: dict[str, set[str]] = {}
    function_level = 0
    for module, path in modules.items():
        top, inner, count = imports_of(path, module, modules)
        # A package's module importing its parent __init__ is Python's own
        # doing, not a design choice; leave that edge out.
        graph[module] = {t for t in top | inner if not module.startswith(t + '.')}
        function_level += count
    lines = {m: len(p.read_text().splitlines()) for m, p in modules.items()}
    found = cycles(graph)
    return {
        'modules': len(modules),
        'lines': sum(lines.values()),
        'largest': sorted(lines.items(), key=lambda kv: -kv[1])[:8],
        'function_level_imports': function_level,
        'import_cycles': len(found),
        'modules_in_cycles': sum(len(c) for c in found),
        'cycles': found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true')
    result = figures()
    if parser.parse_args().json:
        print(json.dumps(result, indent=1))
        return
    print(f"modules: {result['modules']}   lines: {result['lines']}")
    print(f"function-level imports of our modules: {result['function_level_imports']}")
    print(f"import cycles: {result['import_cycles']}"
          f" ({result['modules_in_cycles']} modules in them)")
    for cycle in result['cycles']:
        print('   ', ' <-> '.join(cycle))
    print('largest modules:')
    for module, count in result['largest']:
        print(f'    {count:5d}  {module}')


if __name__ == '__main__':
    main()
