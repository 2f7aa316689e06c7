"""Generate the values table of the chart README from values.yaml (helm-docs style comments).

Every key in values.yaml carries a `# --` comment (continued by `#` lines, optionally ending with
`# @default -- text` to show a computed default). A documented key whose value is a map or list is one
row, with the whole value as its default; an undocumented key must be a map whose keys are documented.
The type comes from values.schema.json, so a key the schema does not know is an error too.

    python hack/values_table.py          # rewrite the table in README.md
    python hack/values_table.py --check  # exit 1 if README.md is not current (make lint)

No helm-docs binary: this is the only feature of it the chart needs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[1]
START, END = "<!-- values:start -->", "<!-- values:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")
DOC = re.compile(r"^ *# -- ?(?P<text>.*)$")
DEFAULT = re.compile(r"^ *# @default -- ?(?P<text>.*)$")
CONT = re.compile(r"^ *#(?: (?P<text>.*))?$")


class ValuesDocError(Exception):
    pass


@dataclass
class Row:
    key: str
    type: str
    default: str
    description: str


def parse(values_text: str) -> list[tuple[str, str, str | None]]:
    """(dotted key, description, default override) for every documented key, in file order."""
    documented: list[tuple[str, str, str | None]] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the undocumented maps we are inside
    doc: list[str] | None = None
    default: str | None = None
    skip_deeper_than: int | None = None  # inside the value of a documented key
    for lineno, line in enumerate(values_text.splitlines(), 1):
        if not line.strip():
            doc, default = None, None
            continue
        indent = len(line) - len(line.lstrip(" "))
        if skip_deeper_than is not None:
            if indent > skip_deeper_than or line.lstrip().startswith("- "):
                continue
            skip_deeper_than = None
        if m := DEFAULT.match(line):
            default = m["text"]
            continue
        if m := DOC.match(line):
            doc = [m["text"]]
            continue
        if m := CONT.match(line):
            if doc is not None and default is None:
                doc.append(m["text"] or "")
            continue
        m = KEY.match(line)
        if not m:
            raise ValuesDocError(f"values.yaml:{lineno}: not a key, comment or documented value: {line!r}")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [m["key"]])
        rest = m["rest"].split(" #")[0].strip()
        if doc is not None:
            documented.append((path, " ".join(t.strip() for t in doc).strip(), default))
            skip_deeper_than = indent
        elif rest:
            raise ValuesDocError(f"values.yaml:{lineno}: `{path}` has no `# --` comment")
        else:
            stack.append((indent, m["key"]))
        doc, default = None, None
    return documented


def lookup(tree: object, path: str) -> object:
    for part in path.split("."):
        if not isinstance(tree, dict) or part not in tree:
            raise ValuesDocError(f"`{path}` is not in values.yaml")
        tree = tree[part]
    return tree


def schema_type(schema: dict, path: str) -> str:
    node = schema
    for part in path.split("."):
        props = node.get("properties", {})
        if part not in props:
            raise ValuesDocError(f"`{path}` is not in values.schema.json")
        node = props[part]
    t = node.get("type", "object")
    return " or ".join(t) if isinstance(t, list) else t


def server_default(description: str) -> str | None:
    """The server's own default for a setting left null, read from model_server.settings (the one place
    those defaults are written), so the table cannot drift from the server."""
    m = re.search(r"\(env ([A-Z_]+)", description)
    if not m:
        return None
    from model_server.settings import Settings

    defaults = {f.name.upper(): f.default for f in fields(Settings)}
    if m[1] not in defaults:
        raise ValuesDocError(f"env {m[1]} is not a setting of model_server.settings.Settings")
    if defaults[m[1]] is None:  # the server works it out at start (e.g. from the memory limit)
        return None
    return f"`null` (server default: `{defaults[m[1]]}`)"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(chart: Path = CHART) -> list[Row]:
    text = (chart / "values.yaml").read_text()
    values = yaml.safe_load(text)
    schema = json.loads((chart / "values.schema.json").read_text())
    out = []
    for path, description, default in parse(text):
        value = lookup(values, path)
        shown = default if default is not None else f"`{json.dumps(value, separators=(',', ':'))}`"
        if value is None and default is None:
            shown = server_default(description) or shown
        if not description:
            raise ValuesDocError(f"`{path}` has an empty `# --` comment")
        out.append(Row(path, schema_type(schema, path), shown, description))
    return out


def table(chart: Path = CHART) -> str:
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    lines += [f"| `{r.key}` | {r.type} | {cell(r.default)} | {cell(r.description)} |" for r in rows(chart)]
    return "\n".join(lines)


def render(readme: str, chart: Path = CHART) -> str:
    if START not in readme or END not in readme:
        raise ValuesDocError(f"README.md needs the markers {START} and {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table(chart)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is not current")
    args = parser.parse_args(argv)
    readme_path = CHART / "README.md"
    try:
        current = readme_path.read_text()
        wanted = render(current)
    except ValuesDocError as e:
        print(f"values_table: {e}", file=sys.stderr)
        return 1
    if args.check:
        if current != wanted:
            print(
                "values_table: charts/model-server/README.md is out of date with values.yaml; "
                "run `make chart-readme`",
                file=sys.stderr,
            )
            return 1
        return 0
    readme_path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
