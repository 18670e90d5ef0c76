// The agent sidebar at `/` on its own (no extension), 360 px wide: token handling, the
// draft compliance check (scenario (c)), suggestions pushed by a bridge, placeholders,
// the 1/2/3 keys without a chat adapter, and the embed bridge's origin check.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { startServer, launchBrowser, watchErrors, sidebarLogin, AGENT, OWNER } from "./harness.mjs";

let server;
let browser;
let context;
let page;
let errors;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 360, height: 800 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  page = await context.newPage();
  errors = watchErrors(page);
  await page.goto(`${server.url}/`);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const push = (conversation, text, extra = {}) =>
  page.request.post(`${server.url}/v1/shops/demo/messages`, {
    headers: { Authorization: `Bearer ${AGENT}` },
    data: { conversation, text, ...extra },
  });

test("the token is asked for, remembered across reloads, and can be cleared", async () => {
  assert.equal(await page.locator("#token-panel").isVisible(), true);
  await sidebarLogin(page);
  assert.equal(await page.locator("#status").textContent(), "已连接");
  await page.reload();
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  assert.equal(await page.locator("#token-panel").isVisible(), false);
  await page.locator("#settings-btn").click();
  await page.locator("#token-clear").click();
  await page.locator("#notice", { hasText: "令牌已清除" }).waitFor({ timeout: 5_000 });
  assert.equal(await page.evaluate(() => localStorage.getItem("huashu.agentToken")), null);
  assert.equal(await page.locator("#status").getAttribute("data-state"), "closed");
  await sidebarLogin(page);
});

test("(c) a draft with 加我微信 shows a blocking warning with its span, and a rewrite can be applied", async () => {
  await page.locator("#add-conv-input").fill("draft-check");
  await page.locator("#add-conv-form button").click();
  const draft = page.locator("#draft-input");
  // Emoji before the span: offsets are code points, not UTF-16 units.
  await draft.fill("😀亲,加我微信吧,我们保证明天发货");
  const wechat = page.locator(".violation-item", { hasText: "加我微信" });
  await wechat.waitFor({ timeout: 10_000 });
  assert.ok((await wechat.getAttribute("class")).includes("block"));
  assert.equal(await wechat.locator(".matched").textContent(), "加我微信");
  assert.match(await wechat.locator(".msg").textContent(), /站外引流/);
  const marks = await page.locator("#draft-preview mark.violation").allTextContents();
  assert.deepEqual(marks, ["加我微信", "保证"]);
  assert.match(await page.locator("#draft-state").textContent(), /含禁止用语/);
  assert.equal(await page.locator('#draft-state[data-kind="blocked"]').count(), 1);
  assert.ok(await draft.evaluate((el) => el.classList.contains("blocked")));
  assert.equal(await page.locator("#draft-copy").isDisabled(), true);

  // 保证 has a rewrite: one click replaces exactly that span.
  await page.locator(".violation-item", { hasText: "保证" }).locator(".apply-rewrite").click();
  assert.equal(await draft.inputValue(), "😀亲,加我微信吧,我们尽量明天发货");
  await page.locator("#draft-preview mark.violation").first().waitFor({ timeout: 10_000 });
  await page.waitForFunction(() => document.querySelectorAll("#draft-preview mark.violation").length === 1, null, { timeout: 10_000 });
  assert.deepEqual(await page.locator("#draft-preview mark.violation").allTextContents(), ["加我微信"]);

  await draft.fill("亲,明天给您发货哦");
  await page.locator('#draft-state[data-kind="ok"]').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator(".violation-item").count(), 0);
  assert.equal(await page.locator("#draft-copy").isDisabled(), false);
});

test("suggestions pushed for a hand-added conversation; a missing variable is selected in the draft", async () => {
  await page.locator("#add-conv-input").fill("manual-1");
  await page.locator("#add-conv-form button").click();
  await page.locator('.conv.current[data-conversation="manual-1"]').waitFor({ timeout: 5_000 });
  // Once the server has confirmed the subscription, a bridge posts a buyer message.
  await page.locator('.conv[data-conversation="manual-1"][data-subscribed="true"]').waitFor({ timeout: 10_000 });
  // No order state is known here: the courier complaint's reply names the carrier, which
  // nobody has given yet, so one suggestion is incomplete.
  const r = await push("manual-1", "快递员不送上门", { message_id: "bridge-1" });
  assert.equal((await r.json()).delivered, 1);
  await page.locator("#buyer-text", { hasText: "快递员不送上门" }).waitFor({ timeout: 10_000 });
  await page.locator("#suggestion-list .suggestion").first().waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("#intent-list .intent .intent-label").first().textContent(), "物流查询");

  const incomplete = page.locator("#suggestion-list .suggestion.incomplete").first();
  await incomplete.waitFor({ timeout: 5_000 });
  const placeholder = await incomplete.locator("mark.placeholder").first().textContent();
  assert.match(placeholder, /^\{[a-z_]+\}$/);
  await incomplete.locator(".sugg-main").click();
  const selected = await page.locator("#draft-input").evaluate((ta) => ta.value.slice(ta.selectionStart, ta.selectionEnd));
  assert.equal(selected, placeholder);
  assert.equal(await page.locator("#draft-input").evaluate((ta) => document.activeElement === ta), true);
});

test("key 1 copies the first suggestion when no chat page is attached", async () => {
  await page.locator("#suggestions .section-head h2").click();
  const first = await page.locator("#suggestion-list .suggestion").first();
  assert.equal(await first.evaluate((li) => li.classList.contains("incomplete")), false, "the first suggestion is complete");
  const text = await first.locator(".sugg-text").textContent();
  await page.keyboard.press("1");
  await page.locator("#notice", { hasText: "已复制第 1 条" }).waitFor({ timeout: 5_000 });
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text);
  // Typing a digit in a text field does not trigger a suggestion.
  await page.locator("#add-conv-input").fill("");
  await page.locator("#add-conv-input").press("2");
  assert.equal(await page.locator("#add-conv-input").inputValue(), "2");
});

test("two questions in one message: each intent shows how surely it is asked, as its reply does", async () => {
  await page.locator("#add-conv-input").fill("manual-2");
  await page.locator("#add-conv-form button").click();
  await page.locator('.conv[data-conversation="manual-2"][data-subscribed="true"]').waitFor({ timeout: 10_000 });
  const r = await push("manual-2", "能便宜点吗?什么时候发货", { message_id: "bridge-2" });
  assert.equal((await r.json()).delivered, 1);
  await page.locator("#buyer-text", { hasText: "什么时候发货" }).waitFor({ timeout: 10_000 });
  await page.locator("#suggestion-list .suggestion").first().waitFor({ timeout: 10_000 });
  const chips = await page.locator("#intent-list .intent").evaluateAll((els) =>
    els.map((e) => ({ intent: e.dataset.intent, label: e.querySelector(".intent-label").textContent, pct: e.querySelector(".intent-conf").textContent })));
  assert.deepEqual(chips.map((c) => c.intent).sort(), ["bargaining", "shipping"]);
  for (const chip of chips) {
    // Each has about half the reading, yet each is plainly asked: the chip shows the latter,
    // the same figure as the reply of that intent.
    assert.ok(parseInt(chip.pct, 10) >= 80, `${chip.intent} ${chip.pct}`);
    const reply = page.locator("#suggestion-list .suggestion").filter({ has: page.locator(".intent-tag", { hasText: chip.label }) }).first();
    assert.equal(await reply.locator(".score").getAttribute("title"), `把握 ${chip.pct}`);
  }
});

test("an owner's edit shows as a notice; the layout fits 360 px", async () => {
  const r = await page.request.post(`${server.url}/v1/shops/demo/phrases`, {
    headers: { Authorization: `Bearer ${OWNER}` },
    data: { intent: "shipping", text: "侧栏测试:预售款下单后7天内发货~", keywords: ["预售"] },
  });
  assert.equal(r.status(), 201);
  await page.locator("#notice", { hasText: "话术库已更新" }).waitFor({ timeout: 10_000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 360 px (overflow ${overflow}px)`);
});

test("a refused token shows 令牌无效 and asks for a new one", async () => {
  const p = await context.newPage();
  const errs = watchErrors(p, [/HTTP Authentication failed/, /status of 401/]);
  await p.goto(`${server.url}/`);
  await p.evaluate(() => localStorage.removeItem("huashu.agentToken"));
  await p.reload();
  await p.locator("#token-input").fill("wrong-token");
  await p.locator("#token-form button[type=submit]").click();
  await p.locator('#status[data-state="auth"]', { hasText: "令牌无效" }).waitFor({ timeout: 15_000 });
  assert.equal(await p.locator("#token-panel").isVisible(), true);
  await p.close();
  assert.deepEqual(errs, []);
});

test("embedded (?embed=1) the sidebar takes config and buyer messages only from its declared parent origin", async () => {
  const parentPage = (parentOrigin) => `<!doctype html><meta charset="utf-8"><body>
<iframe id="f" style="width:360px;height:700px" src="${server.url}/?embed=1&parent=${encodeURIComponent(parentOrigin)}"></iframe>
<script>
  window.fromFrame = [];
  const f = document.getElementById("f");
  window.addEventListener("message", (e) => {
    if (e.source !== f.contentWindow) return;
    window.fromFrame.push(e.data);
    if (e.data && e.data.huashu === "ready") {
      f.contentWindow.postMessage({ huashu: "config", token: ${JSON.stringify(AGENT)} }, "*");
      f.contentWindow.postMessage({ huashu: "adapter", attached: true, page: "测试页" }, "*");
      f.contentWindow.postMessage({ huashu: "buyer_message", conversation: "embed-1", buyer: "嵌入买家", text: "能便宜点吗", messageId: "e-1" }, "*");
    }
  });
  window.sendConfig = () => f.contentWindow.postMessage({ huashu: "config", token: ${JSON.stringify(AGENT)} }, "*");
</script>`;
  // The embedding pages come from another origin: a small local HTTP server.
  const host = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(req.url === "/good" ? parentPage(hostOrigin) : parentPage("http://evil.test"));
  });
  await new Promise((resolve) => host.listen(0, "127.0.0.1", resolve));
  const hostOrigin = `http://127.0.0.1:${host.address().port}`;
  const p = await context.newPage();
  // The misdeclared parent makes Chromium report the sidebar's undeliverable postMessage.
  const errs = watchErrors(p, [/target origin provided \('http:\/\/evil\.test'\)/]);

  await p.goto(`${hostOrigin}/good`);
  const frame = p.frameLocator("#f");
  await frame.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  await frame.locator("#buyer-text", { hasText: "能便宜点吗" }).waitFor({ timeout: 15_000 });
  await frame.locator("#suggestion-list .suggestion").nth(2).waitFor({ timeout: 15_000 });
  assert.equal(await frame.locator("#adapter-state").getAttribute("data-attached"), "true");

  // Declared parent http://evil.test, actual parent the local page: nothing is accepted
  // and nothing is posted to the page.
  await p.goto(`${hostOrigin}/bad`);
  const frame2 = p.frameLocator("#f");
  await frame2.locator("#settings-btn").waitFor({ state: "attached", timeout: 15_000 });
  await p.evaluate(() => window.sendConfig());
  await frame2.locator("body[data-bridge-rejected]").waitFor({ state: "attached", timeout: 10_000 });
  assert.equal(await frame2.locator("#status").getAttribute("data-state"), "closed");
  assert.deepEqual(await p.evaluate(() => window.fromFrame), []);
  await p.close();
  await new Promise((resolve) => host.close(resolve));
  assert.deepEqual(errs, []);
});

test("no console errors in the sidebar", () => {
  assert.deepEqual(errors, []);
});
