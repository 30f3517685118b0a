"""`q3vl serve` through the official `openai` client: every request shape of issue #16
against `q3vl run --json` on the same messages (whose greedy ids equal HF's goldens,
tests/runtime/test_parity_cli.cpp), and the error classes the client raises."""
import base64
import json
import subprocess

import openai
import pytest

from conftest import API_KEY, EXE, MEDIA, MODEL, SOURCE, WORK, data_url, run_reference

STEPS = 24


def greedy(client, messages, **kw):
    return client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=STEPS, **kw)


def image_messages(url):
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": "Describe the image."}]}]


def test_models_lists_the_one_model(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("other")


def test_greedy_text_equals_q3vl_run(client, package, scratch):
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
    ref = run_reference(package, scratch, messages, STEPS)
    r = greedy(client, messages, logprobs=True)
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.model == MODEL and r.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant"
    assert choice.message.content == ref["text"]
    # Token for token: the same count and the same bytes.
    assert len(choice.logprobs.content) == len(ref["token_ids"])
    # A stop token (eos) is generated but not shown: its bytes are not in the text.
    shown = len(ref["token_ids"]) - (1 if ref["finish_reason"] == "stop" else 0)
    raw = b"".join(bytes(t.bytes) for t in choice.logprobs.content[:shown])
    assert raw.decode("utf-8", errors="replace") == ref["text"]  # a broken character shows as U+FFFD
    assert r.usage.completion_tokens == ref["usage"]["completion_tokens"]
    assert r.usage.prompt_tokens == ref["usage"]["prompt_tokens"]
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert choice.finish_reason == ("length" if ref["finish_reason"] == "length" else "stop")


def test_streaming_equals_non_streaming(client):
    messages = [{"role": "user", "content": "Count to five."}]
    whole = greedy(client, messages)
    chunks = list(greedy(client, messages, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_image_by_data_url_equals_q3vl_run(client, package, scratch):
    png = MEDIA / "small_120x64.png"
    ref = run_reference(package, scratch, image_messages(str(png)), STEPS)
    r = greedy(client, image_messages(data_url(png)))
    assert r.choices[0].message.content == ref["text"]
    assert r.usage.prompt_tokens == ref["usage"]["prompt_tokens"]  # image tokens counted
    assert r.usage.prompt_tokens > 40


def test_image_and_video_by_path_equal_q3vl_run(client, package, scratch):
    messages = [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": str(MEDIA / "clip_96x72_25f.mov")}},
        {"type": "image_url", "image_url": {"url": "file://" + str(MEDIA / "odd_333x251.png")}},
        {"type": "text", "text": "What happens?"}]}]
    ref = run_reference(package, scratch, messages, STEPS)
    r = greedy(client, messages)
    assert r.choices[0].message.content == ref["text"]
    assert r.usage.prompt_tokens == ref["usage"]["prompt_tokens"]


def test_video_as_data_url_equals_q3vl_run_on_its_file(client, package, scratch):
    clip = SOURCE / "tests" / "fuzz" / "corpus" / "video" / "h264.mp4"  # 32x24, 6 frames
    def messages(url):
        return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                             {"type": "text", "text": "What happens?"}]}]
    # The reference decodes the file in its own process (no cache shared with the server).
    ref = run_reference(package, scratch, messages(str(clip)), STEPS)
    url = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
    r = greedy(client, messages(url), logprobs=True)
    assert r.choices[0].message.content == ref["text"]
    assert r.usage.prompt_tokens == ref["usage"]["prompt_tokens"]
    assert r.usage.prompt_tokens > greedy(client, [{"role": "user", "content": "What happens?"}]).usage.prompt_tokens
    assert len(r.choices[0].logprobs.content) == len(ref["token_ids"])
    with pytest.raises(openai.BadRequestError) as e:
        greedy(client, messages("data:video/mp4;base64,@@@@"))
    assert e.value.body["param"] == "messages[0].content[0].video_url.url"


def test_multi_turn_equals_q3vl_run_and_reuses_the_cache(client, package, scratch):
    first = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(MEDIA / "half_even_400x208.png")}},
                                          {"type": "text", "text": "What is in this picture?"}]}]
    r1 = greedy(client, first)
    second = first + [{"role": "assistant", "content": r1.choices[0].message.content},
                      {"role": "user", "content": "And what colour is it?"}]
    ref = run_reference(package, scratch, second, STEPS)
    r2 = greedy(client, second)
    assert r2.choices[0].message.content == ref["text"]
    assert r2.usage.prompt_tokens == ref["usage"]["prompt_tokens"]
    # The first turn's prompt is a prefix of the second's: its KV rows are reused.
    assert r2.usage.prompt_tokens_details.cached_tokens >= r1.usage.prompt_tokens - 1


def test_seed_makes_sampling_reproducible(client):
    messages = [{"role": "user", "content": "Tell a story."}]
    def sample(seed):
        return client.chat.completions.create(model=MODEL, messages=messages, temperature=1.0, top_p=1.0,
                                              max_tokens=STEPS, seed=seed).choices[0].message.content
    a = sample(1234)
    assert sample(1234) == a
    assert any(sample(s) != a for s in (1, 2, 3))


def test_stop_string_ends_the_reply_before_it(client):
    messages = [{"role": "user", "content": "Write a long sentence."}]
    full = greedy(client, messages, stop=None).choices[0].message.content
    assert len(full) >= 8, full
    stop = full[len(full) // 2: len(full) // 2 + 3]
    cut = full[:full.index(stop)]
    r = greedy(client, messages, stop=[stop])
    assert r.choices[0].message.content == cut
    assert r.choices[0].finish_reason == "stop"


def test_logprobs_are_a_distribution_and_greedy_takes_the_top(client):
    r = greedy(client, [{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for t in content:
        assert t.logprob <= 0.0
        assert len(t.top_logprobs) == 3
        tops = [a.logprob for a in t.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        assert t.top_logprobs[0].logprob == pytest.approx(t.logprob, abs=1e-5)  # greedy: the argmax
        assert sum(2.718281828 ** x for x in tops) <= 1.0 + 1e-4


def test_tools_round_trip(client, package, scratch):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    plain = greedy(client, messages)
    with_tools = greedy(client, messages, tools=tools, tool_choice="auto")
    # The template renders the tools into the prompt, exactly as `q3vl run` does.
    ref = run_reference(package, scratch, messages, STEPS, tools=tools)
    assert with_tools.usage.prompt_tokens == ref["usage"]["prompt_tokens"] > plain.usage.prompt_tokens + 20
    # The client's second leg: the assistant's call and the tool's answer go back in.
    follow = messages + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature_c": 21}'}]
    ref2 = run_reference(package, scratch, follow, STEPS, tools=tools)
    r = greedy(client, follow, tools=tools)
    assert r.choices[0].message.content == ref2["text"]
    assert r.usage.prompt_tokens == ref2["usage"]["prompt_tokens"]


FORCED_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]


def test_tool_choice_forces_a_call(client):
    """tool_choice "required" / named: a random-weight model never writes a tool call by
    itself, so every call here comes from the constrained decoding, end to end."""
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    assert not greedy(client, messages, tools=FORCED_TOOLS).choices[0].message.tool_calls
    named = {"type": "function", "function": {"name": "get_time"}}
    cases = [("required", 0, {"get_weather", "get_time"}), ("required", 1, {"get_weather", "get_time"}),
             (named, 0, {"get_time"}), (named, 2, {"get_time"})]
    for choice, seed, names in cases:
        r = client.chat.completions.create(model=MODEL, messages=messages, tools=FORCED_TOOLS, tool_choice=choice,
                                           temperature=1.0 if seed else 0, seed=seed, max_tokens=64, logprobs=True)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", (choice, seed, c)
        assert len(c.message.tool_calls) == 1 and not c.message.content
        call = c.message.tool_calls[0]
        assert call.type == "function" and call.function.name in names and call.id
        assert isinstance(json.loads(call.function.arguments), dict), call.function.arguments
        # What was generated is the call exactly as the chat template renders one, with
        # the tags as Qwen's added tokens (one token each).
        pieces = [bytes(t.bytes) for t in c.logprobs.content]
        assert pieces[0] == b"<tool_call>" and pieces[-2] == b"</tool_call>" and pieces[-1] == b""  # then eos
        assert b"".join(pieces).decode() == ('<tool_call>\n{"name": "' + call.function.name + '", "arguments": '
                                             + call.function.arguments + '}\n</tool_call>')
        assert r.usage.completion_tokens == len(pieces) <= 64
    # Streamed: the call arrives as deltas that add up to the non-streamed one.
    def forced(**kw):
        return client.chat.completions.create(model=MODEL, messages=messages, tools=FORCED_TOOLS, tool_choice=named,
                                              temperature=0, max_tokens=64, **kw)
    whole = forced().choices[0]
    chunks = list(forced(stream=True))
    deltas = [d for ch in chunks if ch.choices for d in (ch.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].function.name == "get_time" and all(d.index == 0 for d in deltas)
    assert "".join(d.function.arguments or "" for d in deltas) == whole.message.tool_calls[0].function.arguments
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == \
        ["tool_calls"]
    # A function that is not among the tools is the request's error.
    with pytest.raises(openai.BadRequestError) as e:
        greedy(client, messages, tools=FORCED_TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}})
    assert e.value.body["param"] == "tool_choice" and "nope" in e.value.body["message"]


def json_prefix_completes(text):
    """Whether `text` is the start of a JSON object: some closing suffix makes it parse."""
    stack, in_string, escaped = [], False, False
    for c in text:
        if in_string:
            escaped = not escaped and c == "\\"
            in_string = escaped or c != '"'
        elif c == '"':
            in_string = True
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
        elif c in "}]":
            if not stack:
                return False
            stack.pop()
    quote = ('n"' if escaped else '"') if in_string else ""
    fillers = ["", "0", "null", ": null", '"": null', "e0", '"0"', '": null', "ue", "rue", "e", "se", "lse", "alse",
               "l", "ll", "ull"]
    return any(_parses(text + quote + f + "".join(reversed(stack))) for f in fillers)


def _parses(text):
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def test_json_object_output_parses(client):
    """The constraint: whatever the (random-weight) model prefers, the reply is one JSON
    object when it ends by itself, and a prefix of one when max_tokens cuts it."""
    messages = [{"role": "user", "content": "Give me JSON."}]
    plain = greedy(client, messages).choices[0].message.content
    assert not plain.lstrip().startswith("{")  # unconstrained, this model writes no JSON
    finished = 0
    for seed in range(6):
        r = client.chat.completions.create(model=MODEL, messages=messages, temperature=1.0, seed=seed,
                                           max_tokens=48, response_format={"type": "json_object"})
        content, finish = r.choices[0].message.content, r.choices[0].finish_reason
        assert content.lstrip().startswith("{"), content
        if finish == "stop":
            finished += 1
            assert isinstance(json.loads(content), dict), content
        else:
            assert finish == "length" and json_prefix_completes(content), content
    r = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=48,
                                       response_format={"type": "json_object"})
    assert json_prefix_completes(r.choices[0].message.content)


def test_errors_surface_as_the_clients_exceptions(server, client):
    import openai as o
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(o.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=messages, temperature=7)
    assert e.value.body["param"] == "temperature" and "temperature" in e.value.body["message"]
    with pytest.raises(o.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=messages, n=2)
    assert e.value.body["param"] == "n"
    with pytest.raises(o.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [{"type": "image_url",
                                       "image_url": {"url": "/etc/passwd"}}]}])
    assert "allowed-media-path" in e.value.body["message"]
    with pytest.raises(o.NotFoundError) as e:
        client.chat.completions.create(model="gpt-5", messages=messages)
    assert e.value.body["code"] == "model_not_found"
    bad_key = o.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(o.AuthenticationError):
        bad_key.chat.completions.create(model=MODEL, messages=messages)
    with pytest.raises(o.AuthenticationError):
        bad_key.models.list()
    # A prompt longer than a slot is the client's error, not the server's.
    with pytest.raises(o.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 3000}])
    assert e.value.body["code"] == "context_length_exceeded"
    # And the server still serves.
    assert greedy(client, messages).choices[0].message.role == "assistant"


@pytest.fixture(scope="module")
def thinking_package(scratch):
    """A package of the `tiny` checkpoint with a Thinking-style chat template (its generation
    prompt opens <think>): the checkpoint's files are links, only chat_template.jinja differs,
    and `q3vl build` packages it (so q3vl.json records that template's size and sha256)."""
    checkpoint = WORK / "checkpoint-tiny"
    source = scratch / "checkpoint-thinking"
    out = scratch / "package-thinking"
    if not out.exists():
        source.mkdir()
        for f in checkpoint.iterdir():
            if f.name != "chat_template.jinja":
                (source / f.name).symlink_to(f)
        (source / "chat_template.jinja").write_bytes(
            (SOURCE / "tests" / "goldens" / "text" / "thinking.chat_template.jinja").read_bytes())
        subprocess.run([str(EXE), "build", "--model", str(source), "--out", str(out), "--quiet"], check=True,
                       timeout=120)
    return out


def test_thinking_reply_comes_back_as_reasoning_content(thinking_package, scratch):
    from conftest import Server
    s = Server(thinking_package, "--parallel", 1, "--ctx-per-slot", 512)
    try:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="none", max_retries=0)
        messages = [{"role": "user", "content": "Think, then answer."}]
        ref = run_reference(thinking_package, scratch, messages, STEPS)
        # The random-weight model never closes </think>: its whole reply is reasoning.
        assert "</think>" not in ref["text"]
        r = greedy(client, messages)
        message = r.choices[0].message
        assert message.reasoning_content == ref["text"].strip()
        assert message.content == ""
        chunks = list(greedy(client, messages, stream=True))
        streamed = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
        assert streamed == ref["text"].strip()
        assert all(not c.choices[0].delta.content for c in chunks if c.choices)
        # A forced call would open inside the prompt's <think>: refused, naming tool_choice.
        with pytest.raises(openai.BadRequestError) as e:
            greedy(client, messages, tools=FORCED_TOOLS, tool_choice="required")
        assert e.value.body["param"] == "tool_choice"
    finally:
        assert s.stop() == 0
