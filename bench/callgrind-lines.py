#!/usr/bin/env python3
"""Distinct 64-byte lines of code a profiled run executed, in all and by function.

On a host whose requests run more code than its first-level instruction cache holds, the
misses per request track this count (bench/RESULTS.md, 2026-12-07, second session). Profile
with the instruction positions kept:

    valgrind --tool=callgrind --dump-instr=yes --collect-atstart=no \
        --toggle-collect='*requests::measure*' --callgrind-out-file=OUT \
        target/release/examples/requests encrypted-write 500
    bench/callgrind-lines.py OUT [ROWS]

The count covers the measured requests only; they all run the same code, so it is also the
count per request.
"""
import collections
import re
import sys


def main():
    path = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    names = {}
    function = obj = None
    address = 0
    call_cost_next = False
    by_function = collections.defaultdict(set)
    lines = set()

    def resolve(kind, text):
        # Callgrind's name compression: "(id) name" defines an id, "(id)" reuses it.
        match = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not match:
            return text
        if match.group(2):
            names[(kind, match.group(1))] = match.group(2)
        return names.get((kind, match.group(1)), match.group(1))

    with open(path) as profile:
        for line in profile:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("fn="):
                function = resolve("fn", line[3:])
            elif line.startswith("ob="):
                obj = resolve("ob", line[3:])
            elif line.startswith("cfn="):
                resolve("fn", line[4:])
            elif line.startswith("cob="):
                resolve("ob", line[4:])
            elif line.startswith("calls="):
                # The next cost line is the call's inclusive cost, not executed code.
                call_cost_next = True
            elif line[0] in "0123456789+-*":
                fields = line.split()
                position = fields[0]
                if position.startswith("0x"):
                    address = int(position, 16)
                elif position.startswith("+"):
                    address += int(position[1:])
                elif position.startswith("-"):
                    address -= int(position[1:])
                elif position != "*":
                    address = int(position)
                if call_cost_next:
                    call_cost_next = False
                    continue
                # Fields: instruction address, source line, then the events (Ir first).
                if len(fields) >= 3 and fields[2] != "0":
                    lines.add(address >> 6)
                    by_function[(obj, function)].add(address >> 6)
    print("distinct 64-byte code lines:", len(lines), "=", len(lines) * 64, "bytes")
    for (_, name), touched in sorted(by_function.items(), key=lambda kv: -len(kv[1]))[:rows]:
        print("%5d  %s" % (len(touched), name))


if __name__ == "__main__":
    main()
