"""`q3vl serve` at the HTTP level: SSE framing as curl sees it, hostile and malformed
bodies (each the right 4xx, the server still serving after), the media policy (paths,
symlinks, `..`, remote media against a loopback server), routes and shutdown."""
import base64
import http.client
import http.server
import json
import os
import signal
import struct
import subprocess
import threading
import time
import zlib

import pytest

from conftest import EXE, MEDIA, MODEL, SOURCE, Server, data_url

BODY_LIMIT = 1 << 20


@pytest.fixture(scope="module")
def media_dir(scratch):
    d = scratch / "allowed"
    d.mkdir(exist_ok=True)
    (d / "small.png").write_bytes((MEDIA / "small_120x64.png").read_bytes())
    outside = scratch / "outside.png"
    outside.write_bytes((MEDIA / "small_120x64.png").read_bytes())
    link = d / "link.png"
    if not link.exists():
        os.symlink(outside, link)
    return d


@pytest.fixture(scope="module")
def remote():
    """A loopback HTTP server for --allow-remote-media: /ok.png, /big.png, /slow.png."""
    png = (MEDIA / "small_120x64.png").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/slow.png":
                time.sleep(3)
            body = png if self.path != "/big.png" else png + b"\0" * 300000
            self.send_response(200 if self.path != "/missing.png" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def srv(package, media_dir):
    s = Server(package, "--allowed-media-path", media_dir, "--allow-remote-media", "--max-remote-media-bytes", 100000,
               "--remote-media-timeout-ms", 1000, "--max-body-bytes", BODY_LIMIT, "--max-images-per-request", 2,
               "--max-pixels", 1000000, "--log-format", "json", "--parallel", 2, "--ctx-per-slot", 1024)
    yield s
    assert s.stop() == 0, "\n".join(s.log)


def post(srv, body, path="/v1/chat/completions", raw=False):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    data = body if raw else json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    payload = r.read()
    conn.close()
    return r.status, payload


def chat(content, **kw):
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 4, "temperature": 0, **kw}


def image_part(url):
    return [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}]


def png_bytes(width, height):
    raw = b"".join(b"\0" + b"\x80" * (3 * width) for _ in range(height))
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def assert_error(status, payload, expected_status, param=None):
    assert status == expected_status, payload
    error = json.loads(payload)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert error["param"] == param, error
    return error


def assert_serving(srv):
    status, payload = post(srv, chat("hello"))
    assert status == 200, payload
    assert json.loads(payload)["choices"][0]["message"]["role"] == "assistant"


def test_sse_framing_with_curl(srv):
    body = json.dumps(chat("Stream please.", stream=True, max_tokens=8, stream_options={"include_usage": True}))
    r = subprocess.run(["curl", "-sS", "-N", "-D", "-", "-H", "Content-Type: application/json", "-d", body,
                        srv.url + "/v1/chat/completions"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    head, _, stream = r.stdout.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200")
    assert "content-type: text/event-stream" in head.lower()
    events = stream.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    chunks = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(e.startswith("data: {") for e in events[:-2])
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1


@pytest.mark.parametrize("name,body,status,param", [
    ("truncated JSON", b'{"messages": [{"role": "user", "content": "hi"', 400, None),
    ("not JSON", b"\xff\xfe garbage", 400, None),
    ("deep nesting", b'{"messages": ' + b"[" * 50000 + b"]" * 50000 + b"}", 400, None),
    ("wrong type", json.dumps(chat("hi", max_tokens="many")).encode(), 400, "max_tokens"),
    ("wrong content type", json.dumps({"messages": [{"role": "user", "content": {"a": 1}}]}).encode(), 400,
     "messages[0].content"),
    ("unknown field", json.dumps(chat("hi", best_of=3)).encode(), 400, "best_of"),
    ("huge body", json.dumps(chat("x" * (BODY_LIMIT + 10))).encode(), 413, None),
    ("bad base64", json.dumps(chat(image_part("data:image/png;base64,@@@@"))).encode(), 400,
     "messages[0].content[0].image_url.url"),
    ("base64 of garbage", json.dumps(chat(image_part("data:image/png;base64," + base64.b64encode(b"nope" * 9).decode()))).encode(),
     400, "messages[0].content[0].image_url.url"),
    ("1x100000 image", json.dumps(chat(image_part("data:image/png;base64," + base64.b64encode(png_bytes(1, 100000)).decode()))).encode(),
     413, "messages[0].content[0].image_url.url"),
    ("too many pixels", json.dumps(chat(image_part("data:image/png;base64," + base64.b64encode(png_bytes(1200, 1000)).decode()))).encode(),
     413, "messages[0].content[0].image_url.url"),
])
def test_hostile_bodies_get_the_right_4xx(srv, name, body, status, param):
    assert_error(*post(srv, body, raw=True), status, param)
    assert_serving(srv)


def test_routes_and_methods(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/v1/nothing")
    r = conn.getresponse()
    assert_error(r.status, r.read(), 404)
    conn.request("GET", "/")
    r = conn.getresponse()
    page = r.read().decode()
    assert r.status == 200 and "<title>q3vl chat</title>" in page and "http" not in page.split("<script>")[0].replace(
        "http-equiv", "")
    conn.request("GET", "/health")
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}
    conn.close()


def test_media_policy(srv, media_dir, scratch, remote):
    ok = str(media_dir / "small.png")
    assert post(srv, chat(image_part(ok)))[0] == 200
    assert post(srv, chat(image_part("file://" + ok)))[0] == 200
    field = "messages[0].content[0].image_url.url"
    for url in [str(media_dir / "link.png"),                      # symlink to a file outside
                str(media_dir / ".." / "outside.png"),            # ..
                str(media_dir) + "/../allowed/small.png",         # .. even when it lands inside
                str(scratch / "outside.png"),                      # outside
                str(media_dir / "missing.png"),
                "small.png"]:                                      # relative
        assert_error(*post(srv, chat(image_part(url))), 400, field)
    assert_error(*post(srv, chat(image_part(ok) + image_part(ok) + image_part(ok))), 413,
                 "messages[0].content[4].image_url.url")
    # Remote media: fetched from the loopback server within the size and time limits.
    assert post(srv, chat(image_part(remote + "/ok.png")))[0] == 200
    assert_error(*post(srv, chat(image_part(remote + "/big.png"))), 413, field)
    assert_error(*post(srv, chat(image_part(remote + "/slow.png"))), 400, field)
    assert_error(*post(srv, chat(image_part(remote + "/missing.png"))), 400, field)
    assert_serving(srv)


def test_pixel_limit_of_images_and_video_frames_is_413_naming_the_field(package, srv, scratch, monkeypatch):
    """--max-pixels reaches the runtime's decoders (each medium is decoded once, there),
    which check it from the header: a 413 naming the request field, for an image data:
    URL, a video data: URL and a video by path alike; under the limit they are served."""
    clip = SOURCE / "tests" / "fuzz" / "corpus" / "video" / "h264.mp4"  # 32x24 frames
    video = [{"type": "video_url", "video_url": {"url": "data:video/mp4;base64," +
                                                 base64.b64encode(clip.read_bytes()).decode()}},
             {"type": "text", "text": "?"}]
    image = image_part("data:image/png;base64," + base64.b64encode(png_bytes(32, 24)).decode())
    by_path = [{"type": "video_url", "video_url": {"url": str(MEDIA / "clip_96x72_25f.mov")}}]
    temp = scratch / "server-tmp"  # where the server writes a data: URL video (FFmpeg reads files)
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    s = Server(package, "--allowed-media-path", MEDIA, "--max-pixels", 32 * 24 - 1, "--parallel", 1,
               "--ctx-per-slot", 1024)
    try:
        for content, field in [(image, "messages[0].content[0].image_url.url"),
                               (video, "messages[0].content[0].video_url.url"),
                               (by_path, "messages[0].content[0].video_url.url")]:
            status, payload = post(s, chat(content))
            assert_error(status, payload, 413, field)
            # The message names the field and the limit, not a server-side file.
            assert "/" not in json.loads(payload)["error"]["message"].replace(field, ""), payload
        assert_serving(s)
        assert not list(temp.glob("q3vl-media-*"))  # the refused video's file is gone
    finally:
        assert s.stop() == 0, "\n".join(s.log)
    # srv's --max-pixels 1000000 serves them.
    assert post(srv, chat(image))[0] == 200
    assert post(srv, chat(video))[0] == 200


def test_remote_media_is_off_by_default(server, remote):
    import openai
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="test-key-123", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": image_part(remote + "/ok.png")}])
    assert "--allow-remote-media" in e.value.body["message"]


def test_log_has_one_json_line_per_request(srv):
    before = len(srv.log)
    assert post(srv, chat("log me"))[0] == 200
    deadline = time.time() + 5
    while len(srv.log) == before and time.time() < deadline:
        time.sleep(0.02)
    line = json.loads(srv.log[-1])
    assert line["method"] == "POST" and line["path"] == "/v1/chat/completions" and line["status"] == 200
    assert line["completion_tokens"] >= 1 and line["id"].startswith("chatcmpl-")


def test_503_while_loading_then_200_and_sigint_exits_0(package):
    s = Server(package, wait=False)
    # The model takes well over 0.3 s to load (tokenizer alone); these come right after listen.
    status, payload = post(s, chat("early"))
    assert_error(status, payload, 503)
    assert json.loads(payload)["error"]["code"] == "model_loading"
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    conn.request("GET", "/health")
    r = conn.getresponse()
    assert (r.status, json.loads(r.read())) in [(503, {"status": "loading"}), (200, {"status": "ok"})]
    conn.close()
    s.wait_healthy()
    assert post(s, chat("now"))[0] == 200
    assert s.stop(signal.SIGINT) == 0
    assert any("received SIGINT" in line for line in s.log) and s.log[-1].endswith("stopped")
    assert any("limit --max-pixels" in line for line in s.log) and any("KV cache" in line for line in s.log)


def test_sigterm_while_loading_exits_0(package):
    s = Server(package, wait=False)
    assert s.stop(signal.SIGTERM) == 0
    assert any("received SIGTERM" in line for line in s.log) and s.log[-1].endswith("stopped")


def test_a_package_that_cannot_load_ends_the_server_with_its_error(scratch):
    s = Server(scratch / "no-such-package", wait=False)
    assert s.proc.wait(timeout=30) == 1
    s.reader.join(timeout=5)
    assert any("model failed to load" in line and "no-such-package" in line for line in s.log)


@pytest.mark.parametrize("flag,value", [("--prefill-chunk", "0"), ("--parallel", "0"), ("--ctx-per-slot", "8")])
def test_a_bad_limit_flag_is_a_usage_error_naming_it(package, flag, value):
    out = subprocess.run([str(EXE), "serve", "--model", str(package), "--port", "0", flag, value],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert flag in out.stderr, out.stderr


def test_limits_printed_at_start_include_the_prefill_chunk(package):
    s = Server(package, "--prefill-chunk", 5, "--parallel", 1, "--ctx-per-slot", 256)
    try:
        assert any("--prefill-chunk" in line and line.rstrip().endswith("5") for line in s.log), s.log
    finally:
        assert s.stop() == 0
