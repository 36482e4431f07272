#!/usr/bin/python3
"""Seconds per integration test file from a pytest --junitxml report, longest first, in the shape of
tests/integration/conftest.py's FILE_SECONDS (which orders the files for the parallel run).

    /usr/bin/python3 -m pytest -n 4 --dist loadfile --junitxml=/tmp/it.xml tests/integration
    scripts/test-durations.py /tmp/it.xml
"""
import collections
import sys
import xml.etree.ElementTree as ET

if len(sys.argv) != 2:
    sys.exit("usage: test-durations.py JUNIT.xml")
per_file = collections.Counter()
for case in ET.parse(sys.argv[1]).iter("testcase"):
    parts = case.get("classname", "").split(".")  # tests.integration.test_x[.Class]
    module = next((p for p in parts if p.startswith("test_")), "?")
    per_file[module + ".py"] += float(case.get("time", 0))
for name, secs in per_file.most_common():
    print(f'    "{name}": {secs:.0f},')
print(f"# total {sum(per_file.values()):.0f} s over {len(per_file)} files", file=sys.stderr)
