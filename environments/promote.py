#!/usr/bin/env python3
"""Move model releases between environments by editing their values files, never by hand-run sed.

A *release* of a model in an environment is four fields of environments/<env>/models/<model>.yaml:
``model.version``, ``model.source`` (where the bundle comes from: the image, a URL + sha256, an OCI
reference or a PVC) and ``image.tag`` / ``image.digest``. Everything else in those files (replicas,
resources, monitoring) belongs to the environment and is never copied.

The environments are the folders of environments/ holding an env.yaml (the one list, shared with the
ApplicationSet and the tests). ``promotion.from`` in env.yaml names the environment a release must pass
through first: dev <- staging <- prod. Commands:

  promote --model M --from staging --to prod [--version V]
      copy M's release from staging to prod (V: an older release that staging's git history holds)
  set-model --env dev --model M --version V (--url URI --sha256 HEX | --oci REF | --image)
      put a new release into an environment that has no source environment (the model release workflow)
  set-image --env dev --tag T [--digest sha256:...] [--model M]
      point an environment's models at a new server image (the deploy workflow)
  check
      every release in an environment was, at some commit, the release of its source environment
  status
      one line per environment and model

Every edit goes through ruamel.yaml's round-trip mode, so only the lines of the fields it changes move
(comments, blank lines and quoting stay); the result is re-read with PyYAML and compared with what was
meant, and rendered with ``helm template`` (the chart's values.schema.json included) before the file
is written.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = "env.yaml"
COMMON_VALUES = "common.yaml"
# The fields that make up a release, as paths into the values file. Their order is the order in
# which they are written into a file that lacks them.
RELEASE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("model", "version"),
    ("model", "source"),
    ("image", "tag"),
    ("image", "digest"),
)
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Plain HTTP only inside the cluster (a bundle server's Service): the traffic never leaves the cluster
# network, and the chart's init container checks the archive's sha256 either way.
IN_CLUSTER_HTTP_RE = re.compile(
    r"^http://[a-z0-9]([-a-z0-9]*[a-z0-9])?\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\.svc(\.cluster\.local)?(:[0-9]+)?/"
)
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
WORD_RE = re.compile(r"^[A-Za-z][a-z0-9-]*$")
PLAIN_KEYS = frozenset({"type", "pullPolicy"})  # written unquoted; every other string is double-quoted


class PromotionError(Exception):
    """A refusal with a message for the person at the terminal (exit status 1)."""


# ---------------------------------------------------------------------------------------------------
# Environments and model files


@dataclass(frozen=True)
class Environment:
    name: str
    path: Path
    source: str | None  # promotion.from
    namespace: str
    automated: bool

    def model_file(self, model: str) -> Path:
        return self.path / "models" / f"{model}.yaml"

    def models(self) -> list[str]:
        return sorted(p.stem for p in (self.path / "models").glob("*.yaml"))


def load_environments(root: Path) -> dict[str, Environment]:
    envs: dict[str, Environment] = {}
    for env_file in sorted((root / "environments").glob(f"*/{ENV_FILE}")):
        data = yaml.safe_load(env_file.read_text()) or {}
        name = env_file.parent.name
        try:
            envs[name] = Environment(
                name=name,
                path=env_file.parent,
                source=(data.get("promotion") or {}).get("from"),
                namespace=data["destination"]["namespace"],
                automated=bool(data["sync"]["automated"]),
            )
        except (KeyError, TypeError) as exc:
            raise PromotionError(f"{env_file}: missing {exc} (see environments/README.md)") from None
    for env in envs.values():
        if env.source is not None and env.source not in envs:
            raise PromotionError(
                f"{env.name}/{ENV_FILE}: promotion.from names unknown environment "
                f"{env.source!r} (known: {', '.join(envs)})"
            )
    for env in envs.values():  # a cycle would make "passed through staging first" meaningless
        seen, cur = {env.name}, env.source
        while cur is not None:
            if cur in seen:
                raise PromotionError(f"promotion.from forms a cycle through {env.name!r}")
            seen.add(cur)
            cur = envs[cur].source
    if not envs:
        raise PromotionError(f"no environments under {root / 'environments'} (no */{ENV_FILE})")
    return envs


def promotion_order(envs: dict[str, Environment]) -> list[str]:
    """Environments sorted so that each comes after the one it is promoted from."""
    depth = {}
    for name in envs:
        d, cur = 0, envs[name].source
        while cur is not None:
            d, cur = d + 1, envs[cur].source
        depth[name] = d
    return sorted(envs, key=lambda n: (depth[n], n))


def get_env(envs: dict[str, Environment], name: str) -> Environment:
    if name not in envs:
        raise PromotionError(f"unknown environment {name!r} (known: {', '.join(promotion_order(envs))})")
    return envs[name]


def require_model(env: Environment, model: str) -> Path:
    path = env.model_file(model)
    if not path.is_file():
        known = ", ".join(env.models()) or "none"
        raise PromotionError(f"unknown model {model!r} in {env.name} (known: {known})")
    return path


# ---------------------------------------------------------------------------------------------------
# Releases


def dig(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = values
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def release_of(values: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    """The release fields of a values file; unset fields are absent (not None)."""
    out = {}
    for path in RELEASE_FIELDS:
        value = dig(values, path)
        if value not in (None, ""):
            out[path] = value
    return out


def describe(release: dict[tuple[str, ...], Any]) -> str:
    version = release.get(("model", "version"), "?")
    source = release.get(("model", "source")) or {"type": "image"}
    kind = source.get("type", "image")
    if kind == "url":
        where = f"url {dig(source, ('url', 'uri'))} sha256 {str(dig(source, ('url', 'sha256')))[:12]}..."
    elif kind == "oci":
        where = f"oci {dig(source, ('oci', 'reference'))}"
    elif kind == "pvc":
        where = f"pvc {dig(source, ('pvc', 'claimName'))}"
    else:
        where = "baked into the image"
    image = release.get(("image", "tag"), "chart default")
    if ("image", "digest") in release:
        image += f"@{str(release[('image', 'digest')])[:19]}..."
    return f"{version} ({where}; image {image})"


def fingerprint(release: dict[tuple[str, ...], Any]) -> str:
    return json.dumps({".".join(k): v for k, v in release.items()}, sort_keys=True)


def load_values(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PromotionError(f"{where}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PromotionError(f"{where}: expected a mapping of chart values")
    return data


# ---------------------------------------------------------------------------------------------------
# Git history: what an environment has ever run


@dataclass
class History:
    releases: list[dict[tuple[str, ...], Any]]  # newest first, the working tree first of all
    commits: int
    note: str  # why the history may be short (shallow clone, no git), or ""


def git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def history(root: Path, path: Path) -> History:
    """Every release the file has held: now, and at each commit reachable from HEAD that touched it."""
    releases = []
    if path.is_file():
        releases.append(release_of(load_values(path.read_text(), str(path))))
    rel = path.relative_to(root).as_posix()
    log = git(root, "log", "--format=%H", "--", rel)
    if log.returncode != 0:
        return History(releases, 0, f"no git history available ({log.stderr.strip() or 'git failed'})")
    commits = log.stdout.split()
    for sha in commits:
        shown = git(root, "show", f"{sha}:{rel}")
        if shown.returncode != 0:  # the commit deleted the file
            continue
        try:
            releases.append(release_of(load_values(shown.stdout, f"{rel}@{sha[:8]}")))
        except PromotionError:
            continue  # a broken historical file never counts as a deployment
    note = ""
    if git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        note = "this clone is shallow, so older commits are missing (fetch with --unshallow)"
    return History(releases, len(commits), note)


# ---------------------------------------------------------------------------------------------------
# Round-trip YAML edits: ruamel.yaml keeps every comment, blank line, key order and quote style of the
# hand-written files, so a promotion's diff is the release lines and nothing else.


def _round_trip() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    # The layout of the files in environments/ (2-space maps, "- " items indented under their key);
    # a width no line reaches, so long URLs and digests are never folded.
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    return rt


def _styled(key: str, value: Any) -> Any:
    """A release value as the hand-written files spell it: enum words plain, every other string
    double-quoted (a version like 1.10 or a tag like 0123 must never turn into a number)."""
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _styled(str(k), v)
        return out
    if isinstance(value, str) and not (key in PLAIN_KEYS and WORD_RE.match(value)):
        return DoubleQuotedScalarString(value)
    return value


def _last_key(node: CommentedMap) -> Any:
    return next(reversed(node)) if node else None


def _deepest_last(node: CommentedMap, key: Any) -> tuple[CommentedMap, Any]:
    """ruamel.yaml hangs the blank lines and comments that follow an entry on the deepest last entry
    of its value: the place to take them from, or give them to."""
    while isinstance(node[key], CommentedMap) and node[key]:
        node, key = node[key], _last_key(node[key])
    return node, key


def _take_trailing(node: CommentedMap, key: Any) -> CommentToken | None:
    """Detach the block of blank lines and comments after entry `key`. A comment at the end of the
    entry's own line belongs to the entry and stays (ruamel.yaml keeps both in one token)."""
    node, key = _deepest_last(node, key)
    slots = node.ca.items.get(key)
    token = slots[2] if slots and len(slots) > 2 else None
    if not isinstance(token, CommentToken):
        return None
    eol, newline, block = token.value.partition("\n")
    if not block:
        return None
    if eol:
        token.value = eol + newline
    else:
        slots[2] = None
    return CommentToken("\n" + block, token.start_mark)


def _give_trailing(node: CommentedMap, key: Any, token: CommentToken) -> None:
    node, key = _deepest_last(node, key)
    slots = node.ca.items.setdefault(key, [None, None, None, None])
    if isinstance(slots[2], CommentToken):
        slots[2].value += token.value[1:]  # after that entry's own end-of-line comment
    else:
        slots[2] = token


def _set(doc: CommentedMap, path: tuple[str, ...], value: Any) -> None:
    node = doc
    for depth, key in enumerate(path[:-1]):
        child = node.get(key)
        if not isinstance(child, CommentedMap):
            rest: Any = _styled(path[-1], value)
            for inner in reversed(path[depth + 1 :]):
                rest = CommentedMap([(inner, rest)])
            _put(node, key, rest)
            return
        node = child
    _put(node, path[-1], _styled(path[-1], value))


def _put(node: CommentedMap, key: str, value: Any) -> None:
    if key in node:
        trailing = _take_trailing(node, key)
        node[key] = value
    else:  # appended: what followed the old last entry now follows this one
        trailing = _take_trailing(node, _last_key(node)) if node else None
        node[key] = value
    if trailing is not None:
        _give_trailing(node, key, trailing)


def _remove(doc: CommentedMap, path: tuple[str, ...]) -> None:
    """Remove the entry at `path`, and each parent it leaves empty. What followed a removed entry
    moves to the entry before it (in the parent's map when none is left in its own)."""
    parents = [doc]
    for key in path[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, CommentedMap):
            return
        parents.append(child)
    carried: CommentToken | None = None
    for depth, (node, key) in enumerate(zip(reversed(parents), reversed(path), strict=True)):
        if key not in node or (depth and node[key]):
            break  # a parent that still holds other fields stays
        keys = list(node)
        before = keys[keys.index(key) - 1] if keys.index(key) else None
        carried = _take_trailing(node, key) or carried
        del node[key]
        node.ca.items.pop(key, None)
        if before is not None and carried is not None:
            _give_trailing(node, before, carried)
            carried = None


def apply_release(text: str, release: dict[tuple[str, ...], Any], where: str) -> str:
    """The file text with the release fields set to `release` (absent fields removed)."""
    before = load_values(text, where)
    rt = _round_trip()
    try:
        doc = rt.load(text)
    except YAMLError as exc:  # stricter than PyYAML in places (a duplicate key, for one)
        raise PromotionError(f"{where}: cannot be edited in place: {exc}") from None
    if doc is None:
        doc = CommentedMap()
    for path in RELEASE_FIELDS:
        if dig(before, path) != release.get(path):
            if path in release:
                _set(doc, path, release[path])
            else:
                _remove(doc, path)
    out = io.StringIO()
    rt.dump(doc, out)
    new = out.getvalue()
    # Re-read and compare: the edit must change the release and nothing else.
    after = load_values(new, where)
    expected = json.loads(json.dumps(before))
    for path in RELEASE_FIELDS:
        parent = expected
        for key in path[:-1]:
            parent = parent.setdefault(key, {})
        if path in release:
            parent[path[-1]] = release[path]
        else:
            parent.pop(path[-1], None)
            if not parent and len(path) == 2:  # removing the last field removes its parent too
                expected.pop(path[0], None)
    if after != expected:
        raise PromotionError(
            f"{where}: internal error, the edit would change more than the release "
            "fields; nothing was written"
        )
    return new


# ---------------------------------------------------------------------------------------------------
# Validation: render the result exactly as Argo CD would


def find_helm(explicit: str | None, root: Path) -> str:
    for candidate in (explicit, os.environ.get("HELM"), str(root / ".tools" / "bin" / "helm")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("helm")
    if found:
        return found
    raise PromotionError("helm not found: run `make tools` (or pass --helm PATH)")


def oldest_kubernetes(chart: Path) -> str:
    """The lower bound of the chart's kubeVersion: rendering for it is the strictest check."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    low = re.search(r">=\s*v?([0-9]+\.[0-9]+(?:\.[0-9]+)?)", str(meta.get("kubeVersion", "")))
    if not low:
        raise PromotionError(f"{chart}/Chart.yaml has no kubeVersion lower bound: pass --kube-version")
    return low.group(1)


def render(
    root: Path, env: Environment, model: str, text: str, helm: str, chart: Path, kube_version: str | None
) -> None:
    if not (chart / "Chart.yaml").is_file():
        raise PromotionError(f"chart not found at {chart}")
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / f"{model}.yaml"
        candidate.write_text(text)
        files = [root / "environments" / COMMON_VALUES, env.path / "values.yaml", candidate]
        # Argo CD passes the cluster's version; helm's own default (1.20) is older than any chart needs.
        cmd = [
            helm,
            "template",
            model,
            str(chart),
            "--namespace",
            env.namespace,
            "--kube-version",
            kube_version or oldest_kubernetes(chart),
        ]
        for f in files:
            if f.is_file():
                cmd += ["--values", str(f)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PromotionError(
            f"{env.name}/{model}: the chart rejects the result, nothing was written:\n{done.stderr.strip()}"
        )


def write(root: Path, env: Environment, model: str, text: str, args: argparse.Namespace) -> None:
    if not args.no_render:
        chart = Path(args.chart) if args.chart else root / "charts" / "model-server"
        render(root, env, model, text, find_helm(args.helm, root), chart, args.kube_version)
    env.model_file(model).parent.mkdir(parents=True, exist_ok=True)
    env.model_file(model).write_text(text)


def new_model_file(env: Environment, model: str) -> str:
    return (
        f"# {model} in {env.name}: the Argo CD Application {env.name}-{model}. The release fields "
        "below\n# (model.version, model.source, image) are written by environments/promote.py; "
        f"edit the rest by hand.\nmodel:\n  name: {model}\n"
    )


# ---------------------------------------------------------------------------------------------------
# Commands


def cmd_promote(root: Path, args: argparse.Namespace) -> int:
    envs = load_environments(root)
    src, dst = get_env(envs, args.from_env), get_env(envs, args.to_env)
    if dst.source is None:
        raise PromotionError(
            f"{dst.name} is not promoted into: its releases come from `set-model` / "
            "`set-image` (see environments/README.md)"
        )
    if dst.source != src.name:
        raise PromotionError(f"{dst.name} is promoted from {dst.source}, not {src.name}")
    src_file = require_model(src, args.model)
    current = release_of(load_values(src_file.read_text(), str(src_file)))
    if args.version is None or current.get(("model", "version")) == args.version:
        release = current
    else:
        past = history(root, src_file)
        matches = [r for r in past.releases if r.get(("model", "version")) == args.version]
        if not matches:
            hint = f"; {past.note}" if past.note else ""
            raise PromotionError(
                f"version {args.version} of {args.model} was never in {src.name} "
                f"(checked the working tree and {past.commits} commits of "
                f"{src_file.relative_to(root)}{hint})"
            )
        release = matches[0]  # the newest release of that version
    if ("model", "version") not in release:
        raise PromotionError(f"{src_file.relative_to(root)} has no model.version to promote")
    dst_file = dst.model_file(args.model)
    created = not dst_file.is_file()
    text = new_model_file(dst, args.model) if created else dst_file.read_text()
    before = release_of(load_values(text, str(dst_file)))
    if before == release:
        print(f"{dst.name}/{args.model} already runs {describe(release)}: nothing to do")
        return 0
    new = apply_release(text, release, str(dst_file))
    write(root, dst, args.model, new, args)
    what = "created with" if created else f"{describe(before)} ->"
    print(f"{dst.name}/{args.model}: {what} {describe(release)}")
    if not dst.automated:
        print(f"{dst.name} syncs manually: after the merge run `argocd app sync {dst.name}-{args.model}`")
    if strategy(root, dst, args.model) == "canary":
        rollout = f"{args.model}-model-server -n {dst.namespace}"
        print(
            f"{dst.name} releases by canary: the new version takes traffic in steps, each judged by its "
            f"analysis (docs/operations/canary.md).\n"
            f"  watch:   kubectl argo rollouts get rollout {rollout} --watch\n"
            f"  abort:   kubectl argo rollouts abort {rollout}\n"
            f"  promote: kubectl argo rollouts promote {rollout}"
        )
    return 0


def strategy(root: Path, env: Environment, model: str) -> str:
    """The model's rollout.strategy in ``env``, as Helm merges its value files (the last one that sets
    it wins; the chart's default is rolling)."""
    found = "rolling"
    for path in (root / "environments" / "common.yaml", env.path / "values.yaml", env.model_file(model)):
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            found = ((data.get("rollout") or {}).get("strategy")) or found
    return found


def entry_env(envs: dict[str, Environment], name: str, what: str) -> Environment:
    env = get_env(envs, name)
    if env.source is not None:
        raise PromotionError(
            f"{env.name} takes {what} only by promotion from {env.source}: "
            f"use `promote --from {env.source} --to {env.name}`"
        )
    return env


def cmd_set_model(root: Path, args: argparse.Namespace) -> int:
    envs = load_environments(root)
    env = entry_env(envs, args.env, "new model versions")
    if not NAME_RE.match(args.model) or len(args.model) > 53:
        raise PromotionError(
            f"model name {args.model!r} must be lower-case letters, digits and '-' "
            "(a DNS label of at most 53 characters: it names Kubernetes objects)"
        )
    if not VERSION_RE.match(args.version):
        raise PromotionError(f"version {args.version!r} is not a semantic version like 1.3.0")
    if args.url is not None:
        if not (args.url.startswith("https://") or IN_CLUSTER_HTTP_RE.match(args.url)):
            raise PromotionError(
                f"--url {args.url!r} must be an https:// address "
                "(or http:// to a Service of the cluster: <service>.<namespace>.svc[.cluster.local])"
            )
        if args.sha256 is None or not SHA256_RE.match(args.sha256):
            raise PromotionError("--url needs --sha256 with the archive's 64 lower-case hex digits")
        source: dict[str, Any] = {"type": "url", "url": {"uri": args.url, "sha256": args.sha256}}
    elif args.oci is not None:
        if "@sha256:" not in args.oci:
            raise PromotionError(f"--oci {args.oci!r} must be pinned by digest (name@sha256:...)")
        source = {"type": "oci", "oci": {"reference": args.oci}}
    else:
        source = {"type": "image"}
    path = env.model_file(args.model)
    created = not path.is_file()
    text = new_model_file(env, args.model) if created else path.read_text()
    current = release_of(load_values(text, str(path)))
    image_of = current
    neighbours = env.models()
    if created and neighbours:  # a new model runs the image its neighbours in this environment run
        neighbour = env.model_file(neighbours[0])
        image_of = release_of(load_values(neighbour.read_text(), str(neighbour)))
    release = {k: v for k, v in image_of.items() if k[0] == "image"}
    release[("model", "version")] = args.version
    release[("model", "source")] = source
    if release == current:
        print(f"{env.name}/{args.model} already runs {describe(release)}: nothing to do")
        return 0
    write(root, env, args.model, apply_release(text, release, str(path)), args)
    what = "created with" if created else f"{describe(current)} ->"
    print(f"{env.name}/{args.model}: {what} {describe(release)}")
    return 0


def cmd_set_image(root: Path, args: argparse.Namespace) -> int:
    envs = load_environments(root)
    env = entry_env(envs, args.env, "new images")
    if not TAG_RE.match(args.tag):
        raise PromotionError(f"--tag {args.tag!r} is not a valid image tag")
    if args.digest is not None and not DIGEST_RE.match(args.digest):
        raise PromotionError(f"--digest {args.digest!r} must look like sha256:<64 hex digits>")
    models = [args.model] if args.model else env.models()
    if not models:
        raise PromotionError(f"{env.name} has no models")
    for model in models:
        path = require_model(env, model)
        text = path.read_text()
        current = release_of(load_values(text, str(path)))
        release = {k: v for k, v in current.items() if k[0] != "image"}
        release[("image", "tag")] = args.tag
        if args.digest:
            release[("image", "digest")] = args.digest
        if release == current:
            print(f"{env.name}/{model} already runs image {args.tag}: nothing to do")
            continue
        write(root, env, model, apply_release(text, release, str(path)), args)
        print(f"{env.name}/{model}: image {current.get(('image', 'tag'), 'chart default')} -> {args.tag}")
    return 0


def problems(root: Path) -> Iterator[str]:
    envs = load_environments(root)
    for name in promotion_order(envs):
        env = envs[name]
        if env.source is None:
            continue
        src = envs[env.source]
        for model in env.models():
            path = env.model_file(model)
            release = release_of(load_values(path.read_text(), str(path)))
            past = history(root, src.model_file(model))
            if fingerprint(release) in {fingerprint(r) for r in past.releases}:
                continue
            hint = f"; {past.note}" if past.note else ""
            yield (
                f"{env.name}/{model} runs {describe(release)}, which was never deployed to {src.name} "
                f"(checked the working tree and {past.commits} commits of "
                f"{src.model_file(model).relative_to(root)}{hint})"
            )


def cmd_check(root: Path, args: argparse.Namespace) -> int:
    found = list(problems(root))
    for line in found:
        print(f"promote check: {line}", file=sys.stderr)
    if found:
        return 1
    envs = load_environments(root)
    print(
        f"promote check: every release in {', '.join(promotion_order(envs))} passed through its source "
        "environment first"
    )
    return 0


def cmd_status(root: Path, args: argparse.Namespace) -> int:
    envs = load_environments(root)
    rows = [("ENVIRONMENT", "MODEL", "VERSION", "SOURCE", "IMAGE", "SYNC")]
    for name in promotion_order(envs):
        env = envs[name]
        for model in env.models():
            path = env.model_file(model)
            rel = release_of(load_values(path.read_text(), str(path)))
            source = (rel.get(("model", "source")) or {}).get("type", "image")
            rows.append(
                (
                    name,
                    model,
                    str(rel.get(("model", "version"), "?")),
                    source,
                    str(rel.get(("image", "tag"), "chart default")),
                    "automated" if env.automated else "manual",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="promote", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    sub = p.add_subparsers(dest="command", required=True)

    def editing(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--helm", help="helm binary for the render check (default: .tools/bin/helm)")
        sp.add_argument("--chart", help="chart to render with (default: charts/model-server)")
        sp.add_argument(
            "--kube-version",
            help="Kubernetes version to render for (default: the oldest "
            "the chart supports; an `oci` source needs 1.31)",
        )
        sp.add_argument("--no-render", action="store_true", help="skip the helm template check")

    sp = sub.add_parser("promote", help="copy a model's release to the next environment")
    sp.add_argument("--model", required=True)
    sp.add_argument("--from", dest="from_env", required=True)
    sp.add_argument("--to", dest="to_env", required=True)
    sp.add_argument("--version", help="an earlier version from the source environment's history")
    editing(sp)
    sp.set_defaults(func=cmd_promote)

    sp = sub.add_parser("set-model", help="set a model's version and bundle in an entry environment")
    sp.add_argument("--env", required=True)
    sp.add_argument("--model", required=True)
    sp.add_argument("--version", required=True)
    where = sp.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="https address of the bundle archive (.tar.gz)")
    where.add_argument("--oci", help="OCI reference of the bundle, pinned by digest")
    where.add_argument("--image", action="store_true", help="the bundle baked into the server image")
    sp.add_argument("--sha256", help="sha256 of the archive behind --url")
    editing(sp)
    sp.set_defaults(func=cmd_set_model)

    sp = sub.add_parser("set-image", help="set the server image of an entry environment's models")
    sp.add_argument("--env", required=True)
    sp.add_argument("--tag", required=True)
    sp.add_argument("--digest")
    sp.add_argument("--model", help="only this model (default: every model of the environment)")
    editing(sp)
    sp.set_defaults(func=cmd_set_image)

    sp = sub.add_parser("check", help="fail when a release skipped its source environment")
    sp.set_defaults(func=cmd_check)
    sp = sub.add_parser("status", help="print every environment's releases")
    sp.set_defaults(func=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args.root.resolve(), args))
    except PromotionError as exc:
        print(f"promote: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
