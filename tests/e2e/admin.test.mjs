// The owner admin at /admin: validation before saving (dry run + live compliance), create,
// conflicts (409), delete, intent examples, the try-it box, 千牛 import with its dry-run
// report, history and revert, and the read-only view for an agent token.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, launchBrowser, watchErrors, AGENT, OWNER } from "./harness.mjs";

let server;
let browser;
let page;
let errors;
let files;

// Answers the admin expects and explains on the page; Chromium logs every non-2xx fetch.
const EXPECTED_HTTP = [/status of (409|422)/];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  errors = watchErrors(page, EXPECTED_HTTP);
  files = mkdtempSync(path.join(tmpdir(), "huashu-e2e-sheets-"));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (files) rmSync(files, { recursive: true, force: true });
});

const rest = (method, p, data, token = OWNER) =>
  page.request.fetch(`${server.url}/v1/shops/demo${p}`, { method, headers: { Authorization: `Bearer ${token}` }, data });

async function openNewPhrase() {
  await page.locator("#new-phrase").click();
  await page.locator("#phrase-dialog[open]").waitFor({ timeout: 5_000 });
}

test("the owner token is remembered and phrases are listed by intent with a search", async () => {
  await page.goto(`${server.url}/admin`);
  await page.locator("#token-input").fill(OWNER);
  await page.locator("#token-form button[type=submit]").click();
  await page.locator('#phrase-groups .group[data-intent="logistics"]').waitFor({ timeout: 15_000 });
  const head = page.locator('#phrase-groups .group[data-intent="logistics"] .group-head');
  assert.match(await head.textContent(), /物流查询/);
  assert.match(await head.locator(".count").textContent(), /\d+ 条话术/);
  await page.locator("#phrase-search").fill("包邮");
  await page.locator("#phrase-summary", { hasText: "搜索“包邮”" }).waitFor({ timeout: 10_000 });
  assert.ok(await page.locator("#phrase-groups .phrase").count() > 0);
  await page.locator("#phrase-search").fill("");
  await page.locator("#phrase-summary", { hasText: "共" }).waitFor({ timeout: 10_000 });
  await page.reload();
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  assert.equal(await page.locator("#token-panel").isVisible(), false);
});

test("mistakes are shown inline before saving, and nothing is written while checking", async () => {
  const before = await (await rest("GET", "/history")).json();
  await openNewPhrase();
  await page.locator("#f-intent").selectOption("shipping");
  await page.locator("#f-text").fill("您好{nick},马上为您安排发货");
  await page.locator('.field-msg[data-for="text"]', { hasText: "未知变量 {nick}" }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#phrase-validation[data-kind="error"]').count(), 1);

  // Live compliance: the span is highlighted as the owner types.
  await page.locator("#f-text").fill("有问题加我微信,处理更快");
  await page.locator("#f-text-preview mark.violation", { hasText: "加我微信" }).waitFor({ timeout: 10_000 });
  await page.locator('.field-msg[data-for="text"]', { hasText: "禁止用语" }).waitFor({ timeout: 10_000 });

  // A 快捷编码 another phrase has.
  await page.locator("#f-text").fill("亲,今天下单明天就能发出哦~");
  await page.locator("#f-code").fill("yj1");
  await page.locator('.field-msg[data-for="code"]', { hasText: "已被话术" }).waitFor({ timeout: 10_000 });
  // Checked in the browser without asking the server.
  await page.locator("#f-code").fill("坏码");
  await page.locator('.field-msg[data-for="code"]', { hasText: "只能是 1–16 个字母或数字" }).waitFor({ timeout: 10_000 });
  await page.locator("#f-code").fill("");
  await page.locator('#phrase-validation[data-kind="ok"]').waitFor({ timeout: 10_000 });
  await page.locator("#phrase-cancel").click();
  const after = await (await rest("GET", "/history")).json();
  assert.deepEqual(after.history, before.history, "dry runs wrote nothing");
});

let created;
test("a new phrase is saved with all its fields", async () => {
  await openNewPhrase();
  await page.locator("#f-intent").selectOption("shipping");
  await page.locator("#f-text").fill("亲,冷链生鲜每天下午三点统一发出,{buyer|您}放心~");
  await page.locator("#f-keywords").fill("冷链, 生鲜");
  await page.locator("#f-code").fill("ll9");
  await page.locator("#f-stage").selectOption("售中");
  await page.locator('#f-order-state input[value="paid"]').check();
  await page.locator("#f-priority").fill("7");
  await page.locator("#f-tags").fill("生鲜");
  await page.locator("#f-valid-from").fill("2026-01-01");
  await page.locator("#f-valid-until").fill("2026-12-31");
  await page.locator('#phrase-validation[data-kind="ok"]').waitFor({ timeout: 10_000 });
  await page.locator("#phrase-save").click();
  await page.locator("#toast", { hasText: "已保存" }).waitFor({ timeout: 10_000 });
  const found = (await (await rest("GET", "/phrases?code=ll9")).json()).phrases;
  assert.equal(found.length, 1);
  created = found[0];
  assert.equal(created.intent, "shipping");
  assert.deepEqual(created.keywords, ["冷链", "生鲜"]);
  assert.equal(created.stage, "售中");
  assert.deepEqual(created.order_state, ["paid"]);
  assert.equal(created.priority, 7);
  assert.deepEqual(created.tags, ["生鲜"]);
  assert.match(created.valid_from, /^2026-01-01/);
  assert.equal(created.enabled, true);
  await page.locator(`#phrase-groups .phrase[data-phrase-id="${created.id}"]`).waitFor({ timeout: 10_000 });
});

test("an edit based on a stale revision is explained (409) and can be reloaded", async () => {
  await page.locator(`#phrase-groups .phrase[data-phrase-id="${created.id}"] button`, { hasText: "编辑" }).click();
  await page.locator("#phrase-dialog[open]").waitFor({ timeout: 5_000 });
  // Someone else changes it meanwhile.
  const other = await rest("PUT", `/phrases/${created.id}`, { ...created, text: "亲,冷链生鲜每天下午四点统一发出哦~", base_revision: created.revision, id: undefined, revision: undefined });
  assert.equal(other.status(), 200);
  await page.locator("#f-text").fill("亲,冷链生鲜每天下午两点统一发出哦~");
  await page.locator("#phrase-save").click();
  await page.locator("#phrase-conflict", { hasText: "已被他人修改" }).waitFor({ timeout: 10_000 });
  await page.locator("#phrase-reload").click();
  await page.locator("#toast", { hasText: "已加载最新内容" }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("#f-text").inputValue(), "亲,冷链生鲜每天下午四点统一发出哦~");
  assert.equal(await page.locator("#phrase-conflict").isVisible(), false);
  await page.locator("#f-text").fill("亲,冷链生鲜每天下午两点统一发出哦~");
  await page.locator("#phrase-save").click();
  await page.locator("#toast", { hasText: "已保存" }).waitFor({ timeout: 10_000 });
  const now = await (await rest("GET", `/phrases/${created.id}`)).json();
  assert.equal(now.text, "亲,冷链生鲜每天下午两点统一发出哦~");
});

test("a phrase is deleted after confirmation", async () => {
  const item = page.locator(`#phrase-groups .phrase[data-phrase-id="${created.id}"]`);
  await item.locator("button", { hasText: "删除" }).click();
  await page.locator("#confirm-dialog[open]").waitFor({ timeout: 5_000 });
  await page.locator("#confirm-ok").click();
  await page.locator("#toast", { hasText: `已删除 ${created.id}` }).waitFor({ timeout: 10_000 });
  await item.waitFor({ state: "detached", timeout: 10_000 });
  assert.equal((await rest("GET", `/phrases/${created.id}`)).status(), 404);
});

test("example utterances of an intent are edited", async () => {
  const group = page.locator('#phrase-groups .group[data-intent="stock"]');
  await group.locator("button", { hasText: "编辑意图与例句" }).click();
  await page.locator("#intent-dialog[open]").waitFor({ timeout: 5_000 });
  const examples = page.locator("#i-examples");
  await examples.fill(`${await examples.inputValue()}\n云感棉四件套还有现货吗`);
  await page.locator("#intent-save").click();
  await page.locator("#toast", { hasText: "已保存意图 stock" }).waitFor({ timeout: 15_000 });
  const intents = (await (await rest("GET", "/intents")).json()).intents;
  assert.ok(intents.find((i) => i.id === "stock").examples.includes("云感棉四件套还有现货吗"));
});

test("the try-it box shows intents and suggestions", async () => {
  await page.locator('.tabs [data-tab="try"]').click();
  await page.locator("#try-text").fill("拍下了帮我改下价");
  await page.locator("#try-form button[type=submit]").click();
  await page.locator('#try-result .intent-chip[data-intent="price_change"]', { hasText: "改价" }).waitFor({ timeout: 10_000 });
  assert.ok(await page.locator("#try-result .try-suggestion").count() >= 1);
});

test("a 千牛 sheet is checked first (rejected rows with rewrites), then imported on confirmation", async () => {
  await page.locator('.tabs [data-tab="import"]').click();
  const bad = path.join(files, "有问题的表.csv");
  writeFileSync(bad, "\ufeff分组,快捷编码,快捷短语\r\n欢迎语,e2eok1,\"亲,在的,请问想了解哪款?\"\r\n物流,e2ebad1,我们保证明天一定送到\r\n售后,e2ebad2,有问题加我微信处理更快\r\n");
  await page.locator("#import-file").setInputFiles(bad);
  const rejected = page.locator("#import-report table.rejected tbody tr");
  await rejected.nth(1).waitFor({ timeout: 15_000 });
  assert.equal(await rejected.count(), 2);
  assert.match(await rejected.nth(0).textContent(), /我们尽量明天送到/);
  assert.match(await page.locator("#import-report").textContent(), /整个文件不会导入/);
  assert.equal(await page.locator("#import-confirm").isVisible(), false);

  const good = path.join(files, "快捷短语.csv");
  writeFileSync(good, "分组,快捷编码,快捷短语\n欢迎语,e2eok1,\"亲,在的,请问想了解哪款?\"\n刻字服务,e2ekz1,亲,刻字免费,下单时备注要刻的字就好~\n");
  await page.locator("#import-file").setInputFiles(good);
  await page.locator("#import-report", { hasText: "预检通过" }).waitFor({ timeout: 15_000 });
  assert.match(await page.locator("#import-report").textContent(), /将新建意图:刻字服务/);
  assert.equal((await (await rest("GET", "/phrases?code=e2ekz1")).json()).phrases.length, 0, "the dry run wrote nothing");
  await page.locator("#import-confirm").click();
  await page.locator("#import-report", { hasText: "已导入 2 条" }).waitFor({ timeout: 15_000 });
  assert.equal((await (await rest("GET", "/phrases?code=e2ekz1")).json()).phrases.length, 1);
});

test("history lists the writes and a version can be reverted", async () => {
  await page.locator('.tabs [data-tab="history"]').click();
  const importRow = page.locator("#history-body tr", { hasText: "导入千牛快捷短语表" });
  await importRow.waitFor({ timeout: 10_000 });
  const importVersion = Number(await importRow.getAttribute("data-version"));
  // Back to the version before the import: the imported phrases are gone again.
  await page.locator(`#history-body tr[data-version="${importVersion - 1}"] button`).click();
  await page.locator("#confirm-dialog[open]").waitFor({ timeout: 5_000 });
  await page.locator("#confirm-ok").click();
  await page.locator("#toast", { hasText: `已恢复到版本 ${importVersion - 1}` }).waitFor({ timeout: 15_000 });
  await page.locator("#history-body tr", { hasText: `恢复到版本 ${importVersion - 1}` }).waitFor({ timeout: 10_000 });
  assert.equal((await (await rest("GET", "/phrases?code=e2ekz1")).json()).phrases.length, 0);
});

test("an agent token sees the phrasebook read-only", async () => {
  const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errs = watchErrors(p);
  await p.goto(`${server.url}/admin`);
  await p.locator("#token-input").fill(AGENT);
  await p.locator("#token-form button[type=submit]").click();
  await p.locator("#banner", { hasText: "只能查看" }).waitFor({ timeout: 15_000 });
  await p.locator("#phrase-groups .phrase").first().waitFor({ timeout: 10_000 });
  assert.equal(await p.locator("#new-phrase").isVisible(), false);
  assert.equal(await p.locator("#phrase-groups .phrase button").first().isVisible(), false);
  await p.close();
  assert.deepEqual(errs, []);
});

test("no unexpected console errors in the admin", () => {
  assert.deepEqual(errors, []);
});
