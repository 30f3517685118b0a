"""The conversation corpus for chat-template parity (used by make_text_goldens.py).

Conversations are in the OpenAI chat shape that `q3vl template` and the server
accept. `hf_messages` turns them into what HF's processor takes: `video_url`
parts become {"type": "video", "video": url} (the official Qwen3-VL template
does not recognise video_url), `image_url` parts {"type": "image", "image": url};
q3vl's C++ conversion does the same, and the goldens record HF's rendering of it.
"""
import copy
import json
import random

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city. Use <city> names & 'quotes' freely.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7, "default": 1},
            },
            "required": ["city"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search_images",
        "description": "搜索图片 — 検索 — بحث 🔍",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "number", "default": 10.0, "exclusiveMaximum": 1e16},
                "threshold": {"type": "number", "default": 1e-05},
                "filters": {
                    "type": "object",
                    "properties": {"safe": {"type": "boolean", "default": True}, "color": {"type": ["string", "null"]}},
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
}
CALC = {
    "type": "function",
    "function": {
        "name": "calculate",
        "description": "Evaluate an arithmetic expression.\nReturns a number.\tTabs\\and \"quotes\".",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    },
}
PLAIN_TOOL = {"name": "get_time", "description": "Current time (HF-style tool without the function wrapper)",
              "parameters": {"type": "object", "properties": {}}}
TOOL_SETS = [[WEATHER], [WEATHER, SEARCH, CALC], [PLAIN_TOOL, CALC]]


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


def image(url):
    return {"type": "image_url", "image_url": {"url": url}}


def image_bare(url):
    return {"type": "image_url", "image_url": url}


def video(url):
    return {"type": "video_url", "video_url": {"url": url}}


def text(t):
    return {"type": "text", "text": t}


def call(name, arguments, call_id=None):
    c = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        c = {"id": call_id, **c}
    return c


def tool(content, call_id="call_1"):
    return {"role": "tool", "tool_call_id": call_id, "content": content}


DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def handmade():
    """(name, messages, tool_set index or None)"""
    return [
        ("single_user", [user("Hello!")], None),
        ("system_user", [system("You are a helpful assistant."), user("What is 2+2?")], None),
        ("multi_turn", [system("Be brief."), user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke.")], None),
        ("assistant_last", [user("Hi"), assistant("Hello there.")], None),
        ("unicode_text", [user("你好！¿Qué tal? مرحبا 👨‍👩‍👧 e\u0301"), assistant("Bien, merci. 😀")], None),
        ("empty_content", [user(""), assistant("")], None),
        ("whitespace_content", [user("  \n\tline\n\n"), assistant("\n\nanswer\n")], None),
        ("special_tokens_in_text", [user("Is <|im_end|> a token? What about <think>?"), assistant("Yes: <|im_start|>")], None),
        ("one_image", [{"role": "user", "content": [image("/data/cat.png"), text("What animal is this?")]}], None),
        ("image_bare_string", [{"role": "user", "content": [image_bare("file:///data/dog.jpg"), text("Describe.")]}], None),
        ("image_data_url", [{"role": "user", "content": [text("Look: "), image(DATA_URL), text(" — tiny.")]}], None),
        ("hf_image_part", [{"role": "user", "content": [{"type": "image", "image": "a.jpg"}, {"type": "text", "text": "HF shape"}]}], None),
        ("two_images", [{"role": "user", "content": [image("a.png"), image("b.png"), text("Compare these.")]}], None),
        ("one_video", [{"role": "user", "content": [video("/videos/clip.mp4"), text("What happens?")]}], None),
        ("hf_video_part", [{"role": "user", "content": [{"type": "video", "video": "v.mp4"}, text("HF video")]}], None),
        ("image_and_video", [{"role": "user", "content": [text("First "), image("x.png"), text(" then "), video("y.mp4")]}], None),
        ("multi_turn_images", [
            {"role": "user", "content": [image("1.png"), text("What is it?")]},
            assistant("A cat."),
            {"role": "user", "content": [image("2.png"), video("3.mp4"), text("And these?")]},
        ], None),
        ("system_parts", [{"role": "system", "content": [text("System as "), text("parts.")]}, user("Hi")], None),
        ("assistant_parts", [user("Hi"), {"role": "assistant", "content": [text("Part one. "), text("Part two.")]}, user("ok")], None),
        ("tools_no_system", [user("Weather in Paris?")], 0),
        ("tools_with_system", [system("You can call tools."), user("Weather in Tokyo in fahrenheit?")], 1),
        ("tool_call_string_args", [
            user("Weather in Paris?"),
            {"role": "assistant", "content": None, "tool_calls": [call("get_weather", "{\"city\": \"Paris\"}", "call_1")]},
            tool("{\"temperature\": 21, \"sky\": \"clear\"}"),
            assistant("It is 21°C and clear in Paris."),
        ], 0),
        ("tool_call_object_args", [
            user("Find cat pictures"),
            {"role": "assistant", "content": "Searching.", "tool_calls": [call("search_images", {"query": "cats", "limit": 5, "threshold": 0.5, "filters": {"safe": True, "color": None}}, "c9")]},
            tool("[\"cat1.png\", \"cat2.png\"]", "c9"),
        ], 1),
        ("parallel_tool_calls", [
            user("Weather in Paris and Berlin, and 3*7?"),
            {"role": "assistant", "content": "", "tool_calls": [
                call("get_weather", {"city": "Paris"}, "a"), call("get_weather", {"city": "Berlin", "unit": "celsius"}, "b"),
                call("calculate", {"expression": "3*7"}, "c")]},
            tool("18", "a"), tool("15", "b"), tool("21", "c"),
            assistant("Paris 18, Berlin 15, and 3*7 = 21."),
        ], 1),
        ("hf_tool_call_no_wrapper", [
            user("Time?"),
            {"role": "assistant", "tool_calls": [{"name": "get_time", "arguments": {}}]},
            tool("08:30"),
        ], 2),
        ("tool_response_with_image", [
            user("Show me the chart"),
            {"role": "assistant", "content": None, "tool_calls": [call("search_images", "{\"query\": \"chart\"}")]},
            {"role": "tool", "tool_call_id": "call_1", "content": [text("Found: "), image("chart.png")]},
        ], 1),
        ("tool_unicode_args", [
            user("天气？"),
            {"role": "assistant", "content": None, "tool_calls": [call("get_weather", {"city": "北京", "note": "naïve \"q\" \\ <x> & 'y' \u0007"})]},
            tool("晴 ☀️"),
        ], 0),
        ("tool_float_args", [
            user("Compute"),
            {"role": "assistant", "content": None, "tool_calls": [call("calculate", {"x": 1.0, "y": 1e16, "z": 1e-05, "w": -0.0, "big": 12345678901234567, "f": 0.1})]},
        ], 2),
        ("reasoning_content", [
            user("Why is the sky blue?"),
            {"role": "assistant", "content": "Rayleigh scattering.", "reasoning_content": "Short wavelengths scatter more."},
        ], None),
        ("reasoning_then_user", [
            user("Q1"),
            {"role": "assistant", "content": "A1", "reasoning_content": "think 1"},
            user("Q2"),
            {"role": "assistant", "content": "A2", "reasoning_content": "think 2"},
        ], None),
        ("think_inline", [
            user("Solve x+1=2"),
            assistant("<think>\nSubtract 1.\n</think>\n\nx = 1"),
        ], None),
        ("think_inline_earlier_turn", [
            user("Q1"), assistant("<think>r1</think>A1"), user("Q2"),
        ], None),
        ("reasoning_alias_field", [
            user("Hi"), {"role": "assistant", "content": "Hello", "reasoning": "greet back"},
        ], None),
        ("reasoning_with_tool_calls", [
            user("Weather?"),
            {"role": "assistant", "content": "", "reasoning_content": "Need the tool.", "tool_calls": [call("get_weather", {"city": "Rome"})]},
            tool("{\"t\": 25}"),
            {"role": "assistant", "content": "25 degrees.", "reasoning_content": "Got it."},
        ], 0),
        ("system_mid_conversation", [user("Hi"), assistant("Hello"), system("New instructions."), user("ok")], None),
        ("long_multi_turn", [system("sys")] + [m for i in range(6) for m in (user(f"question {i}"), assistant(f"answer {i}"))], None),
        ("newlines_everywhere", [system("\n"), user("\n\n"), assistant("\n")], None),
        ("code_content", [user("```python\ndef f(x):\n    return {'a': [1, 2]}\n```"), assistant("Looks fine.\n\n```\nok\n```")], None),
        ("refusal_field_ignored", [user("Hi"), {"role": "assistant", "content": "Hello", "refusal": None, "annotations": []}], None),
    ]


PHRASES = ["Hello", "What is in the picture?", "Describe the video.", "谢谢", "Merci beaucoup!", "OK.", "Explain step by step.",
           "¿Por qué?", "नमस्ते", "Yes", "Compare them", "مرحبا", "Sure 👍", "Line one\nLine two", "  spaced  "]


def generated(count, seed):
    """Random compositions of the same building blocks, for coverage beyond the hand-made cases."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        messages = []
        tools = rng.choice([None, None, 0, 1, 2])
        if rng.random() < 0.4:
            messages.append(system(rng.choice(PHRASES)))
        turns = rng.randint(1, 4)
        for t in range(turns):
            if rng.random() < 0.5:
                parts = []
                for _ in range(rng.randint(1, 4)):
                    kind = rng.random()
                    if kind < 0.3:
                        parts.append(image(f"img{rng.randint(0, 9)}.png"))
                    elif kind < 0.45:
                        parts.append(video(f"vid{rng.randint(0, 9)}.mp4"))
                    else:
                        parts.append(text(rng.choice(PHRASES)))
                messages.append({"role": "user", "content": parts})
            else:
                messages.append(user(rng.choice(PHRASES)))
            last = t == turns - 1
            if last and rng.random() < 0.5:
                break
            if tools is not None and rng.random() < 0.5:
                name = "get_weather" if tools == 0 else rng.choice(["calculate", "get_weather", "search_images"])
                if tools == 2:
                    name = rng.choice(["calculate", "get_time"])
                args = rng.choice(["{\"city\": \"Oslo\"}", {"city": "Lima", "days": rng.randint(1, 7)}, {}])
                msg = {"role": "assistant", "content": rng.choice([None, "", "Let me check."]),
                       "tool_calls": [call(name, args, f"id{t}")]}
                if rng.random() < 0.4:
                    msg["reasoning_content"] = rng.choice(["need data", "\nthinking...\n"])
                messages.append(msg)
                messages.append(tool(rng.choice(["{\"ok\": true}", "42", "晴"]), f"id{t}"))
            if rng.random() < 0.3:
                messages.append({"role": "assistant", "content": rng.choice(PHRASES), "reasoning_content": rng.choice(PHRASES)})
            else:
                messages.append(assistant(rng.choice(PHRASES + ["<think>hmm</think>\n\nanswer"])))
        out.append((f"generated_{n:02d}", messages, tools))
    return out


def all_conversations():
    return handmade() + generated(30, seed=5)


def hf_messages(messages):
    """OpenAI shape -> what HF's processor apply_chat_template is given (see module doc)."""
    out = copy.deepcopy(messages)
    for m in out:
        if isinstance(m.get("content"), list):
            for i, p in enumerate(m["content"]):
                if p.get("type") == "image_url":
                    url = p["image_url"]["url"] if isinstance(p["image_url"], dict) else p["image_url"]
                    m["content"][i] = {"type": "image", "image": url}
                elif p.get("type") == "video_url":
                    url = p["video_url"]["url"] if isinstance(p["video_url"], dict) else p["video_url"]
                    m["content"][i] = {"type": "video", "video": url}
        # q3vl ignores OpenAI response fields with no meaning for the prompt.
        m.pop("refusal", None)
        m.pop("annotations", None)
    return out


def is_text_only(messages):
    return all(isinstance(m.get("content"), str) or m.get("content") is None for m in messages)


if __name__ == "__main__":
    print(json.dumps([c[0] for c in all_conversations()]))
