# Run on a node by the monitoring step (its Python, standard library only). Reads on stdin, in
# base64, a JSON object {"dirs": [path, ...], "files": {path: {"content": text, "mode": "0644"}}};
# makes the folders, writes each file that differs from what is there (atomically, with its
# mode), and prints the list of the files it wrote. One round trip for all of them, where a copy
# task per file costs several; base64, because Ansible would expand the "{{ ... }}" of the
# alert rules' and the dashboards' own templates.
import base64
import json
import os
import sys
import tempfile

wanted = json.loads(base64.b64decode(sys.stdin.read()))
for folder in wanted["dirs"]:
    os.makedirs(folder, mode=0o755, exist_ok=True)
changed = []
for path, spec in wanted["files"].items():
    data = spec["content"].encode()
    mode = int(spec["mode"], 8)
    try:
        with open(path, "rb") as current:
            same = current.read() == data and os.stat(path).st_mode & 0o777 == mode
    except FileNotFoundError:
        same = False
    if same:
        continue
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ctool-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    changed.append(path)
print(json.dumps(changed))
