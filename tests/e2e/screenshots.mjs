// screenshots.mjs — writes docs/img/sidebar.png (360 px wide: real suggestions and a draft
// warning) and docs/img/admin.png from a running server on a temp phrasebook copy.
//   cd tests/e2e && HUASHU_BIN=../../target/debug/huashu node screenshots.mjs
// Chinese text needs a CJK font on the machine (Debian: apt-get install fonts-wqy-microhei).

import { mkdirSync } from "node:fs";
import path from "node:path";
import { startServer, launchBrowser, repoRoot, AGENT, OWNER } from "./harness.mjs";

const out = path.join(repoRoot, "docs", "img");
mkdirSync(out, { recursive: true });

const server = await startServer();
const browser = await launchBrowser();
try {
  // The sidebar, as an agent sees it next to the chat.
  const context = await browser.newContext({ viewport: { width: 360, height: 1100 }, deviceScaleFactor: 2 });
  const page = await context.newPage();
  await page.goto(`${server.url}/`);
  await page.locator("#token-input").fill(AGENT);
  await page.locator("#token-form button[type=submit]").click();
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  for (const id of ["tb_laozhang88", "jd_orange_soda", "tb_xiaowang"]) {
    await page.locator("#add-conv-input").fill(id);
    await page.locator("#add-conv-form button").click();
    await page.locator(`.conv[data-conversation="${id}"][data-subscribed="true"]`).waitFor({ timeout: 10_000 });
  }
  const say = (conversation, text, buyer) => page.request.post(`${server.url}/v1/shops/demo/messages`, {
    headers: { Authorization: `Bearer ${AGENT}` },
    data: { conversation, text, buyer },
  });
  await say("tb_laozhang88", "发票什么时候能开好", "老张88");
  await say("jd_orange_soda", "凉席怎么还没发货", "橘子汽水");
  await say("tb_xiaowang", "在吗?能便宜点吗?什么时候发货", "小王爱买买");
  await page.locator('.conv[data-conversation="tb_xiaowang"] .conv-main').click();
  await page.locator("#suggestion-list .suggestion").nth(2).waitFor({ timeout: 10_000 });
  await page.locator("#draft-input").fill("亲,这款是全网最低价了,加我微信再给您优惠");
  await page.locator("#draft-preview mark.violation").first().waitFor({ timeout: 10_000 });
  await page.locator("#notice").evaluate((el) => { el.hidden = true; });
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: 360, height });
  await page.screenshot({ path: path.join(out, "sidebar.png"), fullPage: true });
  await context.close();

  // The owner's admin: phrases of one intent, with the editor's live compliance check.
  const admin = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await admin.goto(`${server.url}/admin`);
  await admin.locator("#token-input").fill(OWNER);
  await admin.locator("#token-form button[type=submit]").click();
  await admin.locator('#intent-nav .intent-link[data-intent="logistics"]').click();
  await admin.locator('#phrase-groups .group[data-intent="logistics"] .phrase').nth(3).waitFor({ timeout: 15_000 });
  await admin.locator("#toast").evaluate((el) => { el.hidden = true; });
  await admin.screenshot({ path: path.join(out, "admin.png") });
  await admin.close();
  console.log(`wrote ${path.join(out, "sidebar.png")} and ${path.join(out, "admin.png")}`);
} finally {
  await browser.close();
  await server.stop();
}
