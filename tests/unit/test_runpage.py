"""report.html from result.json: the SVG timeline, the page, the runs' page, bad input."""

import json
import re

import pytest

from harness import runpage
from harness.errors import HalabError
from tests.unit.run_result import ADVERTS, result


def test_the_page_is_self_contained_and_escapes_what_the_lab_wrote():
    r = result()
    r["agent_events"][1]["reason"] = "<script>alert(1)</script>"
    page = runpage.render(r)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch
    assert page.count("<svg") == 1 and "Why the outage lasted this long" in page
    assert "<title>outage 3500 ms</title>" in page and "takeover due: Master_Down_Interval" in page


def test_the_timeline_draws_one_mark_per_pixel_and_row_and_the_events_of_the_run():
    svg = runpage.timeline_svg(result(requests=4000))
    marks = re.findall(r'<rect x="(\d+)" y="([\d.]+)" width="2"', svg)
    assert len(marks) == len(set(marks)) <= 3 * (runpage.WIDTH + 1)
    assert svg.count("<line") == 1 + 1  # the takeover and the fault (the election 5 s before the run is left out)
    assert "master down timer expired" in svg


def test_a_runs_directory_gets_a_page_of_outages_and_one_per_run(tmp_path):
    for i, outage in enumerate((3.2, 3.6, None, 3.4), 1):
        (tmp_path / f"run-{i}").mkdir()
        (tmp_path / f"run-{i}" / "result.json").write_text(json.dumps(result(outage=outage)))
    page = runpage.write(tmp_path).read_text()
    assert "median 3400 ms, from 3200 ms to 3600 ms; 1 run(s) never recovered" in page
    assert page.count('href="run-') == 4 and all((tmp_path / f"run-{i}" / "report.html").exists() for i in range(1, 5))


@pytest.mark.parametrize(("content", "said"), [(None, "has no result.json"), ("{", "JSONDecodeError"),
                                               ('{"fault": {}}', "KeyError")])
def test_bad_run_directories_are_one_clear_error(tmp_path, content, said):
    if content is not None:
        (tmp_path / "result.json").write_text(content)
    with pytest.raises(HalabError) as caught:
        runpage.write(tmp_path)
    assert said in caught.value.problem and str(tmp_path) in caught.value.problem


def test_the_adverts_show_as_ticks_and_the_backups_timer_as_a_line():
    r = result()
    r["adverts"] = ADVERTS
    svg = runpage.timeline_svg(r)
    assert svg.count("<title>advert from server1</title>") == 2  # the one 2.4 s before is off the timeline
    assert svg.count("<title>advert from server2</title>") == 2
    assert "Master_Down_Interval runs out, after the last advert it heard: 3.209 s" in svg


@pytest.mark.parametrize(("first", "last", "ticks"), [
    (-2.0, 8.0, [-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
    (-0.1, 0.3, [-0.1, -0.05, 0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]),
    (-0.02, 0.07, [-0.02, -0.01, 0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]),
    (-3.0, 12.0, [-2, 0, 2, 4, 6, 8, 10, 12]),
    (0.0, 0.9, [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
    (0.0, 5.5, [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5]),
    (-10, 50, [-10, -5, 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]),
    (0, 100, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]),
    (0, 300, [0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300]),
    (0, 700, [0, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 660]),
    (0, 3000, [0, 300, 600, 900, 1200, 1500, 1800, 2100, 2400, 2700, 3000])])
def test_the_time_axis_has_at_most_a_dozen_round_ticks_within_the_run(first, last, ticks):
    assert runpage._ticks(first, last) == pytest.approx(ticks)


def test_the_page_has_the_result_the_events_the_parameters_and_the_extra_sections():
    r = result()
    r["sync"] = {"method": "tar", "writes": {"p50": 0.5, "p99": 1.2}, "lags": list(range(20))}
    page = runpage.render(r)
    for row in ("<th>outage</th><td>3500 ms</td>", "<th>requests unanswered</th><td>14 of 40</td>",
                "<th>served by</th><td>server1 -&gt; server2</td>",
                "<th>first good reply after the fault</th><td>3500 ms",
                "<th>advert_int</th><td>1</td>", "<th>halab</th><td>0.1.0</td>", "<h2>sync</h2>",
                "<th>writes.p50</th><td>0.5</td>", "<th>method</th><td>tar</td>", "fault at 2026-11-28T01:00:00Z",
                '<td class="n">+3.490 s</td><td>server2</td><td>halab-vrrp</td><td>VI_1</td>'
                "<td>BACKUP &rarr; MASTER</td><td>master down timer expired</td>"):
        assert row in page, row
    assert "lags" not in page  # a long list stays in result.json
    assert "<h2>database</h2>" not in page
    assert runpage.render(result(events=[])).count("No agent logged a change of state.") == 1


def test_the_timeline_names_its_rows_bands_and_axis():
    svg = runpage.timeline_svg(result())
    for part in (">no reply</text>", ">server1</text>", ">server2</text>", "<title>outage 3500 ms</title>",
                 "<title>takeover due: Master_Down_Interval 3 x 1 s + skew 0.61 s = 3.61 s</title>",
                 "<title>the fault</title>", ">0 s</text>", ">7 s</text>",
                 "<title>+3.490 s server2 VI_1: BACKUP -&gt; MASTER (master down timer expired)</title>"):
        assert part in svg, part
    assert runpage.timeline_svg({**result(), "timeline": []}) == "<p>No requests were recorded.</p>"
    # rows from the bottom: "no reply" lowest, then each server
    labels = re.findall(r'<text x="\d+" y="([\d.]+)" text-anchor="end">(\w[\w ]*)</text>', svg)
    ys = {name: float(y) for y, name in labels}
    assert ys["no reply"] > ys["server1"] > ys["server2"]


def test_the_runs_page_sorts_runs_by_number_and_draws_a_dot_per_recovered_run(tmp_path):
    for i in (1, 2, 10):
        (tmp_path / f"run-{i}").mkdir()
        (tmp_path / f"run-{i}" / "result.json").write_text(json.dumps(result(outage=i / 10)))
    page = runpage.write(tmp_path).read_text()
    assert re.findall(r'href="(run-\d+)/report.html"', page) == ["run-1", "run-2", "run-10"]
    assert "<title>active-standby: 3 runs of cut-link server1-s1</title>" in page
    assert page.count("<circle") == 3 and "<title>run-10: 1000 ms</title>" in page
    assert "<title>median 200 ms</title>" in page and "median 200 ms, from 100 ms to 1000 ms; 0 run(s)" in page
    assert '<td class="n">100 ms</td><td class="n">' in page
