#!/usr/bin/env python3
"""Makes the text front end's goldens (tests/goldens/text/) with Hugging Face's
Python `tokenizers` and `transformers` as the reference.

    /work/refvenv/bin/python tests/reference/make_text_goldens.py \
        [--instruct-template PATH] [--q3vl build/q3vl]

Inputs: the real Qwen3 tokenizer (third_party/qwen3-tokenizer, fetched by
scripts/setup.sh), the seed corpus text_corpus.json, the conversations in
text_conversations.py, q3vl's own test templates in tests/goldens/text/*.jinja,
and the official Qwen3-VL Instruct template (not committed; its sha256 is
checked and recorded). Deterministic: the same inputs give the same bytes.

Outputs (tests/goldens/text/):
  tokenizer_parity.jsonl  one string per line: ids (special tokens parsed),
                          ids with special tokens as text where they differ,
                          HF decode where it is not the input (NFC), and for
                          invalid UTF-8 the offset Python rejects it at plus the
                          ids of its errors="replace" decoding
  decode_stream.jsonl     id sequences with tokenizers' DecodeStream output per
                          step and the full decode
  chat_goldens.json       conversations, tool sets, and HF apply_chat_template
                          renderings (+ ids) per template and options; error cases
With --q3vl, also renders every Instruct case with `q3vl template` from the
official template file and fails unless all are byte-identical (the C++ tests
cannot do this: the official template is not committed).
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tokenizers
import transformers
from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream
from transformers import AutoTokenizer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import text_conversations as convs  # noqa: E402

INSTRUCT_SHA256 = "3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4"
N_VALID = 10500
N_INVALID = 400
SEED = 20261123


# ---------------------------------------------------------------- tokenizer
def make_strings(corpus, rng):
    groups = sorted(k for k in corpus if not k.startswith("_"))
    seen, out = set(), []

    def add(s):
        if s not in seen:
            seen.add(s)
            out.append(s)

    for g in groups:
        for frag in corpus[g]:
            add(frag)
    seps = ["", " ", " ", "\n", "  ", "\t", "\n\n", ", ", " \n"]
    while len(out) < N_VALID:
        pieces = []
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
            frag = rng.choice(corpus[rng.choice(groups)])
            if rng.random() < 0.5 and len(frag) > 2:
                # Code-point slices: split ZWJ sequences, leading combining marks, cut words.
                a = rng.randrange(len(frag))
                b = rng.randrange(a, len(frag)) + 1
                frag = frag[a:b]
            pieces.append(frag)
        add(rng.choice(seps).join(pieces))
    return out


def make_invalid(valid, rng):
    bad_bytes = [b"\x80", b"\xbf", b"\xc0", b"\xc1", b"\xf5", b"\xf8", b"\xfe", b"\xff",
                 b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xe4\xb8"]
    out = []
    while len(out) < N_INVALID:
        b = rng.choice(valid).encode("utf-8")
        kind = rng.random()
        if kind < 0.5:
            at = rng.randint(0, len(b))
            b = b[:at] + rng.choice(bad_bytes) + b[at:]
        else:
            # Cut inside a multi-byte character (or append a truncated one).
            cuts = [i for i in range(1, len(b)) if (b[i] & 0xC0) == 0x80]
            if cuts:
                at = rng.choice(cuts)
                b = b[:at] + (b[at:] if rng.random() < 0.5 else b"") if rng.random() < 0.5 else b[:at]
            else:
                b = b + rng.choice([b"\xe4\xb8", b"\xf0\x9f\x98", b"\xc3"])
        try:
            b.decode("utf-8")
        except UnicodeDecodeError:
            out.append(b)
    return out


def tokenizer_goldens(tok, literal, corpus, out_path):
    rng = random.Random(SEED)
    valid = make_strings(corpus, rng)
    invalid = make_invalid(valid, rng)
    n_decode_differs = 0
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        for s in valid:
            ids = tok.encode(s).ids
            row = {"s": s, "ids": ids}
            lit = literal.encode(s).ids
            if lit != ids:
                row["lit"] = lit
            dec = tok.decode(ids, skip_special_tokens=False)
            if dec != s:
                row["dec"] = dec
                n_decode_differs += 1
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        for b in invalid:
            try:
                b.decode("utf-8")
                raise AssertionError("expected invalid UTF-8")
            except UnicodeDecodeError as e:
                bad = e.start
            ids = tok.encode(b.decode("utf-8", errors="replace")).ids
            f.write(json.dumps({"hex": b.hex(), "bad": bad, "ids": ids}, separators=(",", ":")) + "\n")
    return valid, len(invalid), n_decode_differs


def stream_row(tok, ids, skip):
    stream = DecodeStream(skip_special_tokens=skip)
    steps = [stream.step(tok, i) for i in ids]
    return {"ids": ids, "skip": skip, "steps": steps, "full": tok.decode(ids, skip_special_tokens=skip)}


def stream_goldens(tok, valid, out_path):
    rng = random.Random(SEED + 1)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    rows = []
    for s in valid[:300]:
        rows.append(stream_row(tok, tok.encode(s).ids, False))
    with_special = [s for s in valid if "<|" in s][:100]
    for s in with_special:
        rows.append(stream_row(tok, tok.encode(s).ids, True))
    for _ in range(200):
        # Random ids, biased to the single-byte tokens that split UTF-8 characters.
        ids = [rng.randrange(256) if rng.random() < 0.5 else rng.randrange(vocab) for _ in range(rng.randint(1, 40))]
        rows.append(stream_row(tok, ids, rng.random() < 0.3))
    multibyte = [s for s in valid if any(ord(c) > 0x7F for c in s)]
    for s in rng.sample(multibyte, 100):
        ids = tok.encode(s).ids
        rows.append(stream_row(tok, ids[: rng.randint(1, len(ids))], False))
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    return len(rows)


# ---------------------------------------------------------------- chat templates
def q3vl_view(messages):
    """Messages exactly as q3vl presents them to a template (src/text/template_context.cpp):
    used for the engine-feature template, whose output depends on key order."""
    out = []
    for m in convs.hf_messages(messages):
        v = {}
        reasoning = next((m[k] for k in ("reasoning_content", "thinking", "reasoning") if m.get(k) is not None), None)
        if reasoning is not None:
            v["thinking"] = reasoning
        v["role"] = m["role"]
        if m.get("content") is not None:
            v["content"] = m["content"]
        if m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                fn = c.get("function", c)
                call = {}
                if "id" in c:
                    call["id"] = c["id"]
                call["type"] = "function"
                call["function"] = {"name": fn["name"], "arguments": fn["arguments"]}
                calls.append(call)
            v["tool_calls"] = calls
        for k in ("tool_call_id", "name"):
            if m.get(k) is not None:
                v[k] = m[k]
        if reasoning is not None:
            v["reasoning_content"] = reasoning
        out.append(v)
    return out


def render(hf_tok, template, messages, tools, options):
    kwargs = {k: v for k, v in options.items() if k != "add_generation_prompt"}
    return hf_tok.apply_chat_template(messages, tools=tools, chat_template=template, tokenize=False,
                                      add_generation_prompt=options["add_generation_prompt"], **kwargs)


def check_template_precedence(tokenizer_dir):
    """Which file wins, per transformers' loaders (recorded; ChatTemplate::load follows it)."""
    result = {}
    with tempfile.TemporaryDirectory() as d:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(tokenizer_dir / name, d)
        Path(d, "chat_template.json").write_text(json.dumps({"chat_template": "JSON"}))
        Path(d, "chat_template.jinja").write_text("JINJA")
        Path(d, "preprocessor_config.json").write_text(
            json.dumps({"image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen3VLProcessor"}))
        m = [{"role": "user", "content": "x"}]
        result["tokenizer_with_jinja_and_json"] = AutoTokenizer.from_pretrained(d).apply_chat_template(m, tokenize=False)
        from transformers import AutoProcessor
        result["processor_with_jinja_and_json"] = AutoProcessor.from_pretrained(d).apply_chat_template(m, tokenize=False)
        os.remove(Path(d, "chat_template.jinja"))
        os.remove(Path(d, "chat_template.json"))
        result["tokenizer_with_config_only"] = AutoTokenizer.from_pretrained(d).apply_chat_template(m, tokenize=False)[:20]
    assert result["processor_with_jinja_and_json"] == "JSON", result
    assert result["tokenizer_with_jinja_and_json"] == "JINJA", result
    return result


def chat_goldens(tok, hf_tok, tokenizer_dir, instruct_source, out_dir, q3vl):
    thinking = (out_dir / "thinking.chat_template.jinja").read_text(encoding="utf-8")
    features = (out_dir / "features.chat_template.jinja").read_text(encoding="utf-8")
    qwen3 = hf_tok.chat_template  # tokenizer_config.json's (Qwen3 text) template
    conversations = convs.all_conversations()
    cases = []

    def add(index, template_name, template, options, view="hf"):
        name, messages, tools_index = conversations[index]
        tools = convs.TOOL_SETS[tools_index] if tools_index is not None else None
        msgs = q3vl_view(messages) if view == "q3vl" else convs.hf_messages(messages)
        text = render(hf_tok, template, msgs, tools, options)
        cases.append({"conversation": index, "template": template_name, "options": options, "text": text,
                      "ids": tok.encode(text).ids})

    for i, (name, messages, _) in enumerate(conversations):
        has_media = any(isinstance(m.get("content"), list) and any(p.get("type") != "text" for p in m["content"])
                        for m in messages)
        add(i, "instruct", instruct_source, {"add_generation_prompt": True})
        add(i, "instruct", instruct_source, {"add_generation_prompt": False})
        if has_media:
            add(i, "instruct", instruct_source, {"add_generation_prompt": True, "add_vision_id": True})
        add(i, "thinking", thinking, {"add_generation_prompt": True})
        add(i, "thinking", thinking, {"add_generation_prompt": True, "enable_thinking": False})
        if i % 3 == 0:
            add(i, "thinking", thinking, {"add_generation_prompt": False, "add_vision_id": True})
        if all(isinstance(m.get("content"), str) for m in messages):
            add(i, "qwen3", qwen3, {"add_generation_prompt": True})
            add(i, "qwen3", qwen3, {"add_generation_prompt": True, "enable_thinking": False})
        if i % 2 == 0:
            add(i, "features", features, {"add_generation_prompt": i % 4 == 0}, view="q3vl")

    # Errors HF raises, and the template line that raises.
    errors = []
    bad_role = [{"role": "user", "content": "hi"}, {"role": "narrator", "content": "once upon a time"}]
    try:
        render(hf_tok, thinking, bad_role, None, {"add_generation_prompt": True})
        raise AssertionError("expected raise_exception")
    except Exception as e:  # jinja2.exceptions.TemplateError
        line = next(n for n, l in enumerate(thinking.splitlines(), 1) if "raise_exception(" in l)
        errors.append({"template": "thinking", "messages": bad_role, "message": str(e), "line": line})

    if q3vl:
        check_with_q3vl(q3vl, tokenizer_dir, instruct_source, conversations, cases)

    return {
        "about": "HF apply_chat_template(tokenize=False) renderings; made by tests/reference/make_text_goldens.py",
        "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
        "instruct_template_sha256": INSTRUCT_SHA256,
        "template_precedence": check_template_precedence(tokenizer_dir),
        "tool_sets": convs.TOOL_SETS,
        "conversations": [{"name": n, "messages": m, "tools": t} for n, m, t in conversations],
        "cases": cases,
        "errors": errors,
    }


def check_with_q3vl(q3vl, tokenizer_dir, instruct_source, conversations, cases):
    """q3vl template (minijinja) on the official Instruct file == HF, for every Instruct case."""
    with tempfile.TemporaryDirectory() as d:
        model = Path(d, "model")
        model.mkdir()
        shutil.copy(tokenizer_dir / "tokenizer.json", model)
        shutil.copy(tokenizer_dir / "tokenizer_config.json", model)
        (model / "chat_template.jinja").write_text(instruct_source, encoding="utf-8")
        n = 0
        for case in cases:
            if case["template"] != "instruct":
                continue
            name, messages, tools_index = conversations[case["conversation"]]
            req = {"messages": messages}
            if tools_index is not None:
                req["tools"] = convs.TOOL_SETS[tools_index]
            Path(d, "req.json").write_text(json.dumps(req, ensure_ascii=False), encoding="utf-8")
            cmd = [q3vl, "template", "--model", str(model), "--messages", str(Path(d, "req.json"))]
            if not case["options"]["add_generation_prompt"]:
                cmd.append("--no-generation-prompt")
            if case["options"].get("add_vision_id"):
                cmd.append("--add-vision-id")
            got = subprocess.run(cmd, check=True, capture_output=True).stdout.decode("utf-8")
            if got != case["text"]:
                raise SystemExit(f"q3vl template differs from HF on {name} {case['options']}:\n{got!r}\n{case['text']!r}")
            n += 1
        print(f"q3vl template == HF on all {n} Instruct cases (official template file)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer-dir", type=Path, default=ROOT / "third_party" / "qwen3-tokenizer")
    ap.add_argument("--instruct-template", type=Path, default=Path(os.environ.get("Q3VL_OFFICIAL_TEMPLATE", "qwen3-vl-instruct.chat_template.jinja")))
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "goldens" / "text")
    ap.add_argument("--q3vl", help="q3vl executable: also check minijinja on the official template")
    args = ap.parse_args()

    instruct_bytes = args.instruct_template.read_bytes()
    if hashlib.sha256(instruct_bytes).hexdigest() != INSTRUCT_SHA256:
        raise SystemExit(f"{args.instruct_template}: unexpected sha256 (want {INSTRUCT_SHA256})")
    tok = Tokenizer.from_file(str(args.tokenizer_dir / "tokenizer.json"))
    literal = Tokenizer.from_file(str(args.tokenizer_dir / "tokenizer.json"))
    literal.encode_special_tokens = True
    hf_tok = AutoTokenizer.from_pretrained(str(args.tokenizer_dir))
    corpus = json.loads((HERE / "text_corpus.json").read_text(encoding="utf-8"))

    valid, n_invalid, n_nfc = tokenizer_goldens(tok, literal, corpus, args.out / "tokenizer_parity.jsonl")
    # transformers' tokenizer gives the same ids as `tokenizers` (checked on a sample).
    for s in valid[:: max(1, len(valid) // 500)]:
        assert hf_tok(s)["input_ids"] == tok.encode(s).ids, s
    n_stream = stream_goldens(tok, valid, args.out / "decode_stream.jsonl")
    chat = chat_goldens(tok, hf_tok, args.tokenizer_dir, instruct_bytes.decode("utf-8"), args.out, args.q3vl)
    with open(args.out / "chat_goldens.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(chat, f, ensure_ascii=False, indent=0, separators=(",", ":"))
        f.write("\n")
    print(f"tokenizer: {len(valid)} valid strings ({n_nfc} decode to NFC != input), {n_invalid} invalid UTF-8; "
          f"stream: {n_stream} sequences; chat: {len(chat['conversations'])} conversations, {len(chat['cases'])} cases")


if __name__ == "__main__":
    main()
