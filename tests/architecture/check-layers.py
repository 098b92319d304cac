#!/usr/bin/env python3
"""Checks the shape that docs/architecture.md describes, from the sources' #include lines:

- each folder includes only from itself and the layers below it (core/ from nothing but the public header,
  libclient/ and broker/ from core/, tools/ from the public header and the library's core/ helpers);
- no include cycle among the C and C++ files of core/, libclient/, broker/ and tools/.

Usage: check-layers.py [REPO_ROOT]. Exit status 0 when the shape holds, 1 with one line per violation.
"""
import os
import re
import sys

from graph import strongly_connected

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))

# Folder -> folders its files may include from, besides their own folder (searched in this order).
ALLOWED = {
    "include": ["include"],
    "core": ["include"],
    "libclient": ["libclient", "core", "include"],
    "broker": ["core", "include"],
    "tools/relay": ["core", "include"],
    "tools/weightbus": ["tools/relay", "core", "include"],
}
# Made at build time (flatc, the embedded PTX): not in the tree.
GENERATED = {"protocol_generated.h"}
SOURCE = re.compile(r"\.(c|cc|cpp|h|hpp|cu)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path):
    best = None
    for layer in ALLOWED:
        if path == layer or path.startswith(layer + "/"):
            if best is None or len(layer) > len(best):
                best = layer
    return best


def sources():
    for layer in ALLOWED:
        for dirpath, _, names in os.walk(os.path.join(ROOT, layer)):
            for name in names:
                if SOURCE.search(name):
                    rel = os.path.relpath(os.path.join(dirpath, name), ROOT)
                    if layer_of(rel) == layer:
                        yield rel


def resolve(src, name):
    """The file an include names, and whether the including file's layer may reach it."""
    here = os.path.normpath(os.path.join(os.path.dirname(src), name))
    if os.path.isfile(os.path.join(ROOT, here)):
        return here, True
    for folder in ALLOWED[layer_of(src)]:
        candidate = os.path.normpath(os.path.join(folder, name))
        if os.path.isfile(os.path.join(ROOT, candidate)):
            return candidate, True
    for layer in ALLOWED:  # found only outside what the layer may see: it reaches up or across
        candidate = os.path.normpath(os.path.join(layer, name))
        if os.path.isfile(os.path.join(ROOT, candidate)):
            return candidate, False
    return None, True


def main():
    problems = []
    graph = {}
    for src in sorted(sources()):
        with open(os.path.join(ROOT, src), encoding="utf-8", errors="replace") as f:
            text = f.read()
        graph.setdefault(src, set())
        for name in INCLUDE.findall(text):
            if os.path.basename(name) in GENERATED or name.endswith("_ptx.cpp"):
                continue
            target, allowed = resolve(src, name)
            if target is None:
                problems.append(f'{src}: #include "{name}" names no file of the tree')
            elif not allowed:
                problems.append(f'{src}: #include "{name}" reaches {target}, outside what {layer_of(src)}/ may '
                                f"include ({', '.join(ALLOWED[layer_of(src)]) or 'nothing'})")
            else:
                graph[src].add(target)
    for component in strongly_connected(graph):
        problems.append("include cycle among " + ", ".join(component))
    for line in problems:
        print(line)
    if not problems:
        print(f"check-layers: {len(graph)} files, layers hold, no include cycle")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
