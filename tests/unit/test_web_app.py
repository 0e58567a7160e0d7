"""The live view's web application: what it serves, and who may break the lab through it.
The lab behind it is a stand-in here (what it would do is logic); tests/lab/test_web.py has the real one."""

import json

import pytest
from starlette.testclient import TestClient

from harness.errors import HalabError
from harness.web import app
from harness.web.source import MAX_PAGES, LabSource

TOKEN = "s3cret-token"


class Recording(LabSource):
    """A lab source that remembers the faults it was asked for instead of sending them."""

    def __init__(self) -> None:
        super().__init__({"socket": "/nonexistent/lab.sock", "topology": "active-standby", "event_logs": []})
        self.sent: list[list[str]] = []

    async def _send(self, argv):
        self.sent.append(argv)
        return 0, "cut server1-s1"


def client(allow_faults=True, source=None):
    source = source or Recording()
    return source, TestClient(app.create(source, TOKEN, allow_faults, ["testserver", "127.0.0.1"]))


def post(c, argv, token=TOKEN, **kw):
    return c.post("/fault", content=json.dumps({"argv": argv}), headers={"X-Halab-Token": token} if token else {},
                  **kw)


def test_the_page_is_whole_and_says_whether_it_has_buttons():
    for allow in (True, False):
        _, c = client(allow)
        r = c.get("/")
        assert r.status_code == 200 and "<script>" in r.text and "EventSource" in r.text and "canvas" in r.text
        assert f"const ALLOW_FAULTS = {'true' if allow else 'false'};" in r.text
        assert "http://" not in r.text.replace('"http://www.w3.org/2000/svg"', "")  # nothing fetched from elsewhere
        assert "connect-src 'self'" in r.headers["content-security-policy"]
        assert TOKEN not in r.text


def test_a_fault_with_the_token_reaches_the_lab():
    source, c = client()
    r = post(c, ["fault", "link-cut", "server1"])
    assert r.status_code == 200 and r.json() == {"rc": 0, "out": "cut server1-s1"}
    assert source.sent == [["fault", "link-cut", "server1"]]


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", "", "s3cret-tökén"])
def test_a_fault_without_the_right_token_is_refused_and_changes_nothing(token):
    source, c = client()
    r = c.post("/fault", content=json.dumps({"argv": ["fault", "link-cut", "server1"]}),
               headers={"X-Halab-Token": token.encode()} if token else {})
    assert r.status_code == 403 and "token" in r.json()["out"]
    assert source.sent == []


def test_without_allow_faults_even_the_token_does_not_help():
    source, c = client(allow_faults=False)
    r = post(c, ["fault", "crash", "server1"])
    assert r.status_code == 403 and "--allow-faults" in r.json()["out"] and source.sent == []


@pytest.mark.parametrize(("argv", "said"), [(["down"], "Only `fault"), (["exec", "server1"], "Only `fault"),
                                            (["fault", "explode", "server1"], "invalid choice"),
                                            (["fault", "flap", "server1", "--count", "100000"], "but flap"),
                                            (["fault"], "fault"), ([], "Only `fault")])
def test_only_well_formed_fault_verbs_are_sent(argv, said):
    source, c = client()
    r = post(c, argv)
    assert r.status_code == 400 and said in r.json()["out"] and source.sent == []


def test_bad_bodies_and_big_ones_are_refused():
    source, c = client()
    headers = {"X-Halab-Token": TOKEN}
    assert c.post("/fault", content=b"{not json", headers=headers).status_code == 400
    assert c.post("/fault", content=b'{"argv": "fault crash server1"}', headers=headers).status_code == 400
    big = json.dumps({"argv": ["fault", "crash", "x" * 5000]})
    assert c.post("/fault", content=big, headers=headers).status_code == 413
    assert c.get("/fault").status_code == 405
    assert source.sent == []


def test_another_host_name_is_refused_as_dns_rebinding_would_send_it():
    _, c = client()
    assert c.get("/", headers={"Host": "evil.example:8000"}).status_code == 400
    assert c.get("/", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_the_stream_starts_with_what_is_known_and_ends_when_the_lab_is_gone():
    source = Recording()
    source.status = {"topology": "active-standby", "vip": {"claimed_by": ["server1"]}}
    source.events.append({"wall": 1.0, "host": "server1", "source": "halab-vrrp", "subject": "VI_1", "from": None,
                          "to": "MASTER", "reason": "priority 200"})
    source.gone.set()
    _, c = client(source=source)
    with c.stream("GET", "/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        messages = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert [m["type"] for m in messages] == ["hello", "status", "event", "gone"]  # hello: the page starts over
    assert messages[2]["replay"] is True and messages[1]["vip"]["claimed_by"] == ["server1"]
    assert source.hub.queues == set()  # the page's queue went with it


def test_a_page_too_many_is_refused():
    source = Recording()
    for _ in range(MAX_PAGES):
        assert source.hub.subscribe() is not None
    _, c = client(source=source)
    assert c.get("/stream").status_code == 503


def test_a_lab_that_does_not_answer_is_an_answer_not_an_error():
    class Silent(Recording):
        async def _send(self, argv):
            raise HalabError("The lab did not answer within 60 s.", "See `halab ls`.")

    _, c = client(source=Silent())
    r = post(c, ["fault", "crash", "server1"])
    assert r.status_code == 400 and r.json()["out"] == "The lab did not answer within 60 s. See `halab ls`."


def test_the_page_may_not_be_framed_or_sniffed():
    _, c = client()
    r = c.get("/")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
