# needs: jsonschema
"""test_schema.py: the JSON Schemas of results/schema/ agree with
results/README.md and are strict where the producer is ours: each is a
valid draft 2020-12 schema; runs.schema.json has exactly the columns of the
README's runs table (so a column added to one and not the other fails) and
`poolbench run --json` no key the table does not document but `kind`;
every property of every schema has a description; every object of our own
producers forbids unknown keys; the README names every schema file and
validate_json.py maps every file of a results folder to one.  Run by
tests/e2e_schema.sh.
"""
import os
import re
import sys
import unittest

import jsonschema

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCHEMAS = os.path.join(ROOT, "results", "schema")
README = os.path.join(ROOT, "results", "README.md")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import validate_json  # noqa: E402


def readme_columns(heading):
    """The backticked names in the first cell of the table under
    `## heading` of results/README.md."""
    with open(README) as f:
        text = f.read()
    section = text.split("\n## " + heading + "\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z0-9_]+)`", line.split(" | ")[0]))
    return names


def objects(schema, path="#"):
    """Every (path, subschema) with properties, recursively."""
    if isinstance(schema, dict):
        if "properties" in schema:
            yield path, schema
        for k, v in schema.items():
            if k not in ("if", "then", "else"):  # conditions narrow described properties
                yield from objects(v, path + "/" + k)
    elif isinstance(schema, list):
        for i, v in enumerate(schema):
            yield from objects(v, "%s/%d" % (path, i))


class SchemaTest(unittest.TestCase):
    def setUp(self):
        self.schemas = validate_json.load_schemas(SCHEMAS)

    def test_all_there_and_valid(self):
        want = {"common", "runs", "run", "overhead", "transport", "footprint", "noise", "advise",
                "calibrate", "machine", "scale", "peers"}
        self.assertEqual(set(self.schemas), want)
        for name, s in self.schemas.items():
            jsonschema.Draft202012Validator.check_schema(s)
            self.assertEqual(s["$id"].rsplit("/", 1)[1], name + ".schema.json")

    def test_runs_columns_are_the_readme_table(self):
        props = set(self.schemas["runs"]["properties"])
        cols = readme_columns("runs.csv / runs.jsonl")
        self.assertEqual(props - cols, set(), "in runs.schema.json, not in results/README.md")
        self.assertEqual(cols - props, set(), "in results/README.md, not in runs.schema.json")
        self.assertEqual(set(self.schemas["runs"]["required"]), props)

    def test_run_json_keys_are_documented(self):
        props = set(self.schemas["run"]["properties"])
        self.assertEqual(props - readme_columns("runs.csv / runs.jsonl"), {"kind"})

    def test_every_property_described_and_objects_closed(self):
        open_ok = {("machine", "#/properties/libraries"), ("calibrate", "#/properties/mpi")}
        for name, s in self.schemas.items():
            for path, obj in objects(s):
                for key, prop in obj["properties"].items():
                    self.assertTrue(prop.get("description"), "%s %s: %s has no description" % (name, path, key))
                if (name, path) not in open_ok and "additionalProperties" not in obj:
                    self.fail("%s %s: no additionalProperties: false" % (name, path))

    def test_readme_names_every_schema(self):
        with open(README) as f:
            text = f.read()
        for name in self.schemas:
            self.assertTrue("schema/%s.schema.json" % name in text, "results/README.md does not name %s" % name)

    def test_results_files_map_to_schemas(self):
        for f, want in [("runs.jsonl", "runs"), ("peers_python.jsonl", "peers"), ("machine.json", "machine"),
                        ("noise.jsonl", "noise"), ("scale.jsonl", "scale"), ("summary.csv", None)]:
            self.assertEqual(validate_json.schema_for(f), want)
        for _, name in validate_json.BY_NAME:
            self.assertIn(name, self.schemas)

    def test_leaves_room_for_mpi(self):
        common = self.schemas["common"]["$defs"]
        self.assertIn("mpi", common["executor"]["enum"])
        self.assertRegex("mpi-tcp", common["transport"]["pattern"])
        self.assertIn("mpi", self.schemas["calibrate"]["properties"])

    def test_a_wrong_document_names_its_key(self):
        v = validate_json.validator(self.schemas, "noise")
        doc = {"label": "", "timestamp": "2026-01-01T00:00:00Z", "online_cpus": "2", "capacity_cpus": 1.9,
               "loadavg_1m": 0.1, "procs_running": 1, "window_s": 0.2, "steal_pct": None, "iowait_pct": 0}
        msgs = sorted("%s: %s" % (validate_json.where(e), e.message) for e in v.iter_errors(doc))
        self.assertEqual(msgs, ["/: 'others_cpu_s' is a required property",
                                "/online_cpus: '2' is not of type 'integer'"])


if __name__ == "__main__":
    unittest.main()
