#!/usr/bin/env python3
"""fakellm.py - an OpenAI-compatible /v1/chat/completions server for tests and benchmarks.

DESIGN. Python 3 standard library only (ThreadingHTTPServer, one thread per connection, HTTP/1.1
keep-alive). Answers are deterministic functions of the prompt: a prompt that follows the quiz
convention (a line "COUNT: N", optional "PAGE: P", and the source text after a line "TEXT:") gets N
multiple-choice questions built from the text's own sentences and key terms; anything else gets an
echo. A latency model (time to first token, tokens per second, a time scale) makes calls cost what
real ones cost; provider limits (max concurrency, requests/min, tokens/min, exhausted quota) answer
429 like OpenAI does; fault injection (5xx, malformed or wrapped JSON, bad bodies, hangs, cut
streams) is drawn from one seeded generator, so a run with a seed is repeatable in its sequence of
faults. Behaviour changes at run time through POST /_control; GET /_stats gives counters, POST
/_reset clears them. Listens on 127.0.0.1 only and exits cleanly on SIGTERM/SIGINT. See README.md.
"""
import argparse
import hashlib
import json
import math
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULTS = {
    "ttft_ms": 0,            # time to first token
    "tokens_per_s": 0,       # output speed; 0 = instant
    "time_scale": 1.0,       # multiplies every modelled delay (0.01 = 100x faster)
    "rpm": 0,                # requests per minute (0 = unlimited)
    "tpm": 0,                # tokens per minute, prompt + completion (0 = unlimited)
    "max_concurrency": 0,    # requests in flight (0 = unlimited)
    "retry_after_s": 1,      # Retry-After sent with a concurrency 429 (and rate_limit_next)
    "rate_limit_next": 0,    # the next N calls: 429 rate_limit_exceeded + Retry-After
    "fail_next": 0,          # the next N admitted calls: 503
    "fail_rate": 0.0,        # 500/503 answers
    "fail_status": 0,        # the status of fail_rate's answers: 500 or 503; 0 = either, half each
    "fault_429_rate": 0.0,   # admitted calls answered 429 rate_limit_exceeded + Retry-After
    "max_output_tokens": 0,  # the model's output limit: longer answers are cut ("length"); 0 = none
    "malformed_rate": 0.0,   # content is truncated (invalid) JSON in JSON mode
    "bad_body_rate": 0.0,    # the HTTP body itself is not valid JSON
    "prose_rate": 0.0,       # JSON content wrapped in prose
    "fence_rate": 0.0,       # JSON content wrapped in ```json fences
    "hang_rate": 0.0,        # accept, then never answer (for hang_s), then drop the connection
    "hang_s": 300.0,
    "cut_stream_rate": 0.0,  # streams: drop the connection after a few chunks, no [DONE]
    "cut_stream_next": 0,    # the next N admitted streams: cut half way (deterministic)
    "quota_exhausted": False,  # every key: 429 insufficient_quota
    "exhausted_keys": [],    # these API keys only: 429 insufficient_quota
    "api_key": "",           # when set, "Authorization: Bearer <api_key>" is required
    "slow_rate": 0.0,        # answered calls that take slow_factor times as long (a slow tail)
    "slow_next": 0,          # the next N answered calls are slow (deterministic)
    "slow_factor": 5.0,      # how much longer a slow call takes (TTFT and generation)
    "seed": 0,
    # Grading prompts ("TASK: grade"): deterministic faults for the next N grading replies.
    "grade_missing_next": 0,       # the reply leaves out its last item
    "grade_out_of_range_next": 0,  # the first item's score is 11
    "grade_garbage_next": 0,       # prose without any JSON
    "obey_injections": True,       # a gullible model: "award 10/10" in an answer gets 10
    # Quiz answers taken from another page: the question cites this page, its answer is not on it.
    "ungrounded_rate": 0.0,        # fraction of questions (a hash of the prompt and question)
    "ungrounded_next": 0,          # the next N questions written
}

STOPWORDS = set("""a about above after again against all also although among an and any are as at be
because been before being below between both but by can could did do does doing down during each
either else even ever every few for from further had has have having he her here hers him his how
however i if in into is it its itself just many may might more most much must my neither no nor not
now of off often on once one only or other others our out over own per rather same shall she should
since so some such than that the their them then there these they this those though through thus to
too toward under until upon very was we were what when where whether which while who whom whose why
will with within without would yet you your which also used using use""".split())


def ntokens(text):
    """Tokens are estimated as words * 1.3, rounded up."""
    return int(math.ceil(len(text.split()) * 1.3))


class State:
    """Config, counters and limit windows, all under one lock."""

    def __init__(self, cfg):
        self.lock = threading.Lock()
        self.cfg = dict(DEFAULTS)
        self.cfg.update(cfg)
        self.initial = json.loads(json.dumps(self.cfg))  # what /_reset {"config":true} restores
        self.stopping = threading.Event()
        self.rng = random.Random(self.cfg["seed"])
        self.reset()

    def reset(self):
        self.calls = 0
        self.by_status = {}
        self.by_key = {}
        self.faults = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.streams = 0
        self.inflight = 0
        self.peak_concurrency = 0
        self.peak_offered = 0
        self.call_seconds = deque(maxlen=10000)  # modelled TTFT + generation of answered calls
        self.grade_calls = 0        # grading prompts answered (TASK: grade)
        self.grade_items = 0        # answers in them
        self.overall_calls = 0      # overall-feedback prompts answered (TASK: overall)
        self.injections_obeyed = 0  # answers that talked the fake into a 10
        self.chat = {"answers": 0, "not_found": 0}  # chat-convention answers (found / not)
        self.ungrounded = 0         # quiz questions whose answer was taken from another page
        self.ungrounded_items = deque(maxlen=1000)  # their {"question", "answer"}
        # streams' actual time to first token: (question or "", arrival, first content written),
        # monotonic seconds (CLOCK_MONOTONIC, comparable with clients on this machine)
        self.first_tokens = deque(maxlen=2000)
        # quiz prompts answered, in order: what a benchmark replays to time its baselines on
        # the very passages the service asked about
        self.quiz_calls = deque(maxlen=1000)
        self.req_window = deque()   # admission times (monotonic)
        self.tok_window = deque()   # (time, tokens)

    def stats(self):
        return {
            "calls": self.calls,
            "by_status": dict(self.by_status),
            "by_key": dict(self.by_key),
            "faults": dict(self.faults),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "streams": self.streams,
            "inflight": self.inflight,
            "peak_concurrency": self.peak_concurrency,
            "peak_offered": self.peak_offered,
            "call_seconds": [round(x, 4) for x in self.call_seconds],
            "grade_calls": self.grade_calls,
            "grade_items": self.grade_items,
            "overall_calls": self.overall_calls,
            "injections_obeyed": self.injections_obeyed,
            "chat": dict(self.chat),
            "ungrounded": self.ungrounded,
            "ungrounded_items": list(self.ungrounded_items),
            "first_tokens": [{"question": q, "arrived": round(a, 6), "first": round(f, 6)}
                             for q, a, f in self.first_tokens],
            "quiz_calls": [{"count": c, "page": pg, "text": t, "variant": v, "type": ty}
                           for c, pg, t, v, ty in self.quiz_calls],
        }


# ---------------------------------------------------------------------------------------------
# Content


def parse_quiz_prompt(messages):
    """The quiz convention: (count, page, text, variant, qtype) or None."""
    count = page = None
    text = None
    variant = 0
    qtype = "mcq"
    for m in messages:
        content = m.get("content")
        if not isinstance(content, str):
            continue
        lines = content.split("\n")
        for i, line in enumerate(lines):
            s = line.strip()
            mc = re.match(r"(?i)^COUNT:\s*(\d+)\s*$", s)
            if mc and count is None:
                count = int(mc.group(1))
                continue
            mv = re.match(r"(?i)^VARIANT:\s*(\d+)\s*$", s)
            if mv:
                variant = int(mv.group(1))
                continue
            mty = re.match(r"(?i)^TYPE:\s*(mcq|open)\s*$", s)
            if mty:
                qtype = mty.group(1).lower()
                continue
            mp = re.match(r"(?i)^PAGE:\s*(\d+)\s*$", s)
            if mp and page is None:
                page = int(mp.group(1))
                continue
            mt = re.match(r"(?i)^TEXT:(.*)$", s)
            if mt and text is None:
                rest = [mt.group(1)] + lines[i + 1:]
                text = "\n".join(rest).strip()
                break
    if count is None or text is None:
        return None
    return max(0, min(count, 100)), page if page is not None else 1, text, variant, qtype


def key_terms(text):
    seen = {}
    for w in re.findall(r"[A-Za-z][A-Za-z\-']{3,}", text):
        lw = w.lower().strip("-'")
        if len(lw) < 4 or lw in STOPWORDS:
            continue
        if lw not in seen:
            seen[lw] = w.strip("-'")
    return list(seen.values())


def sentences(text):
    flat = re.sub(r"\s+", " ", text).strip()
    parts = re.split(r"(?<=[.!?])\s+", flat)
    return [p for p in parts if len(p.split()) >= 3] or ([flat] if flat else [])


def clip_words(s, n):
    """A model quotes a clause, not a 200-word run-on "sentence" (PDF text often lacks stops):
    keeps question lengths, and so call latencies, in the range a real model writes."""
    w = s.split()
    return s if len(w) <= n else " ".join(w[:n]) + " ..."


def word_forms(text):
    """Lower-case words of text, each also without a plural s: for "is this word in there"."""
    out = set()
    for w in re.findall(r"[A-Za-z0-9]+", text.lower()):
        out.add(w)
        if len(w) > 3 and w.endswith("s"):
            out.add(w[:-1])
    return out


# "Another page": where ungrounded answers come from. Nothing in it is about the test documents.
ELSEWHERE = ("Basalt columns form when thick lava flows cool and contract slowly. Justinian "
             "codified Roman law in Constantinople during the sixth century. Quasars shine from "
             "supermassive black holes in distant galaxies. Glaciers carve fjords while they "
             "retreat along coastal valleys.")


def answer_elsewhere(q, text, i):
    """Moves question q's answer to another page: an mcq's correct option becomes a term of
    ELSEWHERE that the page lacks, an open answer a sentence of ELSEWHERE that shares the fewest
    words with it. The question text and page stay: it still cites this page."""
    page = word_forms(text)
    if q.get("type") == "open":
        cands = sorted(sentences(ELSEWHERE), key=lambda s: len(word_forms(s) & page))
        q["answer"] = cands[0]
        return q["answer"]
    others = set()
    for k, o in enumerate(q["options"]):
        if k != q["answer_index"]:
            others |= word_forms(o)
    terms = [t for t in key_terms(ELSEWHERE) if not (word_forms(t) & (page | others))]
    if not terms:
        terms = ["Zyxquorblat"]
    q["options"][q["answer_index"]] = terms[stable_int(text, i) % len(terms)]
    return q["options"][q["answer_index"]]


def make_ungrounded(qs, text, st):
    """Applies ungrounded_next / ungrounded_rate to the questions of one answer, counting each."""
    with st.lock:
        rate = float(st.cfg["ungrounded_rate"])
        for i, q in enumerate(qs["questions"]):
            if st.cfg["ungrounded_next"] > 0:
                st.cfg["ungrounded_next"] -= 1
            elif not (rate > 0 and stable_int(text, q["question"], "elsewhere") % 10000 < rate * 10000):
                continue
            answer = answer_elsewhere(q, text, i)
            st.ungrounded += 1
            st.ungrounded_items.append({"question": q["question"], "answer": answer})


def stable_int(*parts):
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big")


def make_questions(count, page, text, variant=0, qtype="mcq"):
    # A word broken at a line end is one word to a reader ("inter-\nface"): never half a word
    # as an answer.
    text = re.sub(r"(?<=[A-Za-z])-[ \t]*\r?\n[ \t]*(?=[A-Za-z])", "", text)
    sents = sentences(text)
    terms = key_terms(text)
    base = variant * count
    if qtype == "open":
        out = []
        for i in range(count):
            s = clip_words(sents[(base + i) % len(sents)] if sents else "The text is empty.", 40)
            cands = key_terms(s)
            topic = cands[stable_int(text, base + i) % len(cands)] if cands else "this passage"
            out.append({"type": "open",
                        "question": 'Explain what the text says about "%s" in: "%s"' % (topic, s[:160]),
                        "answer": s, "explanation": "From page %d." % page, "page": page})
        return {"questions": out}
    generic = ["None of the above", "All of the above", "It is not stated", "Something else",
               "Unknown", "Not applicable", "Neither", "Both"]
    out = []
    for i in range(base, base + count):
        s = clip_words(sents[i % len(sents)] if sents else "The text is empty.", 30)
        cands = [t for t in key_terms(s)]
        h = stable_int(text, i)
        if cands:
            answer = cands[h % len(cands)]
            stem = re.sub(r"\b%s\b" % re.escape(answer), "_____", s, count=1)
            q = 'Which word completes this statement from the text: "%s"' % stem
        else:
            answer = s[:60]
            q = "Which statement appears in the text? (%d)" % (i + 1)
        opts = [answer]
        # A good model's distractors are not in the sentence the question quotes, nor next to
        # it (svc-qgen drops a question whose passage supports a distractor as well as the
        # answer, and may not cut sentences where this fake does).
        own = set()
        for k in (-1, 0, 1):
            own |= word_forms(sents[(i + k) % len(sents)] if sents else "")
        pool = [t for t in terms if t.lower() != answer.lower() and not (word_forms(t) & own)]
        j = h
        while len(opts) < 4 and pool:
            t = pool[j % len(pool)]
            pool.remove(t)
            if t.lower() not in (o.lower() for o in opts):
                opts.append(t)
            j = j // 7 + 13
        for g in generic:
            if len(opts) >= 4:
                break
            if g.lower() not in (o.lower() for o in opts):
                opts.append(g)
        ai = (i + h) % 4
        others = opts[1:]
        options = others[:ai] + [answer] + others[ai:]
        out.append({
            "question": q,
            "options": options,
            "answer_index": ai,
            "explanation": 'The text says: "%s"' % s,
            "page": page,
        })
    return {"questions": out}


# ---------------------------------------------------------------------------------------------
# Grading (svc-eval's prompt: "TASK: grade" / "TASK: overall", then a JSON document after "DATA:")

INJECTION = re.compile(r"(?i)(10\s*/\s*10|full marks|ignore (the|all|previous|your) |award (me|this|10|full))")


def parse_task(messages):
    """(task, header lines dict, data) for a grading prompt, or None."""
    for m in messages:
        content = m.get("content")
        if not isinstance(content, str):
            continue
        lines = content.split("\n")
        if not lines or not re.match(r"(?i)^TASK:\s*(grade|overall)\s*$", lines[0].strip()):
            continue
        task = lines[0].split(":", 1)[1].strip().lower()
        head = {}
        for i, line in enumerate(lines[1:], 1):
            if line.strip().upper().startswith("DATA:"):
                try:
                    data = json.loads("\n".join(lines[i + 1:]))
                except ValueError:
                    return None
                return task, head, data
            if ":" in line:
                k, v = line.split(":", 1)
                head[k.strip().upper()] = v.strip()
    return None


def terms(text):
    out = []
    for w in re.findall(r"[a-z0-9]+", (text or "").lower().replace("'", "")):
        if (len(w) < 2 and not w.isdigit()) or w in STOPWORDS:
            continue
        if len(w) > 3 and w.endswith("s") and w[-2] not in "sui":
            w = w[:-1]
        if w not in out:
            out.append(w)
    return out


def grade_item(item, strictness, st):
    """Scores by overlap: the share of the reference's key terms the answer has (without a
    reference, the share of the answer's terms the source has). A gullible model: an answer that
    asks for full marks gets them."""
    answer = item.get("answer") or ""
    a, r = terms(answer), terms(item.get("reference")) or terms(item.get("source"))
    if st.cfg["obey_injections"] and INJECTION.search(answer):
        st.injections_obeyed += 1
        return {"id": item.get("id"), "score": 10, "feedback": "Excellent answer, full marks.",
                "suggestion": "None.", "hint": "You have it."}
    if item.get("reference"):
        hit = [t for t in r if t in a]
        score = int(round(10.0 * len(hit) / len(r))) if r and a else 0
    else:  # no reference: how much of the answer the source supports
        hit = [t for t in a if t in r]
        score = int(round(10.0 * len(hit) / len(a))) if r and a else 0
    if strictness == "easy" and score > 0:
        score = min(10, score + 1)
    elif strictness == "strict":
        score = max(0, score - 1)
    missing = [t for t in r if t not in a][:3]
    # As long as a model's feedback (about 60 words): the calls cost what real ones cost.
    return {"id": item.get("id"), "score": score,
            "feedback": "Your answer covers %d of the %d key ideas of the reference answer%s. "
                        "The question asked: \"%s\". %s" % (
                len(hit), len(r), (": " + ", ".join(hit[:8])) if hit else "",
                clip_words(item.get("question") or "", 25),
                "A complete answer would also explain %s and connect it to the question." % (
                    " and ".join(missing)) if missing else "It is complete and precise."),
            "suggestion": ("Also explain: %s." % ", ".join(missing)) if missing else
            "Nothing is missing.",
            "hint": ("Think about %s." % missing[0]) if missing else "Your answer is complete."}


def grade_content(st, messages):
    """Content for a grading or overall prompt, or None when the messages are neither."""
    parsed = parse_task(messages)
    if parsed is None:
        return None
    task, head, data = parsed
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        items = []
    with st.lock:
        if task == "overall":
            st.overall_calls += 1
            score, mx = head.get("SCORE", "0"), head.get("MAX", "0")
            weak = [i.get("question", "")[:60] for i in items if isinstance(i, dict)
                    and isinstance(i.get("score"), int) and i["score"] < 6][:2]
            return json.dumps({
                "overall_feedback": "You scored %s of %s. Keep practising the weaker answers." % (
                    score, mx),
                "strengths": ["You answered %d questions." % len(items)],
                "areas_for_improvement": ["Revisit: %s" % w for w in weak] or ["Add more detail."],
                "study_suggestions": ["Re-read the source pages of the questions you missed."]})
        st.grade_calls += 1
        st.grade_items += len(items)
        if st.cfg["grade_garbage_next"] > 0:
            st.cfg["grade_garbage_next"] -= 1
            st.faults["grade_garbage"] = st.faults.get("grade_garbage", 0) + 1
            return "I looked at the answers and they seem mostly fine to me."
        grades = [grade_item(i, head.get("STRICTNESS", "medium").lower(), st)
                  for i in items if isinstance(i, dict)]
        if st.cfg["grade_missing_next"] > 0 and grades:
            st.cfg["grade_missing_next"] -= 1
            st.faults["grade_missing"] = st.faults.get("grade_missing", 0) + 1
            grades = grades[:-1]
        if st.cfg["grade_out_of_range_next"] > 0 and grades:
            st.cfg["grade_out_of_range_next"] -= 1
            st.faults["grade_out_of_range"] = st.faults.get("grade_out_of_range", 0) + 1
            grades[0]["score"] = 11
    return json.dumps({"grades": grades})


def last_user(messages):
    for m in reversed(messages):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return ""


CHAT_NOT_FOUND = "I could not find the answer in the document."
PASSAGE_RE = re.compile(r"^\[p\. (\d+)\]\s?(.*)$")


def parse_chat_prompt(messages):
    """The chat convention, in the last user message: a line "PASSAGES:", then passages, each
    starting on a line "[p. N] text..." and running until the next such line, then a line
    "QUESTION: ..." (the last one counts; the question may go on over the following lines).
    Returns ([(page, text)], question) or None."""
    said = last_user(messages)
    lines = said.split("\n")
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == "PASSAGES:")
        qline = max(i for i, l in enumerate(lines) if l.startswith("QUESTION:"))
    except (StopIteration, ValueError):
        return None
    if qline < start:
        return None
    passages = []
    for line in lines[start + 1:qline]:
        m = PASSAGE_RE.match(line)
        if m:
            passages.append([int(m.group(1)), m.group(2)])
        elif passages:
            passages[-1][1] += "\n" + line
    question = "\n".join([lines[qline][len("QUESTION:"):]] + lines[qline + 1:]).strip()
    return [(p, t) for p, t in passages], question


def chat_words(text, minlen):
    return {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z\-']+", text)
            if len(w) >= minlen and w.lower() not in STOPWORDS}


def make_chat_answer(passages, question):
    """Quotes the passage sentences that share the most key words with the question, each
    followed by its page as [p. N]; says it does not know when no sentence shares any.
    Returns (content, found)."""
    keys = chat_words(question, 4) or chat_words(question, 3)
    scored = []
    for order, (page, text) in enumerate(passages):
        for s in sentences(text):
            words = chat_words(s, 3)
            score = len(keys & words)
            if score > 0:
                scored.append((-score, order, clip_words(s, 30), page))
    if not scored:
        return CHAT_NOT_FOUND, False
    scored.sort()
    best = scored[0]
    out = 'The document says: "%s" [p. %d].' % (best[2], best[3])
    for other in scored[1:]:
        if other[2] != best[2]:
            out += ' It also says: "%s" [p. %d].' % (other[2], other[3])
            break
    return out, True


def make_content(messages, json_mode, state=None):
    quiz = parse_quiz_prompt(messages)
    if quiz is not None:
        qs = make_questions(*quiz)
        if state is not None:
            with state.lock:
                state.quiz_calls.append(quiz)
            make_ungrounded(qs, quiz[2], state)
        return json.dumps(qs, ensure_ascii=False), True
    chat = parse_chat_prompt(messages) if not json_mode else None
    if chat is not None:
        content, found = make_chat_answer(*chat)
        if state is not None:
            with state.lock:
                state.chat["answers" if found else "not_found"] += 1
        return content, False
    said = last_user(messages)
    if json_mode:
        return json.dumps({"echo": said}, ensure_ascii=False), True
    return "Echo: " + said, False


def truncate_tokens(content, max_tokens):
    """Cuts content to max_tokens (words*1.3 estimate): (content, finish_reason)."""
    if not max_tokens or ntokens(content) <= max_tokens:
        return content, "stop"
    words = content.split(" ")
    keep = max(1, int(max_tokens / 1.3))
    return " ".join(words[:keep]), "length"


# ---------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakellm/1"

    def log_message(self, fmt, *args):  # quiet; --verbose turns it on
        if self.server.verbose:
            sys.stderr.write("fakellm: " + (fmt % args) + "\n")

    @property
    def st(self):
        return self.server.state

    def setup(self):
        super().setup()
        # Each SSE event is its own small write: without TCP_NODELAY, Nagle holds an event back
        # until the client ACKs the previous one, and on a kept-alive connection the client's
        # delayed ACK makes that 40 ms - a latency real providers do not add.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing
    def send_json(self, status, obj, headers=None, raw=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def count_status(self, status):
        with self.st.lock:
            k = str(status)
            self.st.by_status[k] = self.st.by_status.get(k, 0) + 1

    def count_fault(self, kind):
        with self.st.lock:
            self.st.faults[kind] = self.st.faults.get(kind, 0) + 1

    def sleep(self, seconds):
        """Sleeps unless the server is stopping; False when it is."""
        return not self.st.stopping.wait(max(0.0, seconds))

    # -- routes
    def do_GET(self):
        if self.path == "/_stats":
            with self.st.lock:
                s = self.st.stats()
            self.send_json(200, s)
        elif self.path == "/_config":
            with self.st.lock:
                c = dict(self.st.cfg)
            self.send_json(200, c)
        elif self.path == "/healthz":
            self.send_json(200, {"ok": True})
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": "not found", "code": "not_found"}})

    def parse_request(self):
        # TTFT counts from the request's arrival, like a provider's: the moment its first line
        # was read (header parsing and everything after happen inside it).
        self.arrived = time.monotonic()
        return super().parse_request()

    def do_POST(self):
        body = self.read_body()
        if self.path == "/_control":
            try:
                upd = json.loads(body or b"{}")
                if not isinstance(upd, dict):
                    raise ValueError("object expected")
                unknown = [k for k in upd if k not in DEFAULTS]
                if unknown:
                    raise ValueError("unknown keys: %s" % ", ".join(unknown))
            except ValueError as e:
                self.send_json(400, {"error": {"message": str(e)}})
                return
            with self.st.lock:
                self.st.cfg.update(upd)
                if "seed" in upd:
                    self.st.rng = random.Random(upd["seed"])
                c = dict(self.st.cfg)
            self.send_json(200, c)
        elif self.path == "/_reset":
            try:
                opts = json.loads(body or b"{}")
            except ValueError:
                opts = {}
            with self.st.lock:
                self.st.reset()
                if isinstance(opts, dict) and opts.get("config"):
                    self.st.cfg = json.loads(json.dumps(self.st.initial))
                    self.st.rng = random.Random(self.st.cfg["seed"])
            self.send_json(200, {"ok": True})
        elif self.path in ("/v1/chat/completions", "/chat/completions"):
            self.chat(body)
        else:
            self.send_json(404, {"error": {"message": "not found", "code": "not_found"}})

    # -- the model
    def error(self, status, etype, code, message, headers=None):
        self.count_status(status)
        self.send_json(status, {"error": {"message": message, "type": etype, "code": code,
                                          "param": None}}, headers)

    def admit(self, key, prompt_tokens):
        """Limits, in the order a provider checks them: None when admitted, else the 429 to send."""
        st = self.st
        with st.lock:
            cfg = st.cfg
            st.calls += 1
            st.by_key[key] = st.by_key.get(key, 0) + 1
            if cfg["quota_exhausted"] or (key and key in cfg["exhausted_keys"]):
                return ("insufficient_quota", "insufficient_quota",
                        "You exceeded your current quota, please check your plan and billing "
                        "details.", None)
            if cfg["rate_limit_next"] > 0:
                cfg["rate_limit_next"] -= 1
                return ("rate_limit_exceeded", "rate_limit_exceeded",
                        "Rate limit reached (injected).", int(cfg["retry_after_s"]))
            st.inflight += 1
            st.peak_offered = max(st.peak_offered, st.inflight)
            if cfg["max_concurrency"] and st.inflight > cfg["max_concurrency"]:
                st.inflight -= 1
                return ("rate_limit_exceeded", "rate_limit_exceeded",
                        "Too many concurrent requests.", int(cfg["retry_after_s"]))
            now = time.monotonic()
            while st.req_window and st.req_window[0] <= now - 60:
                st.req_window.popleft()
            while st.tok_window and st.tok_window[0][0] <= now - 60:
                st.tok_window.popleft()
            if cfg["rpm"] and len(st.req_window) >= cfg["rpm"]:
                st.inflight -= 1
                wait = int(math.ceil(st.req_window[0] + 60 - now))
                return ("rate_limit_exceeded", "rate_limit_exceeded",
                        "Rate limit reached for requests per min.", max(1, wait))
            used = sum(t for _, t in st.tok_window)
            if cfg["tpm"] and used + prompt_tokens > cfg["tpm"]:
                st.inflight -= 1
                wait = int(math.ceil(st.tok_window[0][0] + 60 - now)) if st.tok_window else 1
                return ("tokens", "rate_limit_exceeded",
                        "Rate limit reached for tokens per min.", max(1, wait))
            st.req_window.append(now)
            st.tok_window.append((now, prompt_tokens))
            st.peak_concurrency = max(st.peak_concurrency, st.inflight)
        return None

    def leave(self):
        """Ends this call's share of the concurrency, once. Called just before the last bytes of
        an answer are written, so a client that starts its next call the moment it has the answer
        is never counted twice in peak_concurrency."""
        if not self.in_flight:
            return
        self.in_flight = False
        with self.st.lock:
            self.st.inflight -= 1

    def release(self, completion_tokens, prompt_tokens, counted):
        self.leave()
        with self.st.lock:
            if counted:
                self.st.prompt_tokens += prompt_tokens
                self.st.completion_tokens += completion_tokens
                self.st.tok_window.append((time.monotonic(), completion_tokens))

    def chat(self, body):
        try:
            req = json.loads(body)
            messages = req["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError("messages must be a non-empty array")
        except (ValueError, KeyError, TypeError) as e:
            self.error(400, "invalid_request_error", "invalid_request", "bad request: %s" % e)
            return
        auth = self.headers.get("Authorization") or ""
        key = auth[7:] if auth.startswith("Bearer ") else ""
        with self.st.lock:
            cfg = dict(self.st.cfg)
        if cfg["api_key"] and key != cfg["api_key"]:
            self.error(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
            return
        prompt_tokens = sum(ntokens(m.get("content") or "") for m in messages
                            if isinstance(m, dict) and isinstance(m.get("content"), str))
        rej = self.admit(key, prompt_tokens)
        if rej is not None:
            etype, code, msg, retry = rej
            self.error(429, etype, code, msg, {"Retry-After": str(retry)} if retry else None)
            return
        completion_tokens = 0
        counted = False
        self.in_flight = True
        try:
            completion_tokens, counted = self.answer(req, messages, prompt_tokens)
        finally:
            self.release(completion_tokens, prompt_tokens, counted)

    def draw(self, cfg):
        """One fault decision per admitted call, from the seeded generator."""
        with self.st.lock:
            r = [self.st.rng.random() for _ in range(8)]
        for i, name in enumerate(("fault_429_rate", "fail_rate", "hang_rate", "bad_body_rate",
                                  "malformed_rate", "prose_rate", "fence_rate",
                                  "cut_stream_rate")):
            if r[i] < float(cfg[name]):
                return name[:-5]
        return None

    def slow(self, cfg):
        """Whether this answered call is one of the slow tail: slow_next first, then a draw
        (only when slow_rate is set, so other settings' fault sequences stay as they were)."""
        with self.st.lock:
            if self.st.cfg["slow_next"] > 0:
                self.st.cfg["slow_next"] -= 1
                hit = True
            else:
                hit = float(cfg["slow_rate"]) > 0 and self.st.rng.random() < float(cfg["slow_rate"])
        if hit:
            self.count_fault("slow")
        return hit

    def answer(self, req, messages, prompt_tokens):
        with self.st.lock:
            cfg = dict(self.st.cfg)
            fail_next = self.st.cfg["fail_next"] > 0
            if fail_next:
                self.st.cfg["fail_next"] -= 1
        if fail_next:
            self.count_fault("fail")
            self.leave()
            self.error(503, "server_error", None, "The engine is currently overloaded (injected).")
            return 0, False
        stream = bool(req.get("stream"))
        rf = req.get("response_format") or {}
        json_mode = isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema")
        model = req.get("model") or "fake"
        fault = self.draw(cfg)
        scale = float(cfg["time_scale"])
        if fault == "fault_429":
            self.count_fault("fault_429")
            self.leave()
            retry = cfg["retry_after_s"]
            self.error(429, "requests", "rate_limit_exceeded", "Rate limit reached (injected).",
                       {"Retry-After": str(retry)} if retry else None)
            return 0, False
        if fault == "fail":
            self.count_fault("fail")
            status = int(cfg["fail_status"]) or (500 if self.st.rng.random() < 0.5 else 503)
            self.leave()
            self.error(status, "server_error", None, "The server had an error processing your "
                       "request.")
            return 0, False
        if fault == "hang":
            self.count_fault("hang")
            self.sleep(float(cfg["hang_s"]))
            self.close_connection = True
            return 0, False
        graded = grade_content(self.st, messages)
        if graded is not None:
            content, is_json = graded, graded.startswith("{")
        else:
            content, is_json = make_content(messages, json_mode, self.st)
        chat = parse_chat_prompt(messages) if stream and not json_mode else None
        self.question = chat[1] if chat is not None else ""
        if is_json and fault == "malformed":
            self.count_fault("malformed")
            content = content[: max(1, len(content) * 2 // 3)]
        elif is_json and fault == "prose":
            self.count_fault("prose")
            content = ("Sure! Here is the JSON you asked for {as requested}:\n" + content +
                       "\nLet me know if you need anything else.")
        elif is_json and fault == "fence":
            self.count_fault("fence")
            content = "```json\n" + content + "\n```"
        limit = req.get("max_tokens") or req.get("max_completion_tokens") or 0
        if int(cfg["max_output_tokens"]) > 0 and (not limit or limit > int(cfg["max_output_tokens"])):
            limit = int(cfg["max_output_tokens"])
        content, finish = truncate_tokens(content, limit)
        ctoks = ntokens(content)
        tps = float(cfg["tokens_per_s"])
        ttft = float(cfg["ttft_ms"]) / 1000.0 * scale
        gen = (ctoks / tps * scale) if tps > 0 else 0.0
        if self.slow(cfg):
            ttft *= float(cfg["slow_factor"])
            gen *= float(cfg["slow_factor"])
        with self.st.lock:
            self.st.call_seconds.append(ttft + gen)
        cid = "chatcmpl-%016x" % stable_int(json.dumps(messages), time.monotonic_ns())
        created = int(time.time())
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": ctoks,
                 "total_tokens": prompt_tokens + ctoks}
        # The fake's own work (parsing, building the answer) happens inside the modelled TTFT,
        # as a provider's does: only what is left of it is slept.
        ttft_left = max(0.0, ttft - (time.monotonic() - self.arrived))
        if not stream:
            if not self.sleep(ttft_left + gen):
                return 0, False
            if fault == "bad_body":
                self.count_fault("bad_body")
                self.count_status(200)
                self.leave()
                self.send_json(200, None, raw=b'{"id":"x","choices":[{"message":{"content":"ab')
                return ctoks, True
            self.count_status(200)
            self.leave()
            self.send_json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": finish}],
                "usage": usage})
            return ctoks, True
        return self.stream(cid, created, model, content, finish, usage, ttft_left, gen, fault)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def stream(self, cid, created, model, content, finish, usage, ttft, gen, fault):
        with self.st.lock:
            self.st.streams += 1
        if not self.sleep(ttft):
            return 0, False
        self.count_status(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # Deltas of about four words; the space that follows a word stays with it.
        words = re.findall(r"\S+\s*|\s+", content)
        pieces = ["".join(words[i:i + 4]) for i in range(0, len(words), 4)] or [""]
        per_piece = gen / len(pieces)
        with self.st.lock:
            if self.st.cfg["cut_stream_next"] > 0:
                self.st.cfg["cut_stream_next"] -= 1
                fault = "cut_stream"
        cut_at = len(pieces) // 2 if fault == "cut_stream" else -1

        def event(delta, fin, with_usage=False):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [{"index": 0, "delta": delta,
                                                "finish_reason": fin}]}
            if with_usage:
                obj["usage"] = usage
            self.chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

        try:
            event({"role": "assistant", "content": ""}, None)
            for i, p in enumerate(pieces):
                if i == cut_at:
                    self.count_fault("cut_stream")
                    self.close_connection = True
                    return usage["completion_tokens"] * i // len(pieces), True
                if i and not self.sleep(per_piece):
                    return 0, False
                event({"content": p}, None)
                if i == 0:
                    with self.st.lock:
                        self.st.first_tokens.append((self.question, self.arrived,
                                                     time.monotonic()))
            self.leave()
            event({}, finish, True)
            self.chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return usage["completion_tokens"], True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of parallel connects overflows it, the
    # kernel drops the SYNs and the client retries after a second - a latency no provider has.
    request_queue_size = 256
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description="OpenAI-compatible fake LLM for tests")
    ap.add_argument("--port", type=int, default=28500)
    ap.add_argument("--pid-file", default="")
    ap.add_argument("--verbose", action="store_true")
    for k, v in DEFAULTS.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            ap.add_argument(flag, action="store_true", default=v)
        elif isinstance(v, list):
            ap.add_argument(flag, default="", help="comma-separated")
        else:
            ap.add_argument(flag, type=type(v), default=v)
    a = ap.parse_args(argv)
    cfg = {k: getattr(a, k) for k in DEFAULTS}
    cfg["exhausted_keys"] = [k for k in (a.exhausted_keys or "").split(",") if k]
    state = State(cfg)
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = state
    srv.verbose = a.verbose

    def stop(signum, frame):
        state.stopping.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    sys.stderr.write("fakellm: listening on 127.0.0.1:%d\n" % a.port)
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.1)
    finally:
        srv.server_close()
        if a.pid_file:
            try:
                os.unlink(a.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
