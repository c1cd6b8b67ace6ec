#!/usr/bin/python3
"""Renders chat templates and jinja feature templates with Python jinja2, set up as Hugging Face
transformers sets it up, and writes the results as goldens for the C++ interpreter's tests.

Setup (as transformers.utils.chat_template_utils._compile_jinja_template):
  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[AssistantTracker-like {% generation %}, loopcontrols])
  filters["tojson"] = json.dumps(x, ensure_ascii=False, indent, separators, sort_keys)
  globals raise_exception(msg) -> TemplateError(msg), strftime_now(fmt) -> now.strftime(fmt)
strftime_now uses a fixed date (FIXED_DATE below) so the goldens are reproducible; the C++ tests
pass the same date.

Inputs:
  ../shared/templates/*.jinja (HEARTH_SHARED overrides ../shared) and the chat_template field of
  ../shared/tokenizers/minicpm3/tokenizer_config.json, each over tests/data/conversations/*.json
  ({"messages": [...], "tools": [...] optional, "extra": {...} optional}) with
  add_generation_prompt false and true; bos "<s>", eos "</s>". Tools are left undefined when a
  conversation has none.
  tests/data/jinja_features/*.jinja, each rendered with tests/data/jinja_features/context.json.

Outputs (tests/golden/templates/):
  <template stem>.json: {"template": "<path relative to the shared folder>",
    "cases": [{"conversation": name, "add_generation_prompt": bool,
               "output": str | absent, "error": "ExceptionType: message" | absent}]}
  features.json: {"context": "jinja_features/context.json",
    "cases": [{"template": "jinja_features/<name>.jinja", "output" | "error"}]}
"""
import datetime
import glob
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_DATE = datetime.datetime(2025, 1, 15, 10, 30, 0)  # C++ side: "2025-01-15 10:30:00"
BOS = "<s>"
EOS = "</s>"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
SHARED = os.environ.get("HEARTH_SHARED") or os.path.normpath(os.path.join(REPO, "..", "shared"))
CONV_DIR = os.path.join(REPO, "tests", "data", "conversations")
FEAT_DIR = os.path.join(REPO, "tests", "data", "jinja_features")
OUT_DIR = os.path.join(REPO, "tests", "golden", "templates")


class GenerationTracker(Extension):
    """{% generation %}...{% endgeneration %}: renders the body as is (through a call block, like
    transformers' AssistantTracker, which only records the character offsets)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_DATE.strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render_case(env, source, context):
    try:
        return {"output": env.from_string(source).render(**context)}
    except Exception as e:  # noqa: BLE001 - every failure is recorded as the expected outcome
        return {"error": f"{type(e).__name__}: {e}"}


def load_conversations():
    convs = []
    for path in sorted(glob.glob(os.path.join(CONV_DIR, "*.json"))):
        with open(path, encoding="utf-8") as f:
            convs.append((os.path.splitext(os.path.basename(path))[0], json.load(f)))
    return convs


def chat_context(conv, agp):
    ctx = {"messages": conv["messages"], "add_generation_prompt": agp, "bos_token": BOS, "eos_token": EOS}
    if "tools" in conv:
        ctx["tools"] = conv["tools"]
    ctx.update(conv.get("extra", {}))
    return ctx


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    env = make_env()
    convs = load_conversations()

    templates = []
    for path in sorted(glob.glob(os.path.join(SHARED, "templates", "*.jinja"))):
        with open(path, encoding="utf-8") as f:
            templates.append((os.path.splitext(os.path.basename(path))[0], os.path.relpath(path, SHARED), f.read()))
    cfg = os.path.join(SHARED, "tokenizers", "minicpm3", "tokenizer_config.json")
    with open(cfg, encoding="utf-8") as f:
        templates.append(("minicpm3-tokenizer_config", os.path.relpath(cfg, SHARED), json.load(f)["chat_template"]))

    n_cases = n_err = 0
    for stem, rel, source in templates:
        cases = []
        for name, conv in convs:
            for agp in (False, True):
                case = {"conversation": name, "add_generation_prompt": agp}
                case.update(render_case(env, source, chat_context(conv, agp)))
                cases.append(case)
                n_cases += 1
                n_err += "error" in case
        write_json(os.path.join(OUT_DIR, stem + ".json"), {"template": rel, "cases": cases})

    with open(os.path.join(FEAT_DIR, "context.json"), encoding="utf-8") as f:
        feat_ctx = json.load(f)
    feat_cases = []
    for path in sorted(glob.glob(os.path.join(FEAT_DIR, "*.jinja"))):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        case = {"template": os.path.relpath(path, os.path.join(REPO, "tests", "data"))}
        case.update(render_case(env, source, feat_ctx))
        feat_cases.append(case)
    write_json(os.path.join(OUT_DIR, "features.json"), {"context": "jinja_features/context.json", "cases": feat_cases})

    print(f"gen_templates: jinja2 {jinja2.__version__}: {len(templates)} templates x {len(convs)} conversations x 2 "
          f"= {n_cases} cases ({n_err} errors), {len(feat_cases)} feature templates", file=sys.stderr)


if __name__ == "__main__":
    main()
