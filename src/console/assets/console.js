// pi-mcp console: live updates without a reload. Every few seconds the current page is fetched
// again and its <main> replaced when it changed, unless the user is typing in a form there.
// The status line says when the data is from, and marks it stale when updates stop arriving.
(() => {
  "use strict";
  const status = document.getElementById("live");
  const main = document.getElementById("main");
  if (!status || !main) return;
  const every = Number(status.dataset.poll || "5") * 1000;
  let last = Date.now();
  const clock = (t) => new Date(t).toLocaleTimeString();
  const busy = () => {
    const active = document.activeElement;
    if (active && main.contains(active) && active.matches("input, textarea, select")) return true;
    return [...main.querySelectorAll("input[type=text], textarea")].some((e) => e.value !== "");
  };
  const mark = () => {
    const stale = Date.now() - last > every * 3;
    status.classList.toggle("stale", stale);
    status.textContent = stale
      ? "Stale: no update since " + clock(last) + " (the console cannot reach the server)"
      : "Live: updated " + clock(last);
  };
  async function poll() {
    try {
      const r = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (!r.ok || r.redirected) throw new Error("HTTP " + r.status);
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.getElementById("main");
      if (fresh && !busy() && fresh.innerHTML !== main.innerHTML) {
        main.innerHTML = fresh.innerHTML;
      }
      last = Date.now();
    } catch (e) {
      // Leave the page as it is; mark() says how old it is.
    }
    mark();
  }
  setInterval(poll, every);
})();
