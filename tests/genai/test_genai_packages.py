"""`q3vl build --target ort-genai` packages run by ONNX Runtime GenAI (onnxruntime-genai,
its own processor, tokenizer and generator loop) against HF's goldens and q3vl's runtime.

Reference: tests/goldens/model (HF transformers, float32, tests/reference/README.md) on
the `tiny` and `custom` checkpoints; q3vl's own runtime (`q3vl run`, itself checked against the same
goldens by the C++ suites) where no golden exists.
"""
import json

import numpy as np
import pytest

from conftest import (CHECKPOINTS, GOLDENS, Golden, GenaiRun, cosine, packages_of, read_safetensors, run_q3vl,
                      same_up_to_near_ties, write_png)

GENAI = ("--target", "ort-genai")
STEPS = 32  # the goldens' greedy length


def golden_input_ids(case):
    return read_safetensors(GOLDENS / "model" / "cases" / case / "inputs.safetensors")["input_ids"].reshape(-1)


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_text_prompt_matches_hf(checkpoint):
    case = "text_only"
    g = Golden(case, checkpoint)
    run = GenaiRun(packages_of(checkpoint).model("fp32", *GENAI), g.prompt, [], STEPS)
    np.testing.assert_array_equal(run.input_ids, golden_input_ids(case))
    assert cosine(run.first_logits, g.values["prefill_logits"]) >= 0.99999
    assert same_up_to_near_ties(run.tokens, g.values["greedy_ids"].tolist(), g.values["greedy_margin"]), (
        run.tokens, g.values["greedy_ids"].tolist())


def test_multi_turn_text_conversation_equals_q3vl_runtime(packages, tmp_path):
    conversation = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "And another one?"},
    ]
    messages = tmp_path / "conversation.json"
    messages.write_text(json.dumps(conversation))
    # The prompt as q3vl renders the checkpoint's template (checked against HF by the text suite).
    prompt = run_q3vl("template", "--model", packages.checkpoint, "--messages", messages)
    run = GenaiRun(packages.model("fp32", *GENAI), prompt, [], STEPS)
    q3vl = json.loads(run_q3vl("run", "--model", packages.path("q3vl-fp32"), "--messages", messages,
                               "--max-new-tokens", STEPS, "--temperature", 0, "--json"))
    assert run.tokens == q3vl["token_ids"]


# Golden images are resized by smart-resize (ort-extensions' bicubic here, PIL's in HF),
# so pixels may differ slightly: logits are compared, not tokens.
@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
@pytest.mark.parametrize("case", ["image_small", "image_odd", "two_images"])
def test_resized_image_prompts_match_hf_logits(checkpoint, case):
    g = Golden(case, checkpoint)
    run = GenaiRun(packages_of(checkpoint).model("fp32", *GENAI), g.prompt, g.images, STEPS)
    np.testing.assert_array_equal(run.input_ids, golden_input_ids(case))  # same grids -> same pad counts
    assert cosine(run.first_logits, g.values["prefill_logits"]) >= 0.999


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_position_ids_equal_hf_get_rope_index(checkpoint):
    g = Golden("two_images", checkpoint)  # two images of different sizes between text
    run = GenaiRun(packages_of(checkpoint).model("fp32", *GENAI), g.prompt, g.images, 1)
    np.testing.assert_array_equal(run.position_ids.reshape(3, -1), g.values["position_ids"].reshape(3, -1))


def test_deepstack_is_what_matches_hf(packages):
    g = Golden("image_odd")
    with_ds = GenaiRun(packages.model("fp32", *GENAI), g.prompt, g.images, STEPS)
    without = GenaiRun(packages.model("no-deepstack", *GENAI, "--no-deepstack"), g.prompt, g.images, STEPS)
    ref = g.values["prefill_logits"]
    assert cosine(with_ds.first_logits, ref) >= 0.999
    assert cosine(without.first_logits, ref) < 0.999
    # Text-only prompts never use DeepStack: both layouts agree there.
    t = Golden("text_only")
    a = GenaiRun(packages.model("fp32", *GENAI), t.prompt, [], 4)
    b = GenaiRun(packages.model("no-deepstack", *GENAI, "--no-deepstack"), t.prompt, [], 4)
    assert cosine(a.first_logits, b.first_logits) >= 0.99999


def test_unresized_image_tokens_equal_q3vl_runtime(packages, tmp_path):
    # 320 x 224: multiples of patch * merge (32) with 71680 pixels, inside the checkpoint's
    # [65536, 16777216]: smart-resize keeps the size, so GenAI's processor and q3vl's see
    # the same pixels (checked), and the greedy tokens must agree.
    y, x = np.mgrid[0:224, 0:320]
    rgb = np.stack([(x * 2) % 256, (y * 3) % 256, ((x + y) * 5) % 256], axis=-1).astype(np.uint8)
    image = tmp_path / "grid_320x224.png"
    write_png(image, rgb)
    text = "What is in the picture?"
    prompt = ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>" + text +
              "<|im_end|>\n<|im_start|>assistant\n")
    run = GenaiRun(packages.model("fp32", *GENAI), prompt, [str(image)], STEPS)
    run_q3vl("preprocess", "--model", packages.checkpoint, "--image", image, "--npy", tmp_path / "pixels.npy")
    # Same pixels up to float32 rounding (ort-extensions rescales, then normalizes; q3vl fuses both as HF).
    np.testing.assert_allclose(run.pixel_values, np.load(tmp_path / "pixels.npy"), rtol=0, atol=1e-6)
    q3vl = json.loads(run_q3vl("run", "--model", packages.path("q3vl-fp32"), "--image", image, "--prompt", text,
                               "--max-new-tokens", STEPS, "--temperature", 0, "--json"))
    assert run.tokens == q3vl["token_ids"]


def test_int4_package_loads_and_generates(packages):
    model = packages.model("int4", *GENAI, "--precision", "int4")
    for case, bound in (("text_only", 0.98), ("image_small", 0.98)):
        g = Golden(case)
        run = GenaiRun(model, g.prompt, g.images, STEPS)
        assert len(run.tokens) == STEPS
        assert cosine(run.first_logits, g.values["prefill_logits"]) >= bound, case
