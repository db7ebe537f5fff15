#!/usr/bin/env bash
# Prepare, on this machine, what bench/gpu_check.sh needs on the GPU machine, where nothing can be fetched:
#   .whl/      wheels of the packages the GPU image lacks (its python3 is 3.12 with torch, torchvision, numpy,
#              pillow, matplotlib, pandas, scipy, scikit-image, scikit-learn, opencv, jinja2, pyyaml, tqdm);
#   .gpu/data  the data mirror's small part: MANIFEST.tsv lines and files of the ten task images, the concept
#              sets and the Places365 categories (a few MB; the Broden-sized probe is made there, see make_probe.py).
# Neither is committed: add them to .git/info/exclude (printed below) and name them in the device call's carry.
#   bench/gpu_prepare.sh            (XAI_MIRROR or ../shared/data beside the checkout; PYTHON: the venv's python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
MIRROR=${XAI_MIRROR:-../shared/data}
[ -f "$MIRROR/MANIFEST.tsv" ] || { echo "no MANIFEST.tsv in $MIRROR: set XAI_MIRROR" >&2; exit 2; }

mkdir -p .whl .gpu/data
# The versions this project's lock installs (pyproject.toml), for CPython 3.12 on x86-64 Linux.
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  ttach==0.0.3 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 timm==1.0.31 \
  huggingface_hub==2.4.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  typing_extensions==4.16.0 pooch==1.9.0 platformdirs==4.14.9
# grad-cam 1.5.7 and lime 0.2.0.1 are published as source archives only: their pure-Python wheels are built here.
"$PYTHON" -m pip wheel -q --no-deps -w .whl grad-cam==1.5.7 lime==0.2.0.1

# The mirror's part the GPU run reads (the probe is synthetic there).
"$PYTHON" - "$MIRROR" <<'PY'
import shutil, sys
from pathlib import Path
mirror, out = Path(sys.argv[1]), Path(".gpu/data")
from xai.data import TASK_IMAGES
wanted = {f"imagenet-sample-images/{name}.JPEG" for name in TASK_IMAGES}
lines = (mirror / "MANIFEST.tsv").read_text().splitlines()
kept = [lines[0]]
for line in lines[1:]:
    path = line.split("\t")[0]
    if path in wanted or not path.startswith("imagenet-sample-images/"):
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror / path, out / path)
        kept.append(line)
(out / "MANIFEST.tsv").write_text("\n".join(kept) + "\n")
print(f"{len(kept) - 1} mirror files in {out}")
PY
du -sh .whl .gpu | sed 's/^/size: /'
cat <<'TXT'
Once per checkout (keeps both out of git):   printf '/.whl/\n/.gpu/\n' >> .git/info/exclude
Then the device call (timeouts fit one 10-minute call each; see bench/gpu_check.sh):
  run(command="bash bench/gpu_check.sh tests assignment", carry=[".whl", ".gpu"], timeout_s=600)
  run(command="bash bench/gpu_check.sh reference decode overlap render", carry=[".whl", ".gpu"], timeout_s=600)
  run(command="bash bench/gpu_check.sh memory", carry=[".whl", ".gpu"], timeout_s=600)   # if time is left
TXT
