"""Check an API answer against botocore's model of the operation (the contract
the aws CLI and boto3 parse with): member types, enum values, required
members, no JSON null where the model has a structure, list or map,
timestamps as epoch numbers, and members the model does not know (a typo in a
field name is a field a client never sees).

    problems = check_output("ecs", "DescribeTasks", answer_json)   # [] when it conforms
    assert_output("ecs", "DescribeTasks", answer_json)             # AssertionError listing them

`answer_json` is the parsed JSON body as the server sent it (not boto3's parsed
result: boto3 already turned timestamps into datetimes and dropped unknown
members). `extra_ok` names members berth adds on purpose (e.g. "berthPlacement");
they are skipped wherever they appear.
"""
import functools
import json

import botocore.session


@functools.lru_cache(maxsize=None)
def service_model(service):
    return botocore.session.get_session().get_service_model(service)


def _check(shape, value, path, out, extra_ok):
    t = shape.type_name
    if value is None:
        out.append(f"{path}: null where the model has a {t} ({shape.name})")
        return
    if t == "structure":
        if not isinstance(value, dict):
            out.append(f"{path}: {type(value).__name__} where the model has structure {shape.name}")
            return
        members = shape.members
        for req in shape.required_members:
            if req not in value:
                out.append(f"{path}: required member {req} of {shape.name} missing")
        for k, v in value.items():
            if k in members:
                _check(members[k], v, f"{path}.{k}", out, extra_ok)
            elif k not in extra_ok:
                out.append(f"{path}.{k}: not a member of {shape.name}")
    elif t == "list":
        if not isinstance(value, list):
            out.append(f"{path}: {type(value).__name__} where the model has list {shape.name}")
            return
        for i, v in enumerate(value):
            _check(shape.member, v, f"{path}[{i}]", out, extra_ok)
    elif t == "map":
        if not isinstance(value, dict):
            out.append(f"{path}: {type(value).__name__} where the model has map {shape.name}")
            return
        for k, v in value.items():
            _check(shape.key, k, f"{path}<key {k!r}>", out, extra_ok)
            _check(shape.value, v, f"{path}[{k!r}]", out, extra_ok)
    elif t == "string":
        if not isinstance(value, str):
            out.append(f"{path}: {type(value).__name__} {value!r} where the model has a string")
        elif shape.enum and value not in shape.enum:
            out.append(f"{path}: {value!r} is not one of {shape.name}'s values {shape.enum}")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(f"{path}: {type(value).__name__} {value!r} where the model has an {t}")
        elif t == "integer" and not -2**31 <= value < 2**31:
            out.append(f"{path}: {value} out of a 32-bit integer's range")
    elif t in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"{path}: {type(value).__name__} {value!r} where the model has a {t}")
    elif t == "boolean":
        if not isinstance(value, bool):
            out.append(f"{path}: {type(value).__name__} {value!r} where the model has a boolean")
    elif t == "timestamp":
        # awsJson: epoch seconds as a JSON number (botocore would also guess at strings; the CLI and
        # SDKs in other languages do not)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"{path}: {type(value).__name__} {value!r} where the model has an epoch-seconds timestamp")
        elif not 0 <= value < 32503680000:
            out.append(f"{path}: timestamp {value} is not epoch seconds")
    elif t == "blob":
        if not isinstance(value, str):
            out.append(f"{path}: {type(value).__name__} where the model has a base64 blob")
    else:
        out.append(f"{path}: model type {t} not checked")


def check_output(service, operation, answer, extra_ok=("berthPlacement",)):
    """The ways answer (parsed JSON, or text) departs from the operation's output shape; [] if none."""
    if isinstance(answer, (str, bytes)):
        answer = json.loads(answer)
    op = service_model(service).operation_model(operation)
    out = []
    if op.output_shape is None:
        if answer not in ({}, None):
            out.append(f"{operation}: the model has no output, got {answer!r}")
        return out
    _check(op.output_shape, answer, operation, out, set(extra_ok))
    return out


def assert_output(service, operation, answer, extra_ok=("berthPlacement",)):
    problems = check_output(service, operation, answer, extra_ok)
    assert not problems, f"{operation} answer departs from botocore's model:\n  " + "\n  ".join(problems[:40])
    return answer


def error_codes(service, operation):
    """The error shapes the model lists for the operation (ECS answers these as __type)."""
    return [e.name for e in service_model(service).operation_model(operation).error_shapes]
