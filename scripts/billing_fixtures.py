#!/usr/bin/env python3
"""Writes the billing fixtures of issue 11 into tests/fixtures/ (run from the repo root)."""
import json, os

OUT = "tests/fixtures"

def dump(obj):
    return json.dumps(obj, separators=(",", ":"))

def write(name, text):
    with open(os.path.join(OUT, name), "w", newline="") as f:
        f.write(text)

def sse(events):
    """events: list of (event name or None, payload dict or str)."""
    out = []
    for name, payload in events:
        if name:
            out.append(f"event: {name}\n")
        data = payload if isinstance(payload, str) else dump(payload)
        out.append(f"data: {data}\n\n")
    return "".join(out)

# ---------------------------------------------------------------- OpenAI chat: priority tier
def chat_chunk(cid, model, tier, delta, finish=None, usage=None, choices=True, fp="fp_prio"):
    c = {"id": cid, "object": "chat.completion.chunk", "created": 1764590400, "model": model,
         "service_tier": tier, "system_fingerprint": fp}
    c["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []
    c["usage"] = usage
    return c

prio_usage = {"prompt_tokens": 1200, "completion_tokens": 800, "total_tokens": 2000,
              "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 512, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
write("openai-chat_priority.json", json.dumps({
    "id": "chatcmpl-CiPr1or1tyT1erDemo0001", "object": "chat.completion", "created": 1764590400,
    "model": "gpt-5-2025-08-07",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The capital of France is Paris.",
                 "refusal": None, "annotations": []}, "finish_reason": "stop"}],
    "usage": prio_usage, "service_tier": "priority", "system_fingerprint": None}, indent=2) + "\n")
cid = "chatcmpl-CiPr1or1tyT1erDemo0002"
m = "gpt-5-2025-08-07"
write("openai-chat_stream_priority.sse", sse([
    (None, chat_chunk(cid, m, "priority", {"role": "assistant", "content": "", "refusal": None})),
    (None, chat_chunk(cid, m, "priority", {"content": "The capital"})),
    (None, chat_chunk(cid, m, "priority", {"content": " of France is Paris."})),
    (None, chat_chunk(cid, m, "priority", {}, finish="stop")),
    (None, chat_chunk(cid, m, "priority", None, choices=False, usage=prio_usage)),
    (None, "[DONE]"),
]))

# ---------------------------------------------------------------- OpenAI chat: audio
audio_usage = {"prompt_tokens": 100, "completion_tokens": 200, "total_tokens": 300,
               "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 60, "text_tokens": 40, "image_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 150, "text_tokens": 50,
                                             "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
am = "gpt-4o-audio-preview-2025-06-03"
write("openai-chat_audio.json", json.dumps({
    "id": "chatcmpl-CiAud1oDemo0001", "object": "chat.completion", "created": 1764590400, "model": am,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": None,
                 "audio": {"id": "audio_692d8a1b2c3d", "data": "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=",
                           "expires_at": 1764594000, "transcript": "Hello! How can I help you today?"},
                 "annotations": []}, "finish_reason": "stop"}],
    "usage": audio_usage, "service_tier": "default", "system_fingerprint": "fp_audio01"}, indent=2) + "\n")
cid = "chatcmpl-CiAud1oDemo0002"
write("openai-chat_stream_audio.sse", sse([
    (None, chat_chunk(cid, am, "default", {"role": "assistant", "content": None, "refusal": None}, fp="fp_audio01")),
    (None, chat_chunk(cid, am, "default", {"audio": {"id": "audio_692d8a1b2c3e", "transcript": "Hello!"}}, fp="fp_audio01")),
    (None, chat_chunk(cid, am, "default", {"audio": {"data": "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgA"}}, fp="fp_audio01")),
    (None, chat_chunk(cid, am, "default", {"audio": {"transcript": " How can I help you today?"}}, fp="fp_audio01")),
    (None, chat_chunk(cid, am, "default", {"audio": {"expires_at": 1764594000}}, fp="fp_audio01")),
    (None, chat_chunk(cid, am, "default", {}, finish="stop", fp="fp_audio01")),
    (None, chat_chunk(cid, am, "default", None, choices=False, usage=audio_usage, fp="fp_audio01")),
    (None, "[DONE]"),
]))

# ---------------------------------------------------------------- OpenAI Responses
def response(rid, model, tier, status, output, usage):
    return {"id": rid, "object": "response", "created_at": 1764590400, "status": status,
            "background": False, "error": None, "incomplete_details": None, "instructions": None,
            "max_output_tokens": None, "model": model, "output": output, "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": {"effort": "medium", "summary": None},
            "service_tier": tier, "store": True, "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None, "metadata": {}}

def r_usage(inp, cached, out, reasoning):
    return {"input_tokens": inp, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": out, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": inp + out}

def msg(mid, text):
    return {"id": mid, "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]}

def responses_stream(rid, model, tier, items, usage, deltas):
    seq = 0
    events = []
    def ev(kind, body):
        nonlocal seq
        body = {"type": kind, "sequence_number": seq, **body}
        seq += 1
        events.append((kind, body))
    ev("response.created", {"response": response(rid, model, tier, "in_progress", [], None)})
    ev("response.in_progress", {"response": response(rid, model, tier, "in_progress", [], None)})
    for i, item in enumerate(items):
        if item["type"] == "message":
            start = dict(item, status="in_progress", content=[])
            ev("response.output_item.added", {"output_index": i, "item": start})
            ev("response.content_part.added", {"item_id": item["id"], "output_index": i, "content_index": 0,
                                               "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}})
            for d in deltas:
                ev("response.output_text.delta", {"item_id": item["id"], "output_index": i, "content_index": 0,
                                                  "delta": d, "logprobs": []})
            ev("response.output_text.done", {"item_id": item["id"], "output_index": i, "content_index": 0,
                                             "text": "".join(deltas), "logprobs": []})
            ev("response.content_part.done", {"item_id": item["id"], "output_index": i, "content_index": 0,
                                              "part": item["content"][0]})
        else:
            ev("response.output_item.added", {"output_index": i, "item": dict(item, status="in_progress")})
            if item["type"] == "web_search_call":
                ev("response.web_search_call.in_progress", {"output_index": i, "item_id": item["id"]})
                ev("response.web_search_call.searching", {"output_index": i, "item_id": item["id"]})
                ev("response.web_search_call.completed", {"output_index": i, "item_id": item["id"]})
        ev("response.output_item.done", {"output_index": i, "item": item})
    ev("response.completed", {"response": response(rid, model, tier, "completed", items, usage)})
    return sse(events)

flex_items = [{"id": "rs_flex01", "type": "reasoning", "summary": []}, msg("msg_flex01", "Paris.")]
write("openai-responses_flex.json", json.dumps(
    response("resp_flexDemo0001", "gpt-5", "flex", "completed", flex_items, r_usage(1200, 200, 800, 512)), indent=2) + "\n")

lc_items = [msg("msg_long01", "The contract's termination clause is in section 14.2.")]
lc_usage = r_usage(300000, 100000, 2000, 0)
write("openai-responses_long-context.json", json.dumps(
    response("resp_longCtx0001", "gpt-5.4", "default", "completed", lc_items, lc_usage), indent=2) + "\n")
write("openai-responses_stream_long-context.sse", responses_stream(
    "resp_longCtx0002", "gpt-5.4", "default", lc_items, lc_usage,
    ["The contract's termination", " clause is in section 14.2."]))

ws_items = [
    {"id": "rs_ws01", "type": "reasoning", "summary": []},
    {"id": "ws_01", "type": "web_search_call", "status": "completed",
     "action": {"type": "search", "query": "weather Paris today"}},
    {"id": "ws_02", "type": "web_search_call", "status": "completed",
     "action": {"type": "search", "query": "Paris forecast tomorrow"}},
    msg("msg_ws01", "It is 14 °C and sunny in Paris today."),
]
ws_usage = r_usage(2500, 0, 300, 128)
write("openai-responses_web-search.json", json.dumps(
    response("resp_webSearch0001", "gpt-5-2025-08-07", "default", "completed", ws_items, ws_usage), indent=2) + "\n")
write("openai-responses_stream_web-search.sse", responses_stream(
    "resp_webSearch0002", "gpt-5-2025-08-07", "default", ws_items, ws_usage,
    ["It is 14 °C", " and sunny in Paris today."]))

# ---------------------------------------------------------------- Anthropic
def a_usage(inp, cw, cr, out, c5=None, c1=None, ws=None, wf=None):
    u = {"input_tokens": inp, "cache_creation_input_tokens": cw, "cache_read_input_tokens": cr}
    if c5 is not None:
        u["cache_creation"] = {"ephemeral_5m_input_tokens": c5, "ephemeral_1h_input_tokens": c1}
    u["output_tokens"] = out
    if ws is not None:
        u["server_tool_use"] = {"web_search_requests": ws, "web_fetch_requests": wf}
    u["service_tier"] = "standard"
    return u

am = "claude-sonnet-4-5-20250929"
def a_message(mid, content, usage, stop="end_turn"):
    return {"id": mid, "type": "message", "role": "assistant", "model": am, "content": content,
            "stop_reason": stop, "stop_sequence": None, "usage": usage}

write("anthropic_cache-1h.json", json.dumps(a_message(
    "msg_01Cache1hDemo", [{"type": "text", "text": "Here is the summary of the attached report."}],
    a_usage(3, 2000, 1000, 100, 500, 1500)), indent=2) + "\n")

def a_stream(mid, start_usage, blocks, final_usage):
    ev = [("message_start", {"type": "message_start", "message": dict(a_message(mid, [], start_usage, None))})]
    for i, (kind, start, deltas) in enumerate(blocks):
        ev.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": start}))
        if i == 0:
            ev.append(("ping", {"type": "ping"}))
        for d in deltas:
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}))
        ev.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    ev.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": final_usage}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return sse(ev)

start = a_usage(3, 2000, 1000, 1, 500, 1500)
write("anthropic_stream_cache-1h.sse", a_stream("msg_01Cache1hDemo2", start, [
    ("text", {"type": "text", "text": ""}, [{"type": "text_delta", "text": "Here is the summary"},
                                            {"type": "text_delta", "text": " of the attached report."}])],
    {"input_tokens": 3, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 1000, "output_tokens": 100}))

search_result = [{"type": "web_search_result", "url": "https://example.com/paris-weather",
                  "title": "Paris weather", "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5", "page_age": "December 1, 2025"}]
ws_content = []
for i, q in enumerate(["weather Paris today", "Paris forecast", "Paris humidity"]):
    ws_content.append({"type": "server_tool_use", "id": f"srvtoolu_0{i}", "name": "web_search", "input": {"query": q}})
    ws_content.append({"type": "web_search_tool_result", "tool_use_id": f"srvtoolu_0{i}", "content": search_result})
ws_content.append({"type": "server_tool_use", "id": "srvtoolu_09", "name": "web_fetch",
                   "input": {"url": "https://example.com/paris-weather"}})
ws_content.append({"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_09",
                   "content": {"type": "web_fetch_result", "url": "https://example.com/paris-weather",
                               "content": {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "14 C, sunny"}}}})
ws_content.append({"type": "text", "text": "It is 14 °C and sunny in Paris.",
                   "citations": [{"type": "web_search_result_location", "url": "https://example.com/paris-weather",
                                  "title": "Paris weather", "encrypted_index": "Eo8BCioIAhgBIiQ", "cited_text": "14 C, sunny"}]})
write("anthropic_web-search.json", json.dumps(a_message(
    "msg_01WebSearchDemo", ws_content, a_usage(1500, 0, 0, 100, 0, 0, 3, 1)), indent=2) + "\n")

blocks = []
for i, q in enumerate(["weather Paris today", "Paris forecast", "Paris humidity"]):
    blocks.append(("server_tool_use", {"type": "server_tool_use", "id": f"srvtoolu_1{i}", "name": "web_search", "input": {}},
                   [{"type": "input_json_delta", "partial_json": ""},
                    {"type": "input_json_delta", "partial_json": dump({"query": q})}]))
    blocks.append(("web_search_tool_result", {"type": "web_search_tool_result", "tool_use_id": f"srvtoolu_1{i}",
                                              "content": search_result}, []))
blocks.append(("text", {"type": "text", "text": ""}, [{"type": "text_delta", "text": "It is 14 °C"},
                                                      {"type": "text_delta", "text": " and sunny in Paris."}]))
write("anthropic_stream_web-search.sse", a_stream("msg_01WebSearchDemo2", a_usage(1500, 0, 0, 1, 0, 0),
    blocks, {"input_tokens": 1500, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "output_tokens": 100, "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 0}}))

# ---------------------------------------------------------------- Gemini audio input
def g_usage(final):
    u = {"promptTokenCount": 1000, "candidatesTokenCount": 50 if final else 20, "totalTokenCount": 1150 if final else 1120,
         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 200}, {"modality": "AUDIO", "tokenCount": 800}],
         "thoughtsTokenCount": 100}
    if final:
        u["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": 50}]
    u["serviceTier"] = "standard"
    return u

write("gemini_audio.json", json.dumps({
    "candidates": [{"content": {"parts": [{"text": "The speaker asks for directions to the Louvre and thanks the driver."}],
                                "role": "model"}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": g_usage(True), "modelVersion": "gemini-2.5-flash", "responseId": "aUdioDemoResp01"}, indent=2) + "\n")
g = []
g.append({"candidates": [{"content": {"parts": [{"text": "The speaker asks for directions"}], "role": "model"}, "index": 0}],
          "usageMetadata": g_usage(False), "modelVersion": "gemini-2.5-flash", "responseId": "aUdioDemoResp02"})
g.append({"candidates": [{"content": {"parts": [{"text": " to the Louvre and thanks the driver."}], "role": "model"},
                          "finishReason": "STOP", "index": 0}],
          "usageMetadata": g_usage(True), "modelVersion": "gemini-2.5-flash", "responseId": "aUdioDemoResp02"})
write("gemini_stream_audio.sse", "".join(f"data: {dump(c)}\r\n\r\n" for c in g))

# ---------------------------------------------------------------- OpenRouter BYOK (JSON)
write("openrouter_byok.json", json.dumps({
    "id": "gen-1764590400-ByokDemo0001", "provider": "Anthropic", "model": "anthropic/claude-sonnet-4.5",
    "object": "chat.completion", "created": 1764590400,
    "choices": [{"logprobs": None, "finish_reason": "stop", "native_finish_reason": "stop", "index": 0,
                 "message": {"role": "assistant", "content": "Paris.", "refusal": None, "reasoning": None}}],
    "usage": {"prompt_tokens": 43, "completion_tokens": 36, "total_tokens": 79, "cost": 0.00003345, "is_byok": True,
              "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "cost_details": {"upstream_inference_cost": 0.000669, "upstream_inference_prompt_cost": 0.000129,
                               "upstream_inference_completions_cost": 0.00054},
              "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0}}}, indent=2) + "\n")
