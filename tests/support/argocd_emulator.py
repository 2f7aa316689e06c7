"""Expand an ApplicationSet the way Argo CD's ApplicationSet controller does, for the features we use.

Argo CD (applicationset/generators/git.go, matrix.go; applicationset/utils/utils.go, templatePatch.go):
- git files generator: glob the repository for each `files[].path` (a `*` stays inside one path
  segment), minus `exclude: true` patterns; for each file in sorted order, parse YAML (one object, or a
  list of objects = one parameter set each). With goTemplate the parameters are the file's content plus
  `path` = {path: dirname, basename, filename, basenameNormalized, filenameNormalized, segments}, placed
  under `pathParamPrefix` when one is set.
- matrix generator: the second child is rendered with each parameter set of the first (Go templates),
  then each pair is merged. Argo CD merges with mergo (first wins on a clash); our files never clash,
  and a clash here is an error so that the difference can never matter silently.
- template: every string of the template, map keys included, is its own Go template
  (text/template + sprig, with goTemplateOptions such as missingkey=error). Then the
  resources-finalizer is added unless syncPolicy.preserveResourcesOnDeletion; then templatePatch is
  rendered as one Go template and applied as a strategic merge patch.

Only the Go template features our ApplicationSet uses are implemented: field chains (`.a.b`), `index`,
`eq`, `not`, string literals, `if`/`else`/`end` and the `{{-`/`-}}` trim markers. Anything else raises
UnsupportedTemplate, so extending the ApplicationSet beyond this subset fails the tests loudly instead
of being expanded wrongly.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"


class TemplateError(Exception):
    """What Argo CD would report as a failed template execution (the ApplicationSet errors)."""


class UnsupportedTemplate(Exception):
    """A template feature this emulation does not implement."""


# ---------------------------------------------------------------------------------------------------
# Go text/template, the subset


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def _tokens(template: str) -> list[tuple[str, str]]:
    """[(kind, text)] with kind "text" or "action", trim markers applied to the neighbouring text."""
    out: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        out.append(("text", text))
        out.append(("action", m.group(2).strip()))
        trim_next = bool(m.group(3))
        pos = m.end()
    text = template[pos:]
    out.append(("text", text.lstrip() if trim_next else text))
    return out


def _parse(
    tokens: list[tuple[str, str]], i: int = 0, until: tuple[str, ...] = ()
) -> tuple[list[Any], int, str]:
    """A tree: str (text), ("print", expr), ("if", expr, then, else). Returns (nodes, next index, stop)."""
    nodes: list[Any] = []
    while i < len(tokens):
        kind, text = tokens[i]
        i += 1
        if kind == "text":
            if text:
                nodes.append(text)
            continue
        word = text.split(None, 1)[0] if text else ""
        if word in until:
            return nodes, i, word
        if word == "if":
            then, i, stop = _parse(tokens, i, ("else", "end"))
            other: list[Any] = []
            if stop == "else":
                if tokens[i - 1][1].strip() != "else":  # {{ else if ... }}
                    raise UnsupportedTemplate(f"{{{{ {tokens[i - 1][1]} }}}}")
                other, i, stop = _parse(tokens, i, ("end",))
            if stop != "end":
                raise TemplateError("unexpected EOF: {{ if }} without {{ end }}")
            nodes.append(("if", text[2:].strip(), then, other))
        elif word in ("range", "with", "define", "template", "block", "else", "end") or text.startswith("/*"):
            raise UnsupportedTemplate(f"{{{{ {text} }}}}")
        else:
            nodes.append(("print", text))
    if until:
        raise TemplateError(f"unexpected EOF: expected {{{{ {' or '.join(until)} }}}}")
    return nodes, i, ""


def _field(data: Any, chain: str, missingkey_error: bool) -> Any:
    cur = data
    for key in [k for k in chain.split(".") if k]:
        if cur is None:
            raise TemplateError(f"nil pointer evaluating interface {{}}.{key}")
        if not isinstance(cur, dict):
            raise TemplateError(f"can't evaluate field {key} in type {type(cur).__name__}")
        if key not in cur:
            if missingkey_error:
                raise TemplateError(f'map has no entry for key "{key}"')
            return None
        cur = cur[key]
    return cur


def _operand(token: str, data: Any, missingkey_error: bool) -> Any:
    if token.startswith("."):
        return _field(data, token, missingkey_error)
    if token.startswith('"') and token.endswith('"'):
        return token[1:-1]
    if re.fullmatch(r"-?[0-9]+", token):
        return int(token)
    if token in ("true", "false"):
        return token == "true"
    raise UnsupportedTemplate(f"operand {token!r}")


def _truthy(value: Any) -> bool:
    return not (value is None or value is False or value == 0 or value in ("", {}, []))


def _eval(expr: str, data: Any, missingkey_error: bool) -> Any:
    if "|" in expr or "(" in expr or ":=" in expr:
        raise UnsupportedTemplate(f"expression {expr!r}")
    words = shlex.split(expr, posix=False)
    head, args = words[0], [_operand(w, data, missingkey_error) for w in words[1:]]
    if head == "index":
        cur = args[0]
        for key in args[1:]:
            if isinstance(cur, dict):
                if key not in cur:
                    if missingkey_error:
                        raise TemplateError(f'map has no entry for key "{key}"')
                    return None
                cur = cur[key]
            elif isinstance(cur, list):
                if not isinstance(key, int) or not 0 <= key < len(cur):
                    raise TemplateError(f"error calling index: index out of range: {key}")
                cur = cur[key]
            else:
                raise TemplateError(f"can't index item of type {type(cur).__name__}")
        return cur
    if head == "eq":
        return args[0] == args[1]
    if head == "not":
        return not _truthy(args[0])
    if words[1:]:
        raise UnsupportedTemplate(f"function {head!r}")
    return _operand(head, data, missingkey_error)


def _print(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    raise UnsupportedTemplate(f"printing a {type(value).__name__} ({value!r})")


def _run(nodes: list[Any], data: Any, missingkey_error: bool) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "print":
            out.append(_print(_eval(node[1], data, missingkey_error)))
        else:
            _, cond, then, other = node
            out.append(
                _run(then if _truthy(_eval(cond, data, missingkey_error)) else other, data, missingkey_error)
            )
    return "".join(out)


def render_string(template: str, params: dict[str, Any], options: list[str]) -> str:
    """Go's template.New("").Option(options...).Parse(template).Execute(params)."""
    for option in options:
        if option not in ("missingkey=error", "missingkey=default", "missingkey=zero", "missingkey=invalid"):
            raise UnsupportedTemplate(f"goTemplateOptions {option!r}")
    nodes, _, _ = _parse(_tokens(template))
    return _run(nodes, params, "missingkey=error" in options)


def render_tree(node: Any, params: dict[str, Any], options: list[str]) -> Any:
    """Every string of a structure rendered on its own, map keys included (Argo CD's deeplyReplace)."""
    if isinstance(node, str):
        return render_string(node, params, options)
    if isinstance(node, list):
        return [render_tree(v, params, options) for v in node]
    if isinstance(node, dict):
        return {render_string(k, params, options): render_tree(v, params, options) for k, v in node.items()}
    return node


# ---------------------------------------------------------------------------------------------------
# Generators


def normalize(name: str) -> str:
    """Argo CD's SanitizeName (the `normalize` function and the *Normalized path parameters)."""
    name = re.sub(r"[^-a-z0-9.]", "-", name.lower())[:253]
    return name.strip("-.")


def glob_files(repo: Path, pattern: str) -> set[str]:
    """Repository-relative files matching a git files generator path (`*` within one segment)."""
    if "**" in pattern:
        raise UnsupportedTemplate(f"'**' globs ({pattern!r}) depend on Argo CD's new globbing option")
    parts = pattern.split("/")
    found = set()
    for path in repo.rglob("*"):
        rel = path.relative_to(repo).as_posix()
        segs = rel.split("/")
        if (
            path.is_file()
            and len(segs) == len(parts)
            and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segs, parts, strict=True))
        ):
            found.add(rel)
    return found


def git_files(repo: Path, git: dict[str, Any]) -> list[dict[str, Any]]:
    unsupported = set(git) - {"repoURL", "revision", "files", "pathParamPrefix", "requeueAfterSeconds"}
    if unsupported:
        raise UnsupportedTemplate(f"git generator fields {sorted(unsupported)}")
    files: set[str] = set()
    for item in git["files"]:
        if not item.get("exclude"):
            files |= glob_files(repo, item["path"])
    for item in git["files"]:
        if item.get("exclude"):
            files -= glob_files(repo, item["path"])
    out = []
    for rel in sorted(files):
        content = yaml.safe_load((repo / rel).read_text())
        objects = content if isinstance(content, list) else [content or {}]
        for obj in objects:
            params = dict(obj)
            dirname = posixpath.dirname(rel)
            path = {
                "path": dirname,
                "basename": posixpath.basename(dirname),
                "filename": posixpath.basename(rel),
                "basenameNormalized": normalize(posixpath.basename(dirname)),
                "filenameNormalized": normalize(posixpath.basename(rel)),
                "segments": dirname.split("/"),
            }
            prefix = git.get("pathParamPrefix")
            if prefix:
                params[prefix] = {"path": path}
            else:
                params["path"] = path
            out.append(params)
    return out


def generate(repo: Path, generator: dict[str, Any], options: list[str]) -> list[dict[str, Any]]:
    kinds = set(generator) - {"selector"}
    if "selector" in generator:
        raise UnsupportedTemplate("generator selectors")
    if kinds == {"git"}:
        return git_files(repo, generator["git"])
    if kinds == {"matrix"}:
        children = generator["matrix"]["generators"]
        if len(children) != 2:
            raise TemplateError("Matrix support only two generators")
        result = []
        for first in generate(repo, children[0], options):
            second_gen = render_tree(children[1], first, options)
            for second in generate(repo, second_gen, options):
                clash = set(first) & set(second)
                if clash:
                    raise TemplateError(
                        f"matrix children both set {sorted(clash)}: Argo CD would keep the "
                        "first child's value (mergo); rename a key or a pathParamPrefix"
                    )
                result.append({**first, **second})
        return result
    raise UnsupportedTemplate(f"generator {sorted(kinds)}")


# ---------------------------------------------------------------------------------------------------
# Applications


def strategic_merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch onto Application JSON: maps merge, null deletes. Lists would need the
    Application type's patch strategies, so a list in the patch is refused."""
    if not isinstance(patch, dict) or not isinstance(base, dict):
        if isinstance(patch, list):
            raise UnsupportedTemplate("lists in templatePatch")
        return patch
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = strategic_merge(out[key], value)
        else:
            if isinstance(value, list):
                raise UnsupportedTemplate("lists in templatePatch")
            out[key] = value
    return out


def expand(appset: dict[str, Any], repo: Path) -> list[dict[str, Any]]:
    """The Applications the ApplicationSet controller would create for the files under `repo`."""
    spec = appset["spec"]
    if not spec.get("goTemplate"):
        raise UnsupportedTemplate("fasttemplate (goTemplate: false) ApplicationSets")
    options = list(spec.get("goTemplateOptions", []))
    preserve = bool((spec.get("syncPolicy") or {}).get("preserveResourcesOnDeletion"))
    apps = []
    for generator in spec["generators"]:
        for params in generate(repo, generator, options):
            rendered = render_tree(spec["template"], params, options)
            metadata = dict(rendered.get("metadata") or {})
            if not preserve and not metadata.get("finalizers"):
                metadata["finalizers"] = [RESOURCES_FINALIZER]
            metadata["namespace"] = appset["metadata"]["namespace"]
            app = {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": metadata,
                "spec": rendered["spec"],
            }
            if spec.get("templatePatch"):
                patch = yaml.safe_load(render_string(spec["templatePatch"], params, options))
                if not isinstance(patch, dict):
                    raise TemplateError(f"invalid templatePatch {patch!r}")
                app = strategic_merge(app, patch)
            apps.append(app)
    return apps
