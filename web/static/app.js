// Ask without reloading: GET /ask, draw the answer with DOM calls (never innerHTML), keep the URL.
"use strict";

(() => {
  const form = document.getElementById("ask");
  const region = document.getElementById("answer");
  const input = document.getElementById("q");
  if (!form || !region || !input || !window.fetch || !window.history.pushState) return;

  const FIELDS = ["q", "date_from", "date_to", "author", "top_k"];
  const DEFAULTS = { top_k: "5" };
  let latest = 0;

  // An element with attributes and children; strings become text nodes, so data stays text.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  // Only links into this site; anything else is dropped.
  function href(url) {
    return typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : "#";
  }

  // Offsets count code points (as Python does), so cut with Array.from, not String.slice.
  function marked(text, offset, ranges, className) {
    const chars = Array.from(text);
    const out = [];
    let position = 0;
    for (const [start, end] of ranges) {
      if (start === null || end === null || start === undefined || end === undefined) continue;
      const lo = Math.max(start - offset, position);
      const hi = Math.min(end - offset, chars.length);
      if (hi <= lo) continue;
      if (lo > position) out.push(chars.slice(position, lo).join(""));
      out.push(el("mark", { class: className }, chars.slice(lo, hi).join("")));
      position = hi;
    }
    if (position < chars.length) out.push(chars.slice(position).join(""));
    return out;
  }

  function longDate(iso) {
    if (!iso) return "no date";
    const [y, m, d] = iso.split("-").map(Number);
    const month = new Date(Date.UTC(y, m - 1, d)).toLocaleString("en-GB", {
      month: "long",
      timeZone: "UTC",
    });
    return `${d} ${month} ${y}`;
  }

  function dateNode(iso) {
    return iso ? el("time", { datetime: iso }, longDate(iso)) : "no date";
  }

  function sentenceNode(sentence) {
    const first = sentence.citations[0];
    const p = el("p", {}, ...marked(sentence.text, first.start, [[first.span_start, first.span_end]]));
    for (const c of sentence.citations) {
      const label = `Source ${c.number}: ${c.title}, the quoted sentence`;
      p.append(" ", el("a", { class: "cite", href: href(c.url), "aria-label": label }, `[${c.number}]`));
    }
    return el("blockquote", { class: "quote" }, p);
  }

  // A passage's text with each sentence a choice for the feedback form (see passage_runs).
  function passageText(p) {
    const chars = Array.from(p.text);
    const cut = (from, to) => chars.slice(from - p.start, to - p.start).join("");
    const out = [];
    let position = p.start;
    for (const [s, e] of [...p.sentences, [p.end, p.end]]) {
      const start = Math.max(s, position);
      const end = Math.min(e, p.end);
      if (start > position) out.push(...marked(cut(position, start), position, p.highlights, "matched"));
      if (end > start) {
        const input = el("input", {
          class: "pick-input",
          type: "radio",
          name: "quote",
          value: `${p.article_id}:${start}-${end}`,
          form: "feedback",
        });
        out.push(el("label", { class: "pick" }, input, ...marked(cut(start, end), start, p.highlights, "matched")));
        position = end;
      }
    }
    return out;
  }

  function passageNode(p) {
    return el(
      "li",
      { class: "passage" },
      el("h3", {}, el("a", { href: href(p.url) }, p.title)),
      el("p", { class: "byline" }, `${p.author || "No author"} · `, dateNode(p.date)),
      el("p", { class: "passage-text" }, ...passageText(p)),
    );
  }

  // The Right / Wrong form, as the server draws it (_feedback.html).
  function feedbackNode(answer) {
    const form = el("form", { id: "feedback", class: "feedback", method: "post", action: "/feedback" });
    form.append(el("input", { type: "hidden", name: "question", value: answer.question }));
    for (const s of answer.sentences) {
      const c = s.citations[0];
      form.append(el("input", { type: "hidden", name: "shown", value: `${c.article_id}:${c.start}-${c.end}` }));
    }
    const legend = answer.answered
      ? "Is this answer right?"
      : "Is it right that the articles do not answer this?";
    const fields = el(
      "fieldset",
      {},
      el("legend", {}, legend),
      el(
        "div",
        { class: "feedback-buttons" },
        el("button", { type: "submit", name: "verdict", value: "right" }, "Right"),
        el("button", { type: "submit", name: "verdict", value: "wrong" }, "Wrong"),
      ),
    );
    if (answer.passages.length) {
      fields.append(
        el("p", { class: "hint" }, "Wrong? First click the sentence of a passage below that does answer, if one does."),
      );
    }
    form.append(fields);
    return form;
  }

  // Send a verdict without leaving the page; the form posts itself when this cannot run.
  async function sendFeedback(form, verdict) {
    const data = new FormData(form);
    const body = { question: data.get("question"), verdict, shown: data.getAll("shown") };
    const chosen = data.get("quote");
    if (verdict === "wrong" && chosen) body.quote = chosen;
    let status = form.querySelector(".feedback-status");
    if (!status) {
      status = el("p", { class: "feedback-status", role: "status" });
      form.append(status);
    }
    status.textContent = "Sending…";
    try {
      const response = await fetch("/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      const reply = await response.json().catch(() => null);
      if (response.ok) {
        const quoted = reply && reply.quote ? ", with the sentence you chose" : "";
        form.querySelector("fieldset").replaceWith(
          el("p", { class: "notice" }, `Thank you: recorded as ${verdict}${quoted}.`),
        );
        status.remove();
      } else {
        status.textContent = errorText(reply, response.status);
        status.className = "feedback-status error";
      }
    } catch {
      status.textContent = "The server cannot be reached. Try again.";
      status.className = "feedback-status error";
    }
  }

  function answerNode(answer) {
    const box = el("div", { class: `answer ${answer.answered ? "answered" : "unanswered"}` });
    if (answer.answered) {
      box.append(el("h2", {}, "Answer"), ...answer.sentences.map(sentenceNode));
      const percent = Math.round(answer.confidence * 100);
      const ms = Math.round(answer.timings.total_ms);
      box.append(el("p", { class: "meta" }, `Confidence ${percent}% · ${ms} ms`));
      box.append(el("h3", { class: "sources-title" }, "Sources"));
      const list = el("ol", { class: "sources" });
      for (const s of answer.sources) {
        const byline = `${s.author || "No author"} · ${longDate(s.date)}`;
        list.append(
          el(
            "li",
            { value: String(s.number) },
            el("a", { href: href(s.url) }, s.title),
            " ",
            el("span", { class: "byline" }, byline),
          ),
        );
      }
      box.append(list);
    } else {
      box.append(
        el("h2", {}, "The articles do not answer this"),
        el("p", { class: "reason" }, answer.reason || "The articles do not seem to answer this question."),
      );
    }
    box.append(feedbackNode(answer));
    if (answer.passages.length) {
      box.append(
        el("h2", {}, answer.answered ? "Supporting passages" : "Closest passages"),
        el("ol", { class: "passages" }, ...answer.passages.map(passageNode)),
      );
    } else if (!answer.answered) {
      box.append(el("p", {}, "No passage to show."));
    }
    return box;
  }

  // The message of an error response: a string, or FastAPI's list of {loc, msg}.
  function errorText(body, status) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail) && detail.length) {
      return detail
        .map((e) => {
          const name = Array.isArray(e.loc) ? String(e.loc[e.loc.length - 1]) : "";
          const field = name === "q" ? "question" : name;
          return field && !["body", "query"].includes(field) ? `${field}: ${e.msg}` : e.msg;
        })
        .join("; ");
    }
    return `The server answered with an error (${status}). Try again.`;
  }

  function show(...nodes) {
    region.replaceChildren(...nodes);
  }

  function paramsOf(source) {
    const params = new URLSearchParams();
    for (const name of FIELDS) {
      const value = (source.get(name) || "").trim();
      if (value && value !== DEFAULTS[name]) params.set(name, value);
    }
    return params;
  }

  function fillForm(params) {
    for (const name of FIELDS) {
      const field = form.elements.namedItem(name);
      if (field) field.value = params.get(name) || DEFAULTS[name] || "";
    }
  }

  async function ask(params, push) {
    const id = ++latest;
    const question = params.get("q");
    if (push) history.pushState({ q: question }, "", `/?${params}`);
    document.title = `${question} · Ask the articles`;
    region.setAttribute("aria-busy", "true");
    show(el("p", { class: "status", role: "status" }, "Searching the articles…"));
    try {
      const response = await fetch(`/ask?${params}`, { headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => null);
      if (id !== latest) return;
      if (response.ok && body) show(answerNode(body));
      else show(el("p", { class: "error", role: "alert" }, errorText(body, response.status)));
    } catch {
      if (id === latest) {
        show(el("p", { class: "error", role: "alert" }, "The server cannot be reached. Try again."));
      }
    } finally {
      if (id === latest) region.removeAttribute("aria-busy");
    }
  }

  region.addEventListener("submit", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLFormElement) || target.id !== "feedback") return;
    const verdict = event.submitter && event.submitter.value;
    if (verdict !== "right" && verdict !== "wrong") return;
    event.preventDefault();
    sendFeedback(target, verdict);
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = paramsOf(new FormData(form));
    if (!params.get("q")) {
      show(el("p", { class: "error", role: "alert" }, "Type a question first."));
      input.focus();
      return;
    }
    ask(params, true);
  });

  for (const link of document.querySelectorAll(".examples:not(.topics) a")) {
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      const params = new URLSearchParams(new URL(link.href).search);
      fillForm(params);
      ask(paramsOf(params), true);
    });
  }

  window.addEventListener("popstate", () => {
    const params = paramsOf(new URLSearchParams(location.search));
    fillForm(params);
    if (params.get("q")) ask(params, false);
    else {
      document.title = "Ask the articles";
      show();
    }
  });
})();
