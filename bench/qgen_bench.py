#!/usr/bin/env python3
"""Question generation benchmark: svc-qgen through the edge vs two baselines, one run, one fake.

All three drive the same fake LLM (test/fakellm) with the same latency model, set here through
its /_control: a call costs TTFT + completion_tokens / tokens_per_s, everything multiplied by
--scale (0.1 = ten times faster than the modelled provider; printed figures are measured, the
unscaled equivalents are printed beside them). The provider admits --concurrency calls at once
(429 beyond) and writes at most --max-output tokens per answer.

  ours        POST /api/v1/documents/{id}/question-sets, poll GET /api/v1/jobs/{id} every 5 ms
  baseline 1  one question per call, one call after another (what made the old system take
              10-15 minutes), over the passages ours asked about (the fake records each quiz
              prompt), each passage again for its next question (variant) once all were read
  baseline 2  one call asking for all Q questions of those passages (latency grows with Q;
              fails past the output limit)
  bound       ceil(Q / (q*C)) * L, with q the service's questions per call for Q and L one call
              of q questions measured against the same fake: the median over the passages of
              ours' first wave (at most C). An answer's length follows its passage's sentences,
              so baselines timed on other text would time other work.

Then: the same request again (answered from the cache; median of 5), Q=25/100 with 5% of calls
failing (2.5% 429, 2.5% 500/503), and Q=25/100 with a slow tail (--slow-rate of the calls take
--slow-factor times longer: the fake's slow_next, the first of the first wave's calls). Every run of ours reports the duplicates svc-qgen
started for late calls (qgen_hedged_calls_total) and the tokens they cost
(qgen_extra_tokens_total), scraped from both replicas' admin ports, beside the tokens the fake
answered in that run, and the streams it cut off because the set was full
(qgen_streams_cancelled_total). Extra tokens are what the set did not use: duplicates that lost,
spare calls' questions not taken, and what a cut stream wrote after its last question (all of a
call none of whose questions was taken). Standard library only.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

SYSTEM = ("You write quiz questions for students from a passage of their course document. "
          "Answer with one JSON object and nothing else: {\"questions\":[...]}.")


def http(method, url, body=None, headers=None, timeout=600):
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        else:
            data = body
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, raw
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def jbody(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Fake:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def control(self, **kv):
        st, raw = http("POST", self.url + "/_control", kv)
        if st != 200:
            sys.exit("fake refused %s: %s" % (kv, raw[:200]))

    def reset(self, config=False):
        http("POST", self.url + "/_reset", {"config": config})

    def stats(self):
        return jbody(http("GET", self.url + "/_stats")[1])

    def chat(self, count, chunk, page=1, variant=0):
        """One generation call like the service's; returns (seconds, parsed questions or None,
        finish_reason)."""
        user = "COUNT: %d\nTYPE: mcq\nPAGE: %d\nVARIANT: %d\nDIFFICULTY: medium\nTEXT:\n%s" % (
            count, page, variant, chunk)
        body = {"model": "fake", "response_format": {"type": "json_object"}, "temperature": 0.7,
                "messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": user}]}
        t0 = time.monotonic()
        while True:
            st, raw = http("POST", self.url + "/v1/chat/completions", body)
            if st != 429:
                break
            time.sleep(0.05)  # a baseline that respects the provider's concurrency
        dt = time.monotonic() - t0
        if st != 200:
            return dt, None, "http %d" % st
        d = jbody(raw)
        choice = d["choices"][0]
        try:
            qs = json.loads(choice["message"]["content"])["questions"]
        except (ValueError, KeyError, TypeError):
            qs = None
        return dt, qs, choice.get("finish_reason")


def chunks_of(pdf, size=2000):
    text = subprocess.run(["mutool", "draw", "-F", "txt", pdf], capture_output=True,
                          check=True).stdout.decode("utf-8", "replace")
    out, cur = [], []
    n = 0
    for word in text.split():
        cur.append(word)
        n += len(word) + 1
        if n >= size:
            out.append(" ".join(cur))
            cur, n = [], 0
    if cur:
        out.append(" ".join(cur))
    return out


def qgen_counters(admins):
    """qgen_hedged_calls_total and qgen_extra_tokens_total, summed over the replicas."""
    out = {"qgen_hedged_calls_total": 0, "qgen_extra_tokens_total": 0,
           "qgen_streams_cancelled_total": 0}
    for url in admins:
        st, raw = http("GET", url + "/metrics")
        if st != 200:
            continue
        for line in raw.decode("utf-8", "replace").splitlines():
            name, _, val = line.partition(" ")
            if name in out:
                out[name] += int(float(val))
    return out


def hedging(fake, admins, before):
    """(hedged calls, extra tokens, tokens the fake answered) of the run since `before`: waits
    until the fake has no call in flight (a cancelled call is counted once it is drained)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        st = fake.stats()
        if st["inflight"] == 0:
            break
        time.sleep(0.02)
    time.sleep(0.3)  # the runner counts after its drain
    now = qgen_counters(admins)
    return (now["qgen_hedged_calls_total"] - before["qgen_hedged_calls_total"],
            now["qgen_extra_tokens_total"] - before["qgen_extra_tokens_total"],
            st["prompt_tokens"] + st["completion_tokens"],
            now["qgen_streams_cancelled_total"] - before["qgen_streams_cancelled_total"])


class Edge:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.auth = {}

    def login(self):
        cred = {"email": "bench-%s@example.com" % uuid.uuid4(), "password": "benchmark!"}
        st, raw = http("POST", self.url + "/api/v1/auth/register", cred)
        if st != 201:
            sys.exit("register: %d %s" % (st, raw[:200]))
        st, raw = http("POST", self.url + "/api/v1/auth/login", cred)
        if st != 200:
            sys.exit("login: %d %s" % (st, raw[:200]))
        self.auth = {"Authorization": "Bearer " + jbody(raw)["access_token"]}

    def upload(self, pdf):
        with open(pdf, "rb") as f:
            data = f.read()
        st, raw = http("POST", self.url + "/api/v1/documents?filename=bench.pdf", data,
                       dict(self.auth, **{"Content-Type": "application/pdf"}))
        if st not in (200, 201):
            sys.exit("upload: %d %s" % (st, raw[:200]))
        return jbody(raw)

    def generate(self, doc, q, topic):
        """Wall seconds from the POST to the job's end, and the questions."""
        body = {"count": q, "types": ["mcq"], "difficulty": "medium", "topic": topic}
        t0 = time.monotonic()
        st, raw = http("POST", "%s/api/v1/documents/%s/question-sets" % (self.url, doc), body,
                       self.auth)
        if st != 202:
            sys.exit("create: %d %s" % (st, raw[:300]))
        r = jbody(raw)
        while True:
            st, raw = http("GET", "%s/api/v1/jobs/%s" % (self.url, r["job_id"]), None, self.auth)
            job = jbody(raw)
            if job["status"] not in ("queued", "running"):
                break
            if time.monotonic() - t0 > 900:
                sys.exit("job %s did not finish" % r["job_id"])
            time.sleep(0.005)  # the measure's grain; a client would take the WebSocket event
        dt = time.monotonic() - t0
        if job["status"] != "succeeded":
            return dt, None, job.get("error", job["status"])
        st, raw = http("GET", "%s/api/v1/question-sets/%s" % (self.url, r["question_set_id"]),
                       None, self.auth)
        return dt, jbody(raw)["questions"], None

    def cached(self, doc, q, topic):
        body = {"count": q, "types": ["mcq"], "difficulty": "medium", "topic": topic}
        t0 = time.monotonic()
        st, raw = http("POST", "%s/api/v1/documents/%s/question-sets" % (self.url, doc), body,
                       self.auth)
        dt = time.monotonic() - t0
        d = jbody(raw)
        return dt, st == 200 and d.get("cached") is True and len(d.get("questions", [])) == q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edge", default="http://127.0.0.1:28080")
    ap.add_argument("--fake", default="http://127.0.0.1:28500")
    ap.add_argument("--pdf", required=True)
    ap.add_argument("--ttft-ms", type=float, default=1000)
    ap.add_argument("--tokens-per-s", type=float, default=50)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--max-output", type=int, default=4096)
    ap.add_argument("--per-call", type=int, default=5, help="the service's QGEN_PER_CALL")
    ap.add_argument("--counts", default="25,100")
    ap.add_argument("--admins", default="http://127.0.0.1:29104,http://127.0.0.1:29114",
                    help="svc-qgen admin ports (metrics)")
    ap.add_argument("--slow-rate", type=float, default=0.1)
    ap.add_argument("--slow-factor", type=float, default=4)
    a = ap.parse_args()
    admins = a.admins.split(",")

    fake, edge = Fake(a.fake), Edge(a.edge)
    model = dict(ttft_ms=a.ttft_ms, tokens_per_s=a.tokens_per_s, time_scale=a.scale,
                 max_concurrency=a.concurrency, max_output_tokens=a.max_output, retry_after_s=0)
    fake.reset(config=True)
    fake.control(**model)
    chunks = chunks_of(a.pdf)
    edge.login()
    doc = edge.upload(a.pdf)
    print("document: %d pages, %d chunks of ~2000 bytes" % (doc["pages"], len(chunks)))
    print("latency model: TTFT %.0f ms + completion tokens / %.0f tok/s, time scale %.2f "
          "(figures below are measured; x%.0f for the unscaled provider); provider concurrency "
          "C=%d, output limit %d tokens" % (a.ttft_ms, a.tokens_per_s, a.scale, 1 / a.scale,
                                             a.concurrency, a.max_output))
    print("svc-qgen: QGEN_STREAM=%s QGEN_SPARE_PCT=%s QGEN_HEDGE_MAX_EXTRA=%s" % (
        os.environ.get("QGEN_STREAM", "true (default)"),
        os.environ.get("QGEN_SPARE_PCT", "25 (default)"),
        os.environ.get("QGEN_HEDGE_MAX_EXTRA", "25 (default)")))
    rows = []
    for q in [int(x) for x in a.counts.split(",")]:
        per = min(a.per_call, max(1, math.ceil(q / a.concurrency)))

        fake.reset()
        before = qgen_counters(admins)
        ours, qs, err = edge.generate(doc["id"], q, "bench %s" % uuid.uuid4())
        ok = qs is not None and len(qs) == q
        st = fake.stats()
        hedge = hedging(fake, admins, before)
        ours_calls, peak = st["calls"], st["peak_concurrency"]
        # Whatever the schedule, C streams cannot finish sooner than the longest call or the
        # total modelled work divided by C: the bound of this very run's calls.
        secs = st.get("call_seconds") or [0]
        work_bound = max(max(secs), sum(secs) / a.concurrency)
        # The baselines and L read the passages the service asked about (svc-pdf's chunks, in
        # the order of its calls): an answer's length, so a call's time, follows its passage's
        # sentences, and a sample from elsewhere in the document would time other work.
        passages = []
        for c in st.get("quiz_calls", []):
            if (c["page"], c["text"]) not in passages:
                passages.append((c["page"], c["text"]))
        if not passages:  # ours failed before any call: time the baselines on the PDF's text
            passages = [(1 + i, c) for i, c in enumerate(chunks[:a.concurrency])]
        n = len(passages)

        fake.reset()
        wave = passages[:a.concurrency]
        lat = statistics.median(fake.chat(per, t, page=pg)[0] for pg, t in wave)
        bound = math.ceil(q / (per * a.concurrency)) * lat

        t0 = time.monotonic()
        for i in range(q):
            pg, t = passages[i % n]
            fake.chat(1, t, page=pg, variant=i // n)
        b1 = time.monotonic() - t0

        text, size = [], 0
        for _, t in passages:
            if size + len(t) > 24000:
                break
            text.append(t)
            size += len(t)
        b2, b2qs, finish = fake.chat(q, "\n".join(text))
        b2_ok = b2qs is not None and len(b2qs) >= q and finish == "stop"
        b2_why = "" if b2_ok else ("cut at the output limit (finish_reason %s)" % finish
                                   if finish == "length" else "invalid answer")
        rows.append((q, per, ours, ok, err, ours_calls, peak, b1, b2, b2_ok, b2_why, lat, bound,
                     work_bound, max(secs), hedge, len(wave)))

    print()
    print("%4s %3s %9s %9s %22s %8s %8s %8s %9s" % ("Q", "q", "ours s", "b1 s", "b2 s",
                                                    "b1/ours", "b2/ours", "bound s", "ours/bnd"))
    for (q, per, ours, ok, err, calls, peak, b1, b2, b2_ok, b2_why, lat, bound, wb, longest,
         hedge, nwave) in rows:
        b2s = "%.2f" % b2 if b2_ok else "FAILED %.2f" % b2
        print("%4d %3d %9.2f %9.2f %22s %8.1f %8s %8.2f %9.2f   %s" % (
            q, per, ours, b1, b2s, b1 / ours, "%.1f" % (b2 / ours) if b2_ok else "-", bound,
            ours / bound, "" if ok else "OURS FAILED: %s" % err))
        print("      ours: %d calls, peak concurrency %d, L(q=%d) = %.2f s (median of %d calls on its "
              "first wave's passages); its own calls: longest %.2f s, max(longest, work/C) = "
              "%.2f s, ours/that = %.2f; b2: %s" % (
                  calls, peak, per, lat, nwave, longest, wb, ours / wb,
                  "ok" if b2_ok else b2_why))
        print("      extra: %d duplicate call(s), %d stream(s) cut when the set was full, %d "
              "extra tokens (%.1f%% of the %d tokens answered)" % (
                  hedge[0], hedge[3], hedge[1], 100.0 * hedge[1] / max(1, hedge[2]), hedge[2]))

    print()
    topic = "cache %s" % uuid.uuid4()
    edge.generate(doc["id"], 25, topic)
    hits = [edge.cached(doc["id"], 25, topic) for _ in range(5)]
    ms = statistics.median(h[0] for h in hits) * 1000
    print("cache hit (same request again, 25 questions): median %.1f ms of 5, all cached: %s" % (
        ms, all(h[1] for h in hits)))

    print()
    for q in [int(x) for x in a.counts.split(",")]:
        per = min(a.per_call, max(1, math.ceil(q / a.concurrency)))
        row = [r for r in rows if r[0] == q][0]
        bound, clean = row[12], row[2]
        fake.reset()
        fake.control(**model)
        fake.control(fault_429_rate=0.025, fail_rate=0.025)
        ours, qs, err = edge.generate(doc["id"], q, "faults %s" % uuid.uuid4())
        st = fake.stats()
        st.pop("call_seconds", None)
        print("5%% faults, Q=%d: ours %.2f s, %s, %d calls (%s), ours/bound %.2f, %.2fx the "
              "fault-free run" % (
                  q, ours, "exactly %d questions" % q if qs is not None and len(qs) == q else
                  "FAILED: %s" % err, st["calls"], json.dumps(st.get("faults", {})), ours / bound,
                  ours / clean))

    print()
    for q in [int(x) for x in a.counts.split(",")]:
        row = [r for r in rows if r[0] == q][0]
        bound, clean = row[12], row[2]
        fake.reset()
        fake.control(**model)
        # The first slow_rate of the first wave's calls are slow (at least one): the same tail
        # in every run, and the duplicates hedging starts are never slow themselves.
        per = min(a.per_call, max(1, math.ceil(q / a.concurrency)))
        nslow = max(1, round(a.slow_rate * math.ceil(q / per)))
        fake.control(slow_next=nslow, slow_factor=a.slow_factor)
        before = qgen_counters(admins)
        ours, qs, err = edge.generate(doc["id"], q, "slow %s" % uuid.uuid4())
        st = fake.stats()
        hedge = hedging(fake, admins, before)
        print("slow tail (%.0f%% of calls %.0fx slower), Q=%d: ours %.2f s, %s, %d calls (%d "
              "slow), ours/bound %.2f, %.2fx the run without; %d duplicate call(s), %d "
              "stream(s) cut, %d extra tokens (%.1f%% of the %d answered)" % (
                  100 * a.slow_rate, a.slow_factor, q, ours,
                  "exactly %d questions" % q if qs is not None and len(qs) == q else
                  "FAILED: %s" % err, st["calls"], st.get("faults", {}).get("slow", 0),
                  ours / bound, ours / clean, hedge[0], hedge[3], hedge[1],
                  100.0 * hedge[1] / max(1, hedge[2]), hedge[2]))
    fake.reset(config=True)


if __name__ == "__main__":
    main()
