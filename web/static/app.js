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

  function passageNode(p) {
    return el(
      "li",
      { class: "passage" },
      el("h3", {}, el("a", { href: href(p.url) }, p.title)),
      el("p", { class: "byline" }, `${p.author || "No author"} · `, dateNode(p.date)),
      el("p", { class: "passage-text" }, ...marked(p.text, p.start, p.highlights, "matched")),
    );
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

  for (const link of document.querySelectorAll(".examples a")) {
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
