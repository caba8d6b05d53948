"""Check params.yaml before any stage runs, and write its JSON schema.

Every other stage depends on --schema, so `dvc repro` runs this stage first whenever a param
changed. A bad value (an unknown key, a wrong type, a value out of range, a rule across
fields) stops the pipeline here with one line naming the key, before DVC has deleted the
outputs of any stage that reads the key.

The schema (JSON Schema of every section and key, from the validation models of
src/mnistgan/pipeline/params.py) depends on the code only, not on the values, so a valid
change of a param leaves it byte-identical and reruns only the stages that read that param.
An editor with a YAML language server can use it to check params.yaml as you type.

A valid file can still be slow on this machine: bfloat16 on a CPU without native bfloat16
gets one warning line here, at the start of the run, not seconds per step later.
"""

import json
import sys

import src_path  # noqa: F401  (first: puts this checkout's src/ first on sys.path)

from mnistgan.files import atomic_path
from mnistgan.pipeline import bf16, params as params_mod
from mnistgan.pipeline.stage import run_stage


def main(args, params):
    # run_stage has validated the whole file before calling main: reaching here means it is valid
    with atomic_path(args.schema) as tmp:
        tmp.write_text(json.dumps(params_mod.json_schema(), indent=1, sort_keys=True) + "\n")
    print(f"check_params: {args.params} is valid; schema in {args.schema}")
    if note := bf16.warning(params):
        print(f"check_params: {note}", file=sys.stderr)


def configure(parser):
    parser.add_argument("--schema", default="build/params.schema.json", help="JSON schema of params.yaml")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
