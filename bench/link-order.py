#!/usr/bin/env python3
"""Writes the release server's link order (bench/link-order.txt) from callgrind profiles.

Usage: link-order.py BINARY OUTPUT PROFILE...
       link-order.py --check BINARY LIST   (does BINARY have every function LIST names?)

BINARY is the server built without a link order (MEDGRAPH_LINK_ORDER=off), the one profiled. Every
function of it that a profiled server executed is listed once: first those a PostgreSQL server ran,
then those only a SQLite server ran, each group in the order the compiler laid them out in BINARY.
The linker puts the listed functions first and in this order (src/build.rs), so each kind of server
finds its code in one run of pages, with the functions that run together still side by side as the
compiler placed them. Names are as in the symbol table (mangled), which is what the linker matches.
"""

import os
import re
import subprocess
import sys

RECURSION_MARK = re.compile(r"'\d+$")  # callgrind's suffix for a recursive call level


def executed(profile, binary):
    """The functions of `binary` that one callgrind profile saw run (or called)."""
    seen = set()
    obj = None
    callee_obj = None
    with open(profile, errors="replace") as lines:
        for line in lines:
            if line.startswith("ob="):
                obj = os.path.realpath(line[3:].strip())
            elif line.startswith("fn=") and obj == binary:
                seen.add(RECURSION_MARK.sub("", line[3:].strip()))
            elif line.startswith("cob="):
                callee_obj = os.path.realpath(line[4:].strip())
            elif line.startswith("cfn="):
                if (callee_obj or obj) == binary:
                    seen.add(RECURSION_MARK.sub("", line[4:].strip()))
                callee_obj = None
    return seen


def function_addresses(binary):
    """Each function symbol of `binary` with its address."""
    symbols = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    address = {}
    for fields in (line.split() for line in symbols.splitlines()):
        if len(fields) == 3 and fields[1] in "tTwW":
            address.setdefault(fields[2], int(fields[0], 16))
    return address


def check(binary, order_file):
    """Exits 1 unless `binary` has every function the list names (else its build differs)."""
    with open(order_file) as lines:
        order = lines.read().split()
    address = function_addresses(binary)
    missing = [name for name in order if name not in address]
    print(f"{binary}: has {len(order) - len(missing)} of the {len(order)} functions listed")
    if missing:
        sys.exit("the list does not match this build (other features or settings?); regenerate it")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, output, profiles = os.path.realpath(sys.argv[1]), sys.argv[2], sys.argv[3:]
    address = function_addresses(binary)
    # callgrind writes `NAME.PID` at exit and `NAME.PID.N` for each dump: one server's are one set.
    by_server = {}
    for profile in profiles:
        server = ".".join(os.path.basename(profile).split(".")[:2])
        by_server.setdefault(server, set()).update(executed(profile, binary))
    postgres, sqlite = set(), set()
    for ran in by_server.values():
        # A server on SQLite runs SQLite's bytecode engine; one on PostgreSQL never does.
        (sqlite if "sqlite3VdbeExec" in ran else postgres).update(ran)
    if not postgres or not sqlite:
        sys.exit("need profiles of a PostgreSQL and a SQLite server")
    order, listed = [], set()
    for ran in (postgres, sqlite):
        for name in sorted((n for n in ran if n in address), key=lambda n: (address[n], n)):
            if name not in listed:
                order.append(name)
                listed.add(name)
    with open(output, "w") as out:
        out.write("\n".join(order) + "\n")
    print(f"{output}: {len(order)} functions of {len(by_server)} servers", end=" ")
    print(f"({len(postgres)} run on PostgreSQL, {len(sqlite)} on SQLite)")


if __name__ == "__main__":
    main()
