// The web console's whole journey in one Chromium (Debian's, driven by playwright-core), run
// by tests/console.rs against one daemon. CONSOLE_URL: the console; CONSOLE_TOKEN: its token;
// CONTROL_URL: the Rust test's control server (notice count, rule threshold, held calls);
// ARTIFACTS: where the screenshots go. Any failed step throws: exit 1 with the reason.
import { strict as assert } from "node:assert";

const { chromium } = await import(process.env.PI_MCP_TEST_PLAYWRIGHT);
const base = process.env.CONSOLE_URL;
const control = process.env.CONTROL_URL;
const token = process.env.CONSOLE_TOKEN;
const out = process.env.ARTIFACTS;

const browser = await chromium.launch({
  executablePath: process.env.PI_MCP_TEST_CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
let step = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  // A CSP violation or a script error shows up here; the page must have none.
  page.on("console", (m) => { if (m.type() === "error") problems.push(`${page.url()}: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(String(e)));
  // What a screen reader and a keyboard need, checked on every page the journey shows: the
  // document's language, one h1 and no skipped heading level, a main landmark, a name for
  // every form control, button and link, alternative text on every image, and headers on
  // every table.
  const accessible = async (name) => {
    const found = await page.evaluate(() => {
      const out = [];
      const named = (el) => (el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
        || (el.labels && el.labels.length > 0) || (el.innerText || el.value || "").trim() !== ""
        || el.getAttribute("title"));
      if (!document.documentElement.lang) out.push("<html> has no lang");
      const h1 = document.querySelectorAll("h1").length;
      if (h1 !== 1) out.push(`${h1} h1 elements`);
      let level = 0;
      for (const h of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
        const l = Number(h.tagName[1]);
        if (level && l > level + 1) out.push(`heading level skipped before "${h.innerText}"`);
        level = l;
      }
      if (!document.querySelector("main")) out.push("no main landmark");
      for (const c of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
        if (!(c.labels && c.labels.length > 0) && !c.getAttribute("aria-label")) {
          out.push(`unlabelled ${c.tagName.toLowerCase()} ${c.name || c.id}`);
        }
      }
      for (const b of document.querySelectorAll("button, a[href]")) {
        if (!named(b) && !b.querySelector("img[alt]:not([alt=''])")) out.push(`unnamed ${b.outerHTML.slice(0, 80)}`);
      }
      for (const i of document.querySelectorAll("img")) {
        if (!i.hasAttribute("alt")) out.push(`image without alt: ${i.src}`);
      }
      for (const t of document.querySelectorAll("table")) {
        if (!t.querySelector("th")) out.push("a table without header cells");
      }
      return out;
    });
    assert.deepEqual(found, [], `accessibility of ${name}`);
  };
  const shot = async (name) => {
    await accessible(name);
    step += 1;
    const file = `${out}/${String(step).padStart(2, "0")}-${name}.png`;
    // caret "initial": Playwright would otherwise inject a style to hide the caret, which the
    // console's CSP (rightly) blocks and reports as an error.
    await page.screenshot({ path: file, fullPage: true, caret: "initial" });
    console.log(`screenshot ${file}`);
  };
  const json = async (path, init) => (await fetch(control + path, init)).json();
  const eventually = async (what, check, ms = 60000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`not within ${ms / 1000} s: ${what}`);
  };
  const heartbeats = async () => {
    const text = await (await fetch(base + "/metrics")).text();
    return Number(/^pi_mcp_heartbeats_total (\d+)/m.exec(text)[1]);
  };
  const imagesLoaded = (selector) => page.locator(selector).evaluateAll((imgs) =>
    imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0));

  // Sign in: a wrong token first.
  await page.goto(base + "/");
  assert.match(page.url(), /\/login$/);
  await shot("sign-in");
  await page.getByLabel("Access token").fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That token is not right").waitFor();
  await shot("sign-in-wrong-token");
  await page.getByLabel("Access token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(base + "/");

  // Overview.
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  await page.getByRole("link", { name: "Pending approvals (2)" }).waitFor();
  await page.locator("#o-rep ~ ul a").first().waitFor();
  await shot("overview");

  // The firing rule, its chart, the investigation it started.
  await page.getByRole("link", { name: "Alerts" }).click();
  const card = page.locator("#rule-app-errors");
  await card.locator("h2 .badge.firing").waitFor();
  await card.getByText("count > 0").waitFor();
  await eventually("the rule's chart loads", () => imagesLoaded("#rule-app-errors img"));
  assert.equal(await card.locator('a[href^="/investigations/"]').count(), 1, "the investigation is linked");
  await shot("alerts-firing");

  // Silence it; then make it resolve and fire again: nothing is notified.
  const before = (await json("/notices")).count;
  await card.getByLabel("Mute for").selectOption("1h");
  await card.getByLabel("Comment").fill("known issue, fix deploying");
  await card.getByRole("button", { name: "Silence" }).click();
  await page.locator(".flash").getByText("silenced until").waitFor();
  await card.getByText("known issue, fix deploying").waitFor();
  await shot("alerts-silenced");
  await fetch(control + "/threshold/1000", { method: "POST" });
  await eventually("the silenced rule resolves", async () => {
    await page.reload();
    return (await card.locator("h2 .badge.ok").count()) === 1;
  });
  await fetch(control + "/threshold/0", { method: "POST" });
  await eventually("the silenced rule fires again", async () => {
    await page.reload();
    return (await card.locator("h2 .badge.firing").count()) === 1;
  });
  const beats = await heartbeats();
  await eventually("two more heartbeats", async () => (await heartbeats()) >= beats + 2);
  assert.equal((await json("/notices")).count, before, "a silenced rule notifies nothing");
  const metrics = await (await fetch(base + "/metrics")).text();
  assert.match(metrics, /pi_mcp_monitor_rule_silenced\{rule="app-errors"\} 1/);

  // Approve one held command: the held MCP call returns its output.
  await page.getByRole("link", { name: "Approvals" }).click();
  const approve = page.locator("article", { hasText: "console-approved" });
  await approve.waitFor();
  await page.locator("article", { hasText: "console-denied" }).waitFor();
  await shot("approvals-pending");
  // "Asked by" names the MCP client that asked (its self-declared name).
  assert.match(await approve.innerText(), /Asked by\s+client \S/);
  const approveId = (await approve.getAttribute("id")).replace("approval-", "");
  await approve.getByLabel("Reason").fill("checked the script");
  await approve.getByRole("button", { name: "Approve" }).click();
  await page.locator(".flash").getByText(`Approval ${approveId} approved`).waitFor();
  const ran = await json("/held/approve");
  assert.equal(ran.is_error, false, ran.text);
  assert.match(ran.text, /console-approved/);

  // Deny the other: the model's call gets the refusal with the reason.
  const deny = page.locator("article", { hasText: "console-denied" });
  await deny.getByLabel("Reason").fill("not during the incident");
  await deny.getByRole("button", { name: "Deny" }).click();
  await page.locator(".flash").getByText("denied").waitFor();
  const refused = await json("/held/deny");
  assert.equal(refused.is_error, true, refused.text);
  assert.match(refused.text, /denied/);
  assert.match(refused.text, /not during the incident/);
  const decided = page.locator(`#approval-${approveId}`);
  await decided.getByText("console session").waitFor();
  await decided.getByText("ran:").waitFor();
  await shot("approvals-decided");

  // Live: a new approval appears without a reload.
  await fetch(control + "/hold-live", { method: "POST" });
  await page.locator("article", { hasText: "console-live" }).waitFor({ timeout: 30000 });
  await page.locator("#live").getByText("Live: updated").waitFor();
  // Answered with the keyboard alone: type the reason, Tab past Approve to Deny, Enter.
  const live = page.locator("article", { hasText: "console-live" });
  await live.getByLabel("Reason").focus();
  await page.keyboard.type("answered from the keyboard");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Deny");
  await page.keyboard.press("Enter");
  await page.locator(".flash").getByText("denied").waitFor();
  const liveRefused = await json("/held/live");
  assert.equal(liveRefused.is_error, true, liveRefused.text);
  assert.match(liveRefused.text, /answered from the keyboard/);

  // A report with its charts.
  await page.getByRole("link", { name: "Reports" }).click();
  await shot("reports");
  await page.locator('main a[href^="/reports/ghost-demo/"]').first().click();
  await page.locator(".markdown img").first().waitFor();
  await eventually("the report's charts load", () => imagesLoaded(".markdown img"));
  await shot("report");

  // The investigation, linked to its alert.
  await page.getByRole("link", { name: "Investigations" }).click();
  await page.getByRole("link", { name: "app-errors" }).first().waitFor();
  // The silenced rule fired again, but started no second investigation.
  assert.equal(await page.locator("main tbody tr").count(), 1);
  await shot("investigations");
  await page.locator('main a[href^="/investigations/"]').first().click();
  await page.getByText("worker pool is exhausted").first().waitFor();
  await shot("investigation");

  // The audit log filtered to the approval.
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByLabel("Arguments contain").fill(approveId);
  await page.getByLabel("Decision").selectOption("allow");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/text=/);
  const rows = page.locator("#audit tbody tr");
  await rows.first().waitFor();
  const texts = await rows.allInnerTexts();
  assert.ok(texts.every((t) => t.includes(approveId)), texts.join("\n"));
  assert.ok(texts.some((t) => t.includes("console session")), texts.join("\n"));
  await shot("audit-filtered");

  // A phone-sized screen, reached with the keyboard: the skip link comes first.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(base + "/");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await shot("overview-phone");
  await page.goto(base + "/approvals");
  await shot("approvals-phone");

  // The wrong token's 401 is the one failed load the journey causes on purpose.
  const unexpected = problems.filter((p) => !/\/login: Failed to load resource: .* 401/.test(p));
  assert.deepEqual(unexpected, [], "no script errors, CSP violations or failed loads");
  console.log(`journey done: ${step} screenshots in ${out}`);
} finally {
  await browser.close();
}
