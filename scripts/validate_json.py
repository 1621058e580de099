#!/usr/bin/env python3
# needs: jsonschema
"""validate_json.py: checks poolbench's JSON outputs against their JSON
Schemas (results/schema/*.schema.json, draft 2020-12, Debian's
python3-jsonschema).

    scripts/py.sh scripts/validate_json.py FILE...             (schema by file name)
    scripts/py.sh scripts/validate_json.py --schema run FILE...
    scripts/py.sh scripts/validate_json.py --dir RESULTS_DIR   (every known file in it)

A .jsonl file holds one document per line, any other file one document.
Without --schema the schema is chosen by the file's name (runs.jsonl ->
runs, calibrate.json -> calibrate, peers_python.jsonl -> peers, ...).
Every violation is one line: FILE[:LINE]: /path/to/key: the message, so a
missing key or a value of the wrong type is named.  Exit status: 0 when
every document is valid, 1 when one is not (or is not JSON), 2 for bad
usage (an unknown schema, a missing file, no known file in --dir).
"""
import argparse
import fnmatch
import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "..", "results", "schema")

# The files of a results folder and their schemas (results/README.md).
BY_NAME = [
    ("runs.jsonl", "runs"),
    ("overhead.jsonl", "overhead"),
    ("transport.jsonl", "transport"),
    ("noise.jsonl", "noise"),
    ("scale.jsonl", "scale"),
    ("peers_*.jsonl", "peers"),
    ("calibrate.json", "calibrate"),
    ("machine.json", "machine"),
    ("advise.json", "advise"),
]


def load_schemas(folder):
    """{name: schema} of every *.schema.json in folder, each checked
    against the draft 2020-12 metaschema."""
    schemas = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".schema.json"):
            with open(os.path.join(folder, f)) as fh:
                s = json.load(fh)
            jsonschema.Draft202012Validator.check_schema(s)
            schemas[f[:-len(".schema.json")]] = s
    return schemas


def validator(schemas, name):
    """A validator for schema `name`, resolving $refs among the folder's
    schemas by their $id (no network)."""
    store = {s["$id"]: s for s in schemas.values() if "$id" in s}
    resolver = jsonschema.RefResolver.from_schema(schemas[name], store=store)
    return jsonschema.Draft202012Validator(schemas[name], resolver=resolver)


def schema_for(path):
    base = os.path.basename(path)
    for pattern, name in BY_NAME:
        if fnmatch.fnmatch(base, pattern):
            return name
    return None


def documents(path):
    """(line number or None, parsed document or the JSON error) of a file."""
    with open(path) as f:
        text = f.read()
    if not path.endswith(".jsonl"):
        try:
            yield None, json.loads(text)
        except ValueError as e:
            yield None, e
        return
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except ValueError as e:
                yield n, e


def where(error):
    """The key path of a violation: /measures/3/median; a missing key named
    in the message sits in the object that lacks it."""
    return "/" + "/".join(str(p) for p in error.absolute_path)


def check_file(path, v, out):
    """Prints one line per violation; returns (documents, violations)."""
    ndocs = nbad = 0
    for line, doc in documents(path):
        ndocs += 1
        at = path if line is None else "%s:%d" % (path, line)
        if isinstance(doc, ValueError):
            print("%s: not JSON: %s" % (at, doc), file=out)
            nbad += 1
            continue
        for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
            print("%s: %s: %s" % (at, where(e), e.message), file=out)
            nbad += 1
    if ndocs == 0:
        print("%s: no JSON document in it" % path, file=out)
        nbad += 1
    return ndocs, nbad


def files_in(folder):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if schema_for(f):
                found.append(os.path.join(root, f))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="JSON or JSON Lines files")
    ap.add_argument("--schema", help="schema name (runs, run, overhead, ...) or a path to a schema file")
    ap.add_argument("--dir", help="a results folder: every file of it that has a schema")
    ap.add_argument("--schemas", default=SCHEMA_DIR, help="the schema folder (default results/schema)")
    args = ap.parse_args()
    try:
        schemas = load_schemas(args.schemas)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        ap.exit(2, "validate_json: --schemas %s: %s\n" % (args.schemas, e))
    if args.schema and os.path.isfile(args.schema):
        with open(args.schema) as f:
            s = json.load(f)
        args.schema = os.path.basename(args.schema).split(".")[0]
        schemas[args.schema] = s
    if args.schema and args.schema not in schemas:
        ap.exit(2, "validate_json: --schema %s: unknown (accepted: %s, or a schema file)\n"
                % (args.schema, ", ".join(sorted(schemas))))
    files = list(args.files)
    if args.dir:
        files += files_in(args.dir)
        if not files:
            ap.exit(2, "validate_json: --dir %s: no file with a schema in it (%s)\n"
                    % (args.dir, ", ".join(p for p, _ in BY_NAME)))
    if not files:
        ap.error("no file given (FILE... or --dir DIR)")
    bad = 0
    for path in files:
        name = args.schema or schema_for(path)
        if not name:
            ap.exit(2, "validate_json: %s: no schema for this file name: give --schema (accepted: %s)\n"
                    % (path, ", ".join(sorted(schemas))))
        if not os.path.isfile(path):
            ap.exit(2, "validate_json: %s: no such file\n" % path)
        ndocs, nbad = check_file(path, validator(schemas, name), sys.stdout)
        bad += nbad
        if nbad == 0:
            print("ok   %s (%d document%s, schema %s)" % (path, ndocs, "" if ndocs == 1 else "s", name))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
