#!/usr/bin/env python3
"""Checks that no call cycle runs between the C and C++ files of one target, from its compiled objects: an edge
A -> B when A's object uses a symbol that B's object defines (nm: U in A; T, D, B, R in B; weak definitions, which
every user of an inline function or template has, are not edges). A cycle means a file calls into one that calls
back into it: the two (or more) are one concept split in a way that hides it, or a lower file reaches up.

Usage: check-calls.py TARGET OBJECT... (objects may also come as one ;-separated list, as CMake's
$<TARGET_OBJECTS:...> gives them). Exit status 0 when acyclic, 1 listing each cycle with the symbols behind it.
"""
import os
import subprocess
import sys

from graph import strongly_connected

DEFINED = set("TDBR")


def source_name(obj):
    """The source file an object was compiled from, as the build names it (libclient/cuda/copy.cpp.o -> cuda/copy.cpp)."""
    rel = obj.split(".dir/", 1)[1] if ".dir/" in obj else os.path.basename(obj)
    return rel[:-2] if rel.endswith(".o") else rel


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    uses, defs = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            uses.add(parts[1])
        elif len(parts) == 3 and parts[1] in DEFINED:
            defs.add(parts[2])
    return uses, defs


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target = sys.argv[1]
    objects = [o for arg in sys.argv[2:] for o in arg.split(";") if o.endswith(".o")]
    uses, owner = {}, {}
    for obj in objects:
        name = source_name(obj)
        uses[name], defs = symbols(obj)
        for symbol in defs:
            owner.setdefault(symbol, name)
    graph = {name: set() for name in uses}
    why = {}
    for name, used in uses.items():
        for symbol in used:
            callee = owner.get(symbol)
            if callee is not None and callee != name:
                graph[name].add(callee)
                why.setdefault((name, callee), []).append(symbol)
    cycles = strongly_connected(graph)
    for component in cycles:
        print(f"{target}: call cycle among {', '.join(component)}")
        for a in component:
            for b in component:
                if (a, b) in why:
                    names = subprocess.run(["c++filt"], input="\n".join(sorted(why[(a, b)])[:4]),
                                           capture_output=True, text=True).stdout.split("\n")
                    print(f"  {a} -> {b}: {'; '.join(n for n in names if n)}")
    if not cycles:
        edges = sum(len(v) for v in graph.values())
        print(f"check-calls: {target}: {len(graph)} files, {edges} calls between files, no cycle")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
