"""The agent suite of test_cluster_agent.py on the etcd store: every test of that file that runs
on its three-node `cluster`, collected again here with the cluster on etcd. A file of its own so
that parallel workers (pytest-xdist --dist loadfile) run the two backends at the same time."""
import inspect

import pytest

import test_cluster_agent as suite

def _uses(obj, names):
    return bool(names & set(inspect.signature(obj).parameters))


_fixtures = {n: o for n, o in vars(suite).items() if hasattr(o, "_pytestfixturefunction") and n != "cluster"}
_on_cluster = {"cluster"}  # and the fixtures built on it (clean, ...)
while True:
    _more = {n for n, o in _fixtures.items() if n not in _on_cluster and _uses(o, _on_cluster)}
    if not _more:
        break
    _on_cluster |= _more
globals().update(_fixtures)
for _name, _obj in vars(suite).items():
    if _name.startswith("test_") and callable(_obj) and _uses(_obj, _on_cluster):
        globals()[_name] = _obj


@pytest.fixture(scope="module")
def cluster(busybox):
    yield from suite.cluster_on("etcd", busybox)
