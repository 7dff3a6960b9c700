// pi-mcp console: live updates without a reload. Every few seconds the current page is fetched
// again and its <main> replaced when it changed, unless the user is busy there: typing in a
// form, pointing at a form or button, or scrolling, touching, pointing or typing in the last
// few seconds (nothing may move under a click: an Approve button must stay the one aimed at).
// The status line says when the data is from, and marks it stale when updates stop arriving.
(() => {
  "use strict";
  const status = document.getElementById("live");
  const main = document.getElementById("main");
  if (!status || !main) return;
  const every = Number(status.dataset.poll || "5") * 1000;
  let last = Date.now();
  const clock = (t) => new Date(t).toLocaleTimeString();
  let touched = 0;
  for (const e of ["pointermove", "pointerdown", "touchstart", "wheel", "scroll", "keydown"]) {
    addEventListener(e, () => { touched = Date.now(); }, { passive: true, capture: true });
  }
  const busy = () => {
    if (Date.now() - touched < 3000) return true;
    if (main.querySelector("form:hover, button:hover")) return true;
    const active = document.activeElement;
    if (active && main.contains(active) && active.matches("input, textarea, select")) return true;
    return [...main.querySelectorAll("input[type=text], textarea")].some((e) => e.value !== "");
  };
  let held = false;
  const mark = () => {
    const stale = Date.now() - last > every * 3;
    status.classList.toggle("stale", stale);
    status.textContent = stale
      ? "Stale: no update since " + clock(last) + " (the console cannot reach the server)"
      : held
        ? "Changes waiting: shown when you pause (checked " + clock(last) + ")"
        : "Live: updated " + clock(last);
  };
  async function poll() {
    try {
      const r = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (!r.ok || r.redirected) throw new Error("HTTP " + r.status);
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.getElementById("main");
      const changed = fresh && fresh.innerHTML !== main.innerHTML;
      held = Boolean(changed && busy());
      if (changed && !held) main.innerHTML = fresh.innerHTML;
      last = Date.now();
    } catch (e) {
      // Leave the page as it is; mark() says how old it is.
    }
    mark();
  }
  setInterval(poll, every);
})();
