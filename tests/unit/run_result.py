"""A small result.json, as a run of the active-standby scenario writes it, for the report's tests."""

T0 = 1000.0
#: server1 advertised every second until 0.4 s before the cut; server2 started once master.
ADVERTS = [{"at": T0 - 2.4 + i, "host": "server1"} for i in range(3)] + [
    {"at": T0 + 3.5 + i, "host": "server2"} for i in range(2)]


def result(outage=3.5, events=None, options=None, requests=40, scenario="active-standby"):
    """A small result.json: requests every 0.25 s from -2 s, unanswered during the outage."""
    timeline = []
    for i in range(requests):
        sent = T0 - 2 + i * 0.25
        lost = sent >= T0 if outage is None else T0 <= sent < T0 + outage
        server = None if lost else ("server1" if sent < T0 else "server2")
        timeline.append({"seq": i, "sent": sent, "replied": None if lost else sent + 0.001, "server": server,
                         "error": "timeout" if lost else None})
    return {"scenario": scenario, "options": options or {"advert_int": 1.0, "fault": "link-cut", "agent": "halab"},
            "fault": {"kind": "cut-link", "target": "server1-s1", "at": T0},
            "outcome": {"outage": outage, "outage_start": T0 if outage is not None else None,
                        "first_good_after": outage, "lost": sum(r["server"] is None for r in timeline),
                        "requests": requests, "server_before": "server1",
                        "server_after": "server2" if outage is not None else None, "last_failure_after": outage},
            "agent_events": events if events is not None else [
                {"at": T0 - 5, "host": "server1", "source": "halab-vrrp", "subject": "VI_1", "old": "BACKUP",
                 "state": "MASTER", "reason": "priority 200 > 100"},
                {"at": T0 + 3.49, "host": "server2", "source": "halab-vrrp", "subject": "VI_1", "old": "BACKUP",
                 "state": "MASTER", "reason": "master down timer expired"}],
            "timeline": timeline, "about": {"fault_utc": "2026-11-28T01:00:00Z", "versions": {"halab": "0.1.0"}}}
