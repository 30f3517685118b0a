// The chat template written into every generated checkpoint (chat_template.jinja).
//
// q3vl wrote this template itself from the Qwen3-VL Instruct chat format
// (docs/reference/qwen3vl.md §4.1); it renders the same text as the template Qwen
// publishes with the Instruct models on the same conversations (checked with HF
// by tests/reference/check_checkpoint.py). Rendering assumes HF's Jinja settings:
// trim_blocks, lstrip_blocks, no autoescape, HF's tojson.
//
// Format: ChatML turns "<|im_start|>{role}\n...<|im_end|>\n"; no default system
// turn; images and videos become <|vision_start|><|image_pad|><|vision_end|> /
// <|video_pad|> with no separators, optionally prefixed "Picture k: " /
// "Video k: " (add_vision_id, counters over the whole conversation); tools go
// into the system turn; consecutive tool results share one user turn.
#include "checkpoint/hf_files.h"

namespace q3vl::checkpoint {
namespace {

constexpr const char* kTemplate = R"jinja({#- Qwen3-VL Instruct chat format, written for q3vl (src/checkpoint/chat_template.cpp). -#}
{%- macro plain_text(content) -%}
    {%- if content is string -%}
        {{- content -}}
    {%- else -%}
        {%- for part in content -%}
            {%- if 'text' in part -%}
                {{- part.text -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro -%}

{%- set has_system = messages[0].role == 'system' %}
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if has_system %}
        {{- plain_text(messages[0].content) }}
        {{- '\n\n' }}
    {%- endif %}
    {{- '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' }}
    {{- 'You are provided with function signatures within <tools></tools> XML tags:\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments' }}
    {{- ' within <tool_call></tool_call> XML tags:\n<tool_call>\n' }}
    {{- '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' }}
{%- elif has_system %}
    {{- '<|im_start|>system\n' }}
    {{- plain_text(messages[0].content) }}
    {{- '<|im_end|>\n' }}
{%- endif %}

{%- set seen = namespace(images=0, videos=0) %}
{%- for message in messages %}
    {%- set parts = [{'text': message.content}] if message.content is string else message.content %}
    {%- if message.role == 'assistant' %}
        {{- '<|im_start|>assistant\n' }}
        {{- plain_text(message.content) }}
        {%- for call in message.tool_calls or [] %}
            {%- if message.content or not loop.first %}
                {{- '\n' }}
            {%- endif %}
            {%- set fn = call.function if call.function else call %}
            {{- '<tool_call>\n{"name": "' }}
            {{- fn.name }}
            {{- '", "arguments": ' }}
            {%- if fn.arguments is string %}
                {{- fn.arguments }}
            {%- else %}
                {{- fn.arguments | tojson }}
            {%- endif %}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'user' or message.role == 'tool' %}
        {%- set is_tool = message.role == 'tool' %}
        {%- if not is_tool %}
            {{- '<|im_start|>user\n' }}
        {%- else %}
            {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
                {{- '<|im_start|>user' }}
            {%- endif %}
            {{- '\n<tool_response>\n' }}
        {%- endif %}
        {%- for part in parts %}
            {%- if part.type == 'image' or 'image' in part or 'image_url' in part %}
                {%- set seen.images = seen.images + 1 %}
                {%- if add_vision_id %}
                    {{- 'Picture ' }}{{- seen.images }}{{- ': ' }}
                {%- endif %}
                {{- '<|vision_start|><|image_pad|><|vision_end|>' }}
            {%- elif part.type == 'video' or 'video' in part %}
                {%- set seen.videos = seen.videos + 1 %}
                {%- if add_vision_id %}
                    {{- 'Video ' }}{{- seen.videos }}{{- ': ' }}
                {%- endif %}
                {{- '<|vision_start|><|video_pad|><|vision_end|>' }}
            {%- elif 'text' in part %}
                {{- part.text }}
            {%- endif %}
        {%- endfor %}
        {%- if not is_tool %}
            {{- '<|im_end|>\n' }}
        {%- else %}
            {{- '\n</tool_response>' }}
            {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
                {{- '<|im_end|>\n' }}
            {%- endif %}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)jinja";

}  // namespace

std::string_view qwen3vl_chat_template() { return kTemplate; }

}  // namespace q3vl::checkpoint
