#!/usr/bin/python3
"""check-prefixes.py BUILD_DIR [SOURCE_DIR] - every exported symbol of src/ carries its module's prefix.

The module is the source file's folder under src/ (src/net/*.c -> net_). The symbols are read
from the objects the build made (`nm -g --defined-only` on each object of a file under src/,
found through BUILD_DIR/compile_commands.json), so static functions and headers' static inline
helpers are not concerned. Exceptions, and common/'s per-file prefixes, are in
scripts/check-prefixes.allow. Exits 1 naming every symbol without its prefix.
Run by `meson test` (suite unit) and so by `make test`.
"""
import json
import os
import subprocess
import sys


def load_allow(path):
    """{'net': [...], 'common/fs.c': [...]}: extra prefixes ('=name' for one exact name)."""
    allow = {}
    for line in open(path):
        line = line.split('#', 1)[0].split()
        if line:
            allow.setdefault(line[0], []).extend(line[1:])
    return allow


def allowed(sym, prefixes):
    return any(sym == p[1:] if p.startswith('=') else sym.startswith(p) for p in prefixes)


def main():
    build = os.path.abspath(sys.argv[1])
    source = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), '..'))
    allow = load_allow(os.path.join(source, 'scripts', 'check-prefixes.allow'))
    entries = json.load(open(os.path.join(build, 'compile_commands.json')))
    srcdir = os.path.realpath(os.path.join(source, 'src')) + os.sep
    bad, objs = [], {}
    for e in entries:
        path = os.path.realpath(os.path.join(e['directory'], e['file']))
        obj = os.path.join(e['directory'], e['output'])
        if path.startswith(srcdir) and os.path.exists(obj):
            objs[obj] = path[len(srcdir):]  # net/ipnet.c, main.c
    if not objs:
        print('check-prefixes: no objects of src/ in %s (not built?)' % build)
        return 1
    # one nm for all of them: "OBJECT:VALUE TYPE NAME"
    symbols = {}
    out = subprocess.run(['nm', '-A', '-g', '--defined-only'] + sorted(objs), capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.rsplit(' ', 2)
        if len(parts) == 3:
            obj = parts[0].rpartition(':')[0]
            if obj in objs:
                symbols.setdefault(obj, []).append(parts[2])
    if sum(len(v) for v in symbols.values()) < len(objs):
        print('check-prefixes: could not read the symbols of the objects in %s' % build)
        return 1
    for obj, rel in objs.items():
        module = rel.split('/')[0] if '/' in rel else ''
        prefixes = [module + '_'] if module else []
        prefixes += allow.get(module, []) + allow.get(rel, [])
        if module == 'common' and rel not in allow:
            bad.append('src/%s: a file of common/ without its prefixes in scripts/check-prefixes.allow' % rel)
            continue
        for sym in symbols.get(obj, []):
            if sym.startswith('__') or '.' in sym:  # compiler-made (sanitizers, profiling)
                continue
            if not allowed(sym, prefixes):
                bad.append('src/%s: %s (expected %s)' % (rel, sym, ' or '.join(p.lstrip('=') for p in prefixes)))
    if bad:
        print('check-prefixes: %d exported symbol(s) without their module\'s prefix '
              '(docs/ARCHITECTURE.md, "Naming"; deliberate exceptions go in scripts/check-prefixes.allow):'
              % len(bad))
        for b in sorted(set(bad)):
            print('  ' + b)
        return 1
    print('check-prefixes: %d objects, every exported symbol carries its module\'s prefix' % len(objs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
