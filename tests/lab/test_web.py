"""The live view in a real browser (Debian's chromium, headless): a running active-standby lab,
its master's link cut from the CLI and from the page's button, the VIP seen moving, the outage in
the strip; faults refused without the token; `halab web` for a lab already up stops with it."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from tests.lab.browser import chromium, console_errors
from tests.lab.helpers import fast_lab, wait_until
from tests.lab.test_up import HALAB, REPO, halab, nothing_left

pytestmark = [pytest.mark.mininet, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seen(driver) -> dict:
    """What the page shows now."""
    return driver.execute_script("""
        const text = (id) => document.getElementById(id).textContent;
        return {holder: text('vip-holder'), answering: text('answering'), lost: Number(text('lost')),
                outage: text('outage'), last_outage: text('last-outage'), connection: text('connection'),
                links: Object.fromEntries([...document.querySelectorAll('line[data-link]')]
                                          .map((l) => [l.dataset.link, l.dataset.state])),
                unanswered: [...window.halab.buckets.values()].filter((b) => b.lost > 0).length,
                shown: window.halab.latencies,
                events: [...document.querySelectorAll('#events li')].map((li) => li.textContent),
                answer: document.getElementById('control-answer').textContent};""")


def wait_for(driver, what, timeout: float, why: str) -> dict:
    assert wait_until(lambda: what(seen(driver)), timeout, 0.05), f"{why}; the page shows {seen(driver)}"
    return seen(driver)


def serving(driver, server: str) -> dict:
    return wait_for(driver, lambda s: s["holder"] == server and s["answering"] == server, 20,
                    f"{server} did not show as holding and answering")


def post_fault(url: str, argv: list[str], headers: dict[str, str]) -> int:
    request = urllib.request.Request(url.split("#")[0] + "fault", data=json.dumps({"argv": argv}).encode(),
                                     headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_report_html_of_runs_opens_offline_with_its_table_timeline_and_explanation(tmp_path):
    done = halab("run", "active-standby", "--advert-int", "0.1", "--before", "0.5", "--after", "1", "--runs", "2",
                 "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    base = next(tmp_path.glob("*-active-standby"))
    run1 = base / "run-1" / "report.html"
    built = run1.read_text()
    run1.unlink()
    assert halab("report", str(base)).returncode == 0 and run1.read_text() == built  # rebuilt from result.json
    driver = chromium()
    try:
        driver.get(run1.as_uri())
        text = driver.find_element("tag name", "body").text
        assert "Master_Down_Interval 3 x 0.1 s" in text and "server2 took over at" in text
        assert "master down timer expired" in text  # the events, with their reasons
        marks = driver.find_elements("css selector", "svg rect[width='2']")
        assert len(marks) > 100  # the requests on the timeline
        assert driver.find_element("css selector", "svg title").get_attribute("textContent").startswith("outage")
        driver.save_screenshot(str(base / "report-run-1.png"))
        assert console_errors(driver) == []
        driver.get((base / "report.html").as_uri())
        assert "2 runs of cut-link server1-s1" in driver.title
        assert len(driver.find_elements("css selector", "svg circle")) == 2 and console_errors(driver) == []
    finally:
        driver.quit()


# --- a lab with the view and its fault buttons, shared by the tests below (it is torn down after the last) ---


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The lab with its own view (`up --web --allow-faults`), and a second view started apart
    (`halab web`, no buttons), as a teacher would for a lab already up."""
    out = tmp_path_factory.mktemp("web")
    up = halab("up", "-f", fast_lab(out), "--detach", "--web", "--web-port", str(free_port()), "--allow-faults",
               "--out", str(out))
    assert up.returncode == 0, up.stderr
    url = re.search(r"live view: (\S+)", up.stderr).group(1)
    assert "#token=" in url
    port = free_port()
    apart = subprocess.Popen([*HALAB, "web", "--port", str(port)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert apart.stdout is not None
    apart_url = apart.stdout.readline().split()[-1]
    driver = chromium()
    try:
        yield SimpleNamespace(url=url, out=out, driver=driver, apart=apart, apart_url=apart_url, port=port)
    finally:
        driver.quit()
        if apart.poll() is None:
            apart.kill()
        halab("down")
    assert nothing_left() == []


def open_page(lab) -> None:
    lab.driver.get(lab.url)
    serving(lab.driver, "server1")


def took_over(lab) -> dict:
    """server2 holds the VIP and answers; the page showed its MASTER event within 1 s of the event."""
    shown = serving(lab.driver, "server2")
    master = [e for e in shown["shown"] if e["host"] == "server2" and e["to"] == "MASTER"]
    assert master and master[-1]["ms"] < 1000, shown["shown"]
    # The strip: the requests sent while nobody held the VIP are marked unanswered (a timeout late).
    return wait_for(lab.driver, lambda s: s["unanswered"] > 0 and s["last_outage"] != "none", 5,
                    "no unanswered gap in the strip")


def back_to_server1(lab, restore) -> None:
    restore()
    wait_for(lab.driver, lambda s: set(s["links"].values()) == {"up"}, 5, "the links did not show up again")
    serving(lab.driver, "server1")


def test_a_cut_from_the_cli_shows_on_the_page_the_link_red_the_vip_moving_and_the_gap(lab):
    open_page(lab)
    assert halab("fault", "link-cut", "server1").returncode == 0
    wait_for(lab.driver, lambda s: s["links"].get("server1-s1") == "cut", 1.0, "the cut link did not turn red in 1 s")
    shown = took_over(lab)
    assert any("fault link-cut server1" in e for e in shown["events"])  # the CLI's action is in the feed
    lab.driver.save_screenshot(str(lab.out / "web-cut-from-cli.png"))
    assert console_errors(lab.driver) == []
    back_to_server1(lab, lambda: halab("fault", "restore"))


def test_the_teachers_button_cuts_the_link_and_restores_it(lab):
    open_page(lab)
    lab.driver.find_element("css selector", 'button[data-argv="fault link-cut server1 s1"]').click()
    wait_for(lab.driver, lambda s: s["links"].get("server1-s1") == "cut", 2.0, "the button's cut did not show")
    shown = took_over(lab)
    assert shown["answer"].startswith("fault link-cut server1 s1: cut server1-s1")
    lab.driver.save_screenshot(str(lab.out / "web-cut-from-button.png"))
    back_to_server1(lab, lambda: lab.driver.find_element("css selector", 'button[data-argv="fault restore"]').click())
    assert console_errors(lab.driver) == []


def test_a_fault_without_the_token_is_refused_and_changes_nothing(lab):
    token = lab.url.split("#token=")[1]
    for headers in ({}, {"X-Halab-Token": "not-" + token}, {"X-Halab-Token": token, "Host": "evil.example"}):
        assert post_fault(lab.url, ["fault", "crash", "server1"], headers) in (400, 403)
    status = json.loads(halab("status", "--json").stdout)
    assert status["faults"]["crashed"] == [] and status["faults"]["cut"] == []
    assert post_fault(lab.url, ["fault", "restore"], {"X-Halab-Token": token}) == 200  # a request with it passes


def test_a_view_started_apart_has_no_buttons_and_a_taken_port_is_one_clear_error(lab):
    url = lab.apart_url
    assert url == f"http://127.0.0.1:{lab.port}/"  # no --allow-faults: no token, no buttons
    lab.driver.get(url)
    serving(lab.driver, "server1")
    assert lab.driver.execute_script("return document.getElementById('controls-box').hidden") is True
    assert post_fault(url, ["fault", "crash", "server1"], {"X-Halab-Token": "anything"}) == 403
    refused = halab("web", "--port", str(lab.port))  # taken by the view above
    assert refused.returncode == 2 and "in use" in refused.stderr and "--port" in refused.stderr
    assert "Traceback" not in refused.stderr and console_errors(lab.driver) == []


def test_the_views_stop_when_the_lab_goes_down(lab):
    """Last of the module: it takes the lab down, as `halab down` from another terminal would."""
    lab.driver.get(lab.apart_url)
    serving(lab.driver, "server1")
    assert halab("down").returncode == 0
    wait_for(lab.driver, lambda s: s["connection"] == "the lab is down", 10, "the page did not say the lab is down")
    assert lab.apart.wait(10) == 0 and "live view stopped: the lab is down" in lab.apart.stdout.read()
