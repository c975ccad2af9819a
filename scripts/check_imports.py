#!/usr/bin/env python3
"""Fail when the crate's modules import each other in a loop (issue #19).

A module depends on another when its code names an item defined there: a `use` of it or a
`crate::…` / `super::…` path. Facade re-exports (`pub use child::Item` in a `mod.rs`) are
followed to the file that defines the item, so a short `mod.rs` that only re-exports is not a
node in anyone's loop; a `mod.rs` that defines items its children use is. Test modules
(`#[cfg(test)] mod … { … }`) are left out: tests may reach anywhere.

Usage: scripts/check_imports.py [SRC_DIR]    (default: src; the binary's own tree under
src/main.rs and src/cli/ is checked as a second crate). Prints every loop and exits 1 if any.
No allow-list: a loop is fixed in the code, not excused here.
"""
import os
import re
import sys

USE = re.compile(r"(?:^|;|\})\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
CHAR = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'")
INLINE = re.compile(r"(?<![:\w])(\w+(?:::\w+)+)")


def strip(text):
    """Remove comments, string and char literals, and #[cfg(test)] modules."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'" and (m := CHAR.match(text, i)):
            # A char literal (a lifetime such as `'a` has no closing quote and stays).
            out.append("' '")
            i = m.end()
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    # `pub(in crate::a)` is a visibility, not a use of `crate::a`.
    text = re.sub(r"pub\(in\s+[\w:]+\)", "pub", text)
    # Drop #[cfg(test)] items (a module, or a single fn/impl) by brace matching.
    while True:
        m = re.search(r"#\[cfg\(test\)\]", text)
        if not m:
            return text
        j = m.end()
        k = text.find("{", j)
        semi = text.find(";", j)
        if k < 0 or 0 <= semi < k:
            text = text[:m.start()] + text[(semi + 1 if semi >= 0 else j):]
            continue
        depth, p = 0, k
        while p < len(text):
            if text[p] == "{":
                depth += 1
            elif text[p] == "}":
                depth -= 1
                if depth == 0:
                    break
            p += 1
        text = text[:m.start()] + text[p + 1:]


def expand(tree):
    """'a::{b, c::{d, e as f}}' -> ['a::b', 'a::c::d', 'a::c::e']"""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, c in enumerate(tree):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1:i], tree[i + 1:]
                parts, d, s = [], 0, 0
                for j, ch in enumerate(inner):
                    if ch == "{":
                        d += 1
                    elif ch == "}":
                        d -= 1
                    elif ch == "," and d == 0:
                        parts.append(inner[s:j])
                        s = j + 1
                parts.append(inner[s:])
                res = []
                for part in parts:
                    if part:
                        res += expand(prefix + part + rest)
                return res
    return [re.sub(r"::self$", "", tree)]


def modules(root_file):
    """Map module path (tuple) -> file, following `mod x;` declarations from the root."""
    found = {(): root_file}
    stack = [((), root_file)]
    while stack:
        path, f = stack.pop()
        text = strip(open(f).read())
        base = os.path.dirname(f)
        own = os.path.basename(f)
        if own not in ("lib.rs", "main.rs", "mod.rs"):
            base = os.path.join(base, own[:-3])
        for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
            name = m.group(1)
            for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
                if os.path.exists(cand):
                    found[path + (name,)] = cand
                    stack.append((path + (name,), cand))
                    break
    return found


def analyse(root_file):
    mods = modules(root_file)
    texts = {p: strip(open(f).read()) for p, f in mods.items()}
    reexports = {p: {} for p in mods}
    uses = {p: [] for p in mods}
    for p, t in texts.items():
        for m in USE.finditer(t):
            for path in expand(m.group(2)):
                segs = [s for s in path.split("::") if s]
                if m.group(1):
                    reexports[p][segs[-1]] = segs
                uses[p].append(segs)
        for m in INLINE.finditer(t):
            uses[p].append(m.group(1).split("::"))

    def absolute(p, segs):
        segs = list(segs)
        base = list(p)
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] in ("super", "self"):
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
        elif tuple(base + [segs[0]]) in mods:
            pass
        else:
            return None  # an external crate or a local name
        return base, segs

    def resolve(base, segs, seen=0):
        """The module defining the item named by base::segs, following re-exports."""
        cur = tuple(base)
        for i, s in enumerate(segs):
            if s == "*":
                return cur
            if cur + (s,) in mods:
                cur = cur + (s,)
                continue
            if s in reexports.get(cur, {}) and seen < 20:
                r = absolute(cur, reexports[cur][s])
                if r is None:
                    return None
                return resolve(r[0], r[1] + segs[i + 1:], seen + 1)
            return cur
        return cur

    edges = {p: set() for p in mods}
    for p, lst in uses.items():
        for segs in lst:
            r = absolute(p, segs)
            if r is None:
                continue
            base, rest = r
            # A facade re-export is not a dependency of the re-exporting module itself.
            if rest and rest[-1] in reexports[p] and reexports[p][rest[-1]] == segs:
                continue
            target = resolve(base, rest)
            # A module's own `mod child;` is ownership, not use: only paths count.
            if target is not None and target != p and target in mods:
                edges[p].add(target)
    return mods, edges


def sccs(nodes, edges):
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def name(p):
    return "crate::" + "::".join(p) if p else "crate"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    bad = 0
    for root in ("lib.rs", "main.rs"):
        root_file = os.path.join(src, root)
        if not os.path.exists(root_file):
            continue
        mods, edges = analyse(root_file)
        for comp in sccs(mods.keys(), edges):
            bad += 1
            print(f"import loop in {root}: " + ", ".join(mods[c] for c in comp))
            for a in comp:
                for b in sorted(edges[a]):
                    if b in comp:
                        print(f"    {mods[a]} -> {mods[b]}")
        if "-v" in sys.argv:
            for a in sorted(edges):
                print(mods[a], "->", ", ".join(sorted(mods[b] for b in edges[a])))
    if bad:
        print(f"{bad} import loop(s)")
        return 1
    print("no import loops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
