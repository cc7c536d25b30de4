"""Finding the module-level caches and singletons of a package in its
source, to check that its process-state list names every one."""
from __future__ import annotations

import re
from pathlib import Path

# A private module-level name bound to an empty container, None or a weak
# mapping, or a function under lru_cache.
_CACHE = re.compile(
    r'^(_[a-z_]+)(?:: [^=]+)? = (?:\{\}|\[\]|set\(\)|OrderedDict\(\)|None$|weakref\.)'
    r'|^@(?:functools\.)?lru_cache\(.*\)\n(?:@.*\n)*def (\w+)', re.M)


def module_level_caches(package: Path) -> set[tuple[str, str]]:
    """(module, attribute) of each cache found under ``package``."""
    found = set()
    for path in package.rglob('*.py'):
        module = '.'.join(path.relative_to(package.parent).with_suffix('').parts)
        for match in _CACHE.finditer(path.read_text()):
            found.add((module.removesuffix('.__init__'), match.group(1) or match.group(2)))
    return found
