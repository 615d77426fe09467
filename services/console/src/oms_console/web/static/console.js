// Progressive enhancement only: every page works without it.
"use strict";

// Ask before destructive actions (cancel, refund, force, discard).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  // One submission per click: a double click must not send an action twice.
  for (const button of form.querySelectorAll("button[type=submit]")) {
    if (button.dataset.sent) {
      event.preventDefault();
      return;
    }
    button.dataset.sent = "1";
  }
});

document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) {
    window.print();
  }
});

// The capacity page swaps in fresh charts every few seconds.
function refreshCapacity() {
  const first = document.getElementById("capacity-charts");
  if (!first) return;
  const seconds = Number(first.dataset.refresh || 5);
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("capacity-charts");
      const current = document.getElementById("capacity-charts");
      if (fresh && current) current.replaceWith(fresh);
    } catch (error) {
      // Keep the last charts; the next tick tries again.
    }
  }, seconds * 1000);
}

// The live feed: Server-Sent Events from /feed/events.
function liveFeed() {
  const list = document.getElementById("feed");
  if (!list) return;
  const state = document.getElementById("feed-state");
  const toggle = document.getElementById("feed-toggle");
  const select = document.getElementById("feed-pattern");
  let paused = false;
  let source = null;

  function show(envelope) {
    const item = document.createElement("li");
    const time = document.createElement("span");
    time.className = "muted";
    time.textContent = (envelope.occurred_at || "").replace("T", " ").slice(0, 19) + " ";
    const type = document.createElement("span");
    type.className = "type";
    type.textContent = (envelope.type || "?") + " ";
    item.append(time, type);
    if (envelope.correlation_id) {
      const link = document.createElement("a");
      link.href = "/orders/" + encodeURIComponent(envelope.correlation_id);
      link.className = "mono";
      link.textContent = envelope.correlation_id.slice(0, 8) + "…";
      item.append(link, " ");
    }
    const data = document.createElement("span");
    data.className = "detail mono";
    data.textContent = JSON.stringify(envelope.data || {});
    item.append(data);
    list.prepend(item);
    while (list.children.length > 200) list.lastElementChild.remove();
  }

  function connect() {
    if (source) source.close();
    const url = list.dataset.source + "?pattern=" + encodeURIComponent(select.value);
    source = new EventSource(url);
    source.addEventListener("open", () => { state.textContent = "Subscribing…"; });
    source.addEventListener("ready", () => { state.textContent = "Connected: waiting for events."; });
    source.addEventListener("oms", (event) => {
      if (paused) return;
      try { show(JSON.parse(event.data)); } catch (error) { /* not JSON: skip */ }
      state.textContent = "Connected.";
    });
    source.addEventListener("dropped", (event) => {
      state.textContent = event.data + " event(s) skipped: too many at once.";
    });
    source.addEventListener("busy", () => { state.textContent = "Too many people are watching; retrying."; });
    source.addEventListener("unavailable", () => { state.textContent = "The broker is unreachable; retrying."; });
    source.addEventListener("error", () => { state.textContent = "Disconnected; reconnecting…"; });
  }

  toggle.addEventListener("click", () => {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
  });
  select.addEventListener("change", connect);
  connect();
}

refreshCapacity();
liveFeed();
