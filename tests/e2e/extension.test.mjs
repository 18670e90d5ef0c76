// The whole workbench in headless Chromium: the extension loaded unpacked and configured
// through its settings page, the demo chat with the content-script adapter, the side panel
// page embedding the server's sidebar, and the owner admin.
// Scenarios (e), (a), (b) and (d) of issue 6.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchWithExtension, extensionSession, buyerSays, watchErrors, OWNER } from "./harness.mjs";

let server;
let ext;
let chat;
let panel;
let sidebar;
const errors = [];

before(async () => {
  server = await startServer();
  ext = await launchWithExtension();
});

after(async () => {
  await ext?.close();
  await server?.stop();
});

test("(e) the extension is configured in its settings page and its side panel gets suggestions for a demo-chat message", async () => {
  ({ chat, panel, sidebar } = await extensionSession(ext, server, { viaSettingsUi: true }));
  errors.push(watchErrors(chat), watchErrors(panel));
  // The adapter reported the open chat: the sidebar follows it.
  await sidebar.locator('.conv.current[data-conversation="tb_xiaowang"]').waitFor({ timeout: 10_000 });

  await buyerSays(chat, "tb_xiaowang", "我的快递到哪了");
  await sidebar.locator("#buyer-text", { hasText: "我的快递到哪了" }).waitFor({ timeout: 15_000 });
  await sidebar.locator("#suggestion-list .suggestion").first().waitFor({ timeout: 15_000 });
  assert.equal(await sidebar.locator("#intent-list .intent").first().getAttribute("data-intent"), "logistics");
});

test("(a) a buyer message typed in the demo chat shows in the sidebar with its intent and 3 suggestions", async () => {
  // A buyer whose chat is not open: the adapter reads the chat list, the sidebar marks it unread.
  await buyerSays(chat, "jd_orange_soda", "能便宜点吗");
  const conv = sidebar.locator('.conv[data-conversation="jd_orange_soda"]');
  await conv.locator(".unread-dot").waitFor({ timeout: 15_000 });
  await conv.locator(".conv-main").click();
  await sidebar.locator("#buyer-text", { hasText: "能便宜点吗" }).waitFor({ timeout: 10_000 });
  await sidebar.locator("#suggestion-list .suggestion").nth(2).waitFor({ timeout: 15_000 });
  assert.equal(await sidebar.locator("#suggestion-list .suggestion").count(), 3);
  // Intent shown with its Chinese label and confidence.
  const intent = sidebar.locator("#intent-list .intent").first();
  assert.equal(await intent.getAttribute("data-intent"), "bargaining");
  assert.equal(await intent.locator(".intent-label").textContent(), "议价");
  assert.match(await intent.locator(".intent-conf").textContent(), /^\d+%$/);
  // Each suggestion: its number, intent label and score bar.
  for (let i = 0; i < 3; i++) {
    const s = sidebar.locator("#suggestion-list .suggestion").nth(i);
    assert.equal(await s.locator(".num").textContent(), String(i + 1));
    assert.ok((await s.locator(".intent-tag").textContent()).length > 0);
    assert.ok(await s.locator(".score-bar").count());
  }
  assert.equal(await conv.locator(".unread-dot").count(), 0, "opening the conversation clears its unread marker");
});

test("(b) pressing 2 in the sidebar inserts the second suggestion into the demo chat's input box", async () => {
  const second = await sidebar.locator("#suggestion-list .suggestion").nth(1).locator(".sugg-text").textContent();
  assert.ok(second && !/\{[a-z_]+\}/.test(second), "the second suggestion is complete");
  await panel.bringToFront();
  // Focus inside the sidebar but not in a text field, then press 2.
  await sidebar.locator("#suggestions .section-head h2").click();
  await panel.keyboard.press("2");
  await sidebar.locator("#notice", { hasText: "已把第 2 条填入聊天输入框" }).waitFor({ timeout: 10_000 });
  // The adapter switched the chat to that buyer and filled the input (value + input event).
  assert.equal(await chat.locator("#chat-title").getAttribute("data-buyer-id"), "jd_orange_soda");
  assert.equal(await chat.locator("#chat-input").inputValue(), second);
  assert.equal(await chat.locator("#char-count").textContent(), `${second.length}/500`);
  // The seller sends it; the seller's own message is not reported as a buyer message.
  await chat.locator("#send-btn").click();
  await chat.locator("#message-list .msg-seller .msg-text", { hasText: second.slice(0, 10) }).waitFor({ timeout: 5_000 });
  assert.equal(await chat.locator("#chat-input").inputValue(), "");
});

test("(d) a phrase the owner adds in /admin is suggested for the next buyer message with its keyword", async () => {
  const admin = await ext.context.newPage();
  errors.push(watchErrors(admin));
  await admin.goto(`${server.url}/admin`);
  await admin.locator("#token-input").fill(OWNER);
  await admin.locator("#token-form button[type=submit]").click();
  await admin.locator("#intent-nav .intent-link").nth(1).waitFor({ timeout: 15_000 });

  const text = "亲,火山岩枕芯可以整只拆洗,外套冷水机洗即可,晾干后拍松就好~";
  await admin.locator('#intent-nav .intent-link[data-intent="product_inquiry"]').click();
  await admin.locator("#new-phrase").click();
  await admin.locator("#f-intent").selectOption("product_inquiry");
  await admin.locator("#f-text").fill(text);
  await admin.locator("#f-keywords").fill("火山岩枕, 机洗");
  await admin.locator("#f-priority").fill("9");
  await admin.locator("#f-code").fill("hsy1");
  await admin.locator('#phrase-validation[data-kind="ok"]').waitFor({ timeout: 15_000 });
  await admin.locator("#phrase-save").click();
  await admin.locator("#toast", { hasText: "已保存" }).waitFor({ timeout: 15_000 });
  await admin.locator("#phrase-groups .phrase .phrase-text", { hasText: "火山岩枕芯" }).waitFor({ timeout: 10_000 });
  // The open sidebar hears about the edit.
  await sidebar.locator("#notice", { hasText: "话术库已更新" }).waitFor({ timeout: 10_000 });

  await chat.bringToFront();
  await buyerSays(chat, "tb_amay", "火山岩枕能机洗吗");
  await sidebar.locator('.conv[data-conversation="tb_amay"] .conv-main').click();
  await sidebar.locator("#buyer-text", { hasText: "火山岩枕能机洗吗" }).waitFor({ timeout: 15_000 });
  await sidebar.locator("#suggestion-list .suggestion .sugg-text", { hasText: "火山岩枕芯可以整只拆洗" }).waitFor({ timeout: 15_000 });
  await admin.close();
});

test("no console errors in the chat, side panel and admin pages", () => {
  assert.deepEqual(errors.flat(), []);
});
