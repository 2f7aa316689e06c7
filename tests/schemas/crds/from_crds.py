"""Write kubeconform's JSON schemas for the custom resources a module's CRD manifests define.

    python tests/schemas/crds/from_crds.py OUT_DIR CRD.yaml[@VERSION]...   (make crd-schemas)

One file per served version (only VERSION when given: the one the chart renders),
``OUT_DIR/{group}/{kind}_{version}.json`` (lower-case kind), holding that version's ``openAPIV3Schema``
as it is: what the API server itself validates against. Used for the resources whose CRDs ship in a Go
module this project pins (Argo Rollouts, the Gateway API), so the schemas come from the same version the
cluster runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def schemas(crd: dict, only: str | None = None) -> dict[str, dict]:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"].lower()
    return {
        f"{group}/{kind}_{v['name']}.json": v["schema"]["openAPIV3Schema"]
        for v in crd["spec"]["versions"]
        if v.get("served", True) and only in (None, v["name"])
    }


def main(argv: list[str]) -> int:
    out, *files = argv
    for arg in files:
        f, only = arg, None
        if "@" in arg and "/" not in arg.rsplit("@", 1)[1]:  # module paths have an @ too
            f, only = arg.rsplit("@", 1)
        for doc in yaml.safe_load_all(Path(f).read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            for name, schema in schemas(doc, only).items():
                path = Path(out) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
