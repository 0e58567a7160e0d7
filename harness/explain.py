"""Why an outage lasted as long as it did, in words a student can check against the timeline:
the fault, what the protocol makes the standby wait and from when, what the agents did, what the
client saw, and the outage taken apart into those pieces. Pure: a result.json in, sentences out.
"""

from __future__ import annotations

from harness.report import detection_window, settings, timer_runs_out

#: The takeover, as an agent reports it: the states that mean "I serve now".
SERVING = ("MASTER", "ACTIVE", "primary", "leader")


def explain(result: dict) -> list[str]:
    """Why the outage was as long as it was: the fault, what the protocol makes the standby wait,
    what the agents did, what the client saw."""
    options, fault, out = result["options"], result["fault"], result["outcome"]
    t0 = fault["at"]
    lines = [f"The fault: {fault['kind']} {fault['target']} at 0 s; the pace is set by {settings(options)}."]
    window = detection_window(options)
    if window is not None:
        start, end, why = window
        since = ("the last advert the backup heard, which left up to one advert_int before the fault"
                 if "advert_int" in options else "the last beat heard, up to one interval before the fault"
                 if "interval" in options else "the first failed check, up to one interval after the fault")
        lines.append(f"By the protocol the takeover is due {start:.2f} to {end:.2f} s after the fault, counted from "
                     f"{since}: {why}.")
        runs_out = timer_runs_out(options, t0, result.get("adverts"), out["server_before"])
        if runs_out is not None:
            lines.append(f"Here the last advert from {out['server_before']} reached the client at "
                         f"{runs_out - end - t0:+.3f} s, so the backup's timer ran out at {runs_out - t0:.3f} s.")
    after = [e for e in result["agent_events"] if e["at"] >= t0]
    takeover = next((e for e in after if e["state"] in SERVING), after[0] if after else None)
    if takeover is not None:
        what = (f"{takeover['source']} {takeover['subject']}: {takeover['old'] or '-'} -> {takeover['state']}, "
                f"because \"{takeover['reason']}\"")
        lines.append(f"{takeover['host']} took over at {takeover['at'] - t0:.3f} s ({what})."
                     if takeover["state"] in SERVING else
                     f"The first agent to react, at {takeover['at'] - t0:.3f} s: {what}.")
    if out["outage"] is None:
        lines.append(f"The client was never served again after the fault ({out['lost']} of {out['requests']} "
                     "requests unanswered).")
        return lines
    start = out["outage_start"] - t0
    lines.append(f"The client saw an outage of {out['outage'] * 1000:.0f} ms, from {start:.3f} to "
                 f"{start + out['outage']:.3f} s: {out['lost']} of {out['requests']} requests unanswered, served by "
                 f"{out['server_before']} before and {out['server_after']} after.")
    if takeover is not None and takeover["state"] in SERVING:
        end = out["outage_start"] + out["outage"]
        parts = ((t0 - out["outage_start"], "from the last answered request to the fault"),
                 (takeover["at"] - t0, "from the fault to the takeover"),
                 (end - takeover["at"], "from the takeover to the first request answered after the outage"
                  + (": it had left before the takeover was logged" if end < takeover["at"] else "")))
        lines.append(f"So the outage, {out['outage'] * 1000:.0f} ms, is "
                     + " ".join(f"{ms * 1000:+.0f} ms {why}" for ms, why in parts) + ".")
    return lines
