"""Checks response objects against the schemas of spec/openai_openapi.yaml.

A small validator for the subset of JSON Schema the OpenAI spec uses for these objects: $ref, type
(also as a list, and OpenAPI 3.0's nullable), properties, required, items, anyOf/oneOf/allOf, enum.
Returns a list of problems (empty = valid) so a failing test shows every mismatch at once.
"""
import functools
import os

import yaml

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "spec", "openai_openapi.yaml")
SPEC_FALLBACKS = [SPEC, "/work/shared/spec/openai_openapi.yaml",
                  os.path.join(os.path.dirname(__file__), "openai_openapi.yaml")]

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


@functools.lru_cache(maxsize=1)
def schemas():
    for path in SPEC_FALLBACKS:
        if os.path.exists(path):
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            with open(path) as f:
                return yaml.load(f, Loader=loader)["components"]["schemas"]
    raise FileNotFoundError("openai_openapi.yaml not found")


def _type_ok(value, t):
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(t, object))


def check(value, schema, path="$"):
    if "$ref" in schema:
        return check(value, schemas()[schema["$ref"].split("/")[-1]], path)
    problems = []
    if value is None and schema.get("nullable"):
        return problems
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [check(value, s, path) for s in schema[key]]
            if all(options):
                problems.append(f"{path}: matches none of {key}: {options}")
            return problems
    for sub in schema.get("allOf", []):
        problems += check(value, sub, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in types):
            return [f"{path}: {value!r} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{path}: required field {key!r} missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += check(value[key], sub, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += check(item, schema["items"], f"{path}[{i}]")
    return problems


def check_named(value, name):
    return check(value, {"$ref": f"#/components/schemas/{name}"})
