"""`q3vl serve` under load: 8 parallel streams each equal to its solo greedy output, a
client that disconnects mid-stream (or while waiting for a whole reply) frees its slot, a full queue is 429, RSS stays within
the bound the server reports, SIGTERM with a stream in flight exits 0."""
import concurrent.futures
import http.client
import json
import socket
import time

import openai
import pytest

from conftest import API_KEY, MODEL, Server

PROMPTS = ["Name a colour.", "What is 2+2?", "Say something about cats.", "Translate 'hello' to French.",
           "List three fruits.", "Why is the sky blue?", "Write a haiku.", "Describe a chair."]
STEPS = 16


@pytest.fixture(scope="module")
def srv(package):
    # Prompts of ~20 tokens in chunks of 7: every prefill spans several steps interleaved with
    # the other streams' decoding, and the outputs must still equal the solo ones.
    s = Server(package, "--api-key", API_KEY, "--parallel", 8, "--ctx-per-slot", 512, "--prefill-chunk", 7)
    yield s
    assert s.stop() == 0, "\n".join(s.log)


def settled(s, condition, timeout=5):
    """The server's metrics once `condition` holds on them (fails after `timeout` s)."""
    deadline = time.time() + timeout
    while True:
        m = s.metrics()
        if condition(m):
            return m
        assert time.time() < deadline, m
        time.sleep(0.02)


def client_of(s):
    return openai.OpenAI(base_url=s.url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)


def streamed_text(client, prompt):
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                            temperature=0, max_tokens=STEPS, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_eight_parallel_streams_equal_their_solo_output(srv):
    client = client_of(srv)
    solo = [streamed_text(client, p) for p in PROMPTS]
    steps_before = srv.metrics()["q3vl_decode_steps_total"]
    tokens_before = srv.metrics()["q3vl_completion_tokens_total"]
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: streamed_text(client, p), PROMPTS))
    assert together == solo
    # The last response is logged (and counted) just after its final bytes reach the client.
    m = settled(srv, lambda m: m.get('q3vl_http_responses_total{status="200"}') == 2 * len(PROMPTS)
                and m["q3vl_slots_active"] == 0)
    # Batched: fewer decoder calls than tokens generated.
    assert m["q3vl_decode_steps_total"] - steps_before < m["q3vl_completion_tokens_total"] - tokens_before
    # Every request had a first token and STEPS - 1 gaps after it (all ran to max_tokens or a stop token).
    assert m["q3vl_time_to_first_token_seconds_count"] == 2 * len(PROMPTS)
    assert m['q3vl_time_to_first_token_seconds_bucket{le="+Inf"}'] == 2 * len(PROMPTS)
    assert m["q3vl_inter_token_latency_seconds_count"] == m["q3vl_completion_tokens_total"] - 2 * len(PROMPTS)
    assert m['q3vl_http_responses_total{status="200"}'] == 2 * len(PROMPTS)
    assert m["q3vl_slots_total"] == 8 and m["q3vl_slots_active"] == 0 and m["q3vl_queue_depth"] == 0


def raw_stream_request(port, body):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = json.dumps(body).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + API_KEY.encode() + b"\r\nContent-Length: " + str(len(data)).encode()
                 + b"\r\n\r\n" + data)
    return sock


def test_disconnect_mid_stream_frees_the_slot(srv):
    before = srv.metrics().get("q3vl_client_disconnects_total", 0)
    sock = raw_stream_request(srv.port, {"model": MODEL, "messages": [{"role": "user", "content": "Go on forever."}],
                                         "temperature": 0, "max_tokens": 400, "stream": True})
    received = b""
    while received.count(b"data: ") < 3:
        received += sock.recv(4096)
    assert srv.metrics()["q3vl_slots_active"] >= 1
    sock.close()
    m = settled(srv, lambda m: m["q3vl_slots_active"] == 0 and m["q3vl_client_disconnects_total"] > before, 10)
    assert m["q3vl_client_disconnects_total"] == before + 1
    # Far fewer than 400 tokens were made: the generation stopped when the client left.
    assert m["q3vl_completion_tokens_total"] < 400 * 3


def test_disconnect_while_waiting_for_a_whole_reply_frees_the_slot(srv):
    """A non-streamed request has no writes to fail: the server watches its socket."""
    before = srv.metrics()
    sock = raw_stream_request(srv.port, {"model": MODEL, "messages": [{"role": "user", "content": "Go on forever."}],
                                         "temperature": 0, "max_tokens": 400})
    settled(srv, lambda m: m["q3vl_slots_active"] == 1)
    sock.close()
    closed = time.time()
    m = settled(srv, lambda m: m["q3vl_slots_active"] == 0, 10)
    freed = time.time() - closed
    print(f"non-streamed request: slot freed {freed * 1000:.0f} ms after the client closed")
    assert m["q3vl_client_disconnects_total"] == before.get("q3vl_client_disconnects_total", 0) + 1
    # It stopped well before its 400 tokens (the slot freed within a few decode steps).
    assert m["q3vl_completion_tokens_total"] - before["q3vl_completion_tokens_total"] < 400
    assert freed < 2.0


def test_rss_within_the_reported_bound(srv, package):
    m = srv.metrics()
    weights = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
    with open(f"/proc/{srv.proc.pid}/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    # Weights + the KV cache sized at start + ONNX Runtime / tokenizer / HTTP overhead.
    bound = weights + m["q3vl_kv_bytes"] + 400 * 2**20
    assert m["q3vl_kv_bytes"] > 0 and m["q3vl_kv_tokens_capacity"] == 8 * 512
    assert rss <= bound, (rss, bound)


def test_full_queue_is_429_and_sigterm_mid_stream_exits_0(package):
    s = Server(package, "--parallel", 1, "--max-queue", 0, "--ctx-per-slot", 1024)
    try:
        sock = raw_stream_request(s.port, {"model": MODEL, "messages": [{"role": "user", "content": "Long story."}],
                                           "temperature": 0, "max_tokens": 900, "stream": True})
        received = b""
        while received.count(b"data: ") < 2:
            received += sock.recv(4096)
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="none", max_retries=0)
        with pytest.raises(openai.RateLimitError) as e:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert e.value.body["code"] == "queue_full"
        sock.settimeout(30)
        assert s.stop() == 0
        # The in-flight stream was finished or cancelled, and properly closed.
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        assert received.rstrip().endswith(b"data: [DONE]") or b"0\r\n\r\n" in received
        sock.close()
    finally:
        s.stop()
