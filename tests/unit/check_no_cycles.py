#!/usr/bin/env python3
"""No dependency circle among the files of a static library: from `nm` of
the archive, which member's undefined symbols another member defines; any
two files that reach each other fail the test, with the symbols that link
them. Usage: check_no_cycles.py NM LIBRARY..."""
import subprocess
import sys


def members(nm, lib):
    """{member: (defined, undefined)} from `nm lib`."""
    out = subprocess.run([nm, lib], capture_output=True, text=True, check=True).stdout
    table, cur = {}, None
    for line in out.splitlines():
        if line.endswith(".o:"):
            cur = line[:-1].removesuffix(".o")
            table[cur] = (set(), set())
            continue
        parts = line.split()
        if cur is None or len(parts) < 2:
            continue
        if len(parts) == 2 and parts[0] == "U":
            table[cur][1].add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRC":
            table[cur][0].add(parts[2])
    return table


def cycles(table):
    owner = {s: m for m, (defs, _) in table.items() for s in defs}
    edges = {m: {} for m in table}
    for m, (_, undefs) in table.items():
        for s in undefs:
            o = owner.get(s)
            if o is not None and o != m:
                edges[m].setdefault(o, []).append(s)
    # Tarjan's strongly connected components
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
            comps.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [sorted(c) for c in comps if len(c) > 1], edges


def main():
    nm, libs = sys.argv[1], sys.argv[2:]
    bad = 0
    for lib in libs:
        found, edges = cycles(members(nm, lib))
        for comp in found:
            bad = 1
            print(f"{lib}: dependency circle among {', '.join(comp)}")
            for a in comp:
                for b in comp:
                    if b in edges[a]:
                        print(f"  {a} -> {b}: {' '.join(sorted(edges[a][b]))}")
    if not bad:
        print("no dependency circle")
    return bad


if __name__ == "__main__":
    sys.exit(main())
