// harness.mjs — shared by the e2e tests: start the huashu binary on a temp copy of the
// phrasebook, launch Debian's Chromium headless (with or without the extension), and
// collect console errors. Every wait is bounded; nothing sleeps.

import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const extensionDir = path.join(repoRoot, "extension");
export const AGENT = "agent-e2e-token";
export const OWNER = "owner-e2e-token";

const CHROMIUM = process.env.HUASHU_CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const START_TIMEOUT_MS = 120_000;

export function binaryPath() {
  const bin = process.env.HUASHU_BIN || "target/debug/huashu";
  return path.isAbsolute(bin) ? bin : path.join(repoRoot, bin);
}

/**
 * Starts `huashu serve` on 127.0.0.1:0 with a temp copy of phrasebook/.
 * @returns {Promise<{url: string, host: string, stop: () => Promise<void>, logs: () => string}>}
 */
export async function startServer() {
  const bin = binaryPath();
  if (!existsSync(bin)) throw new Error(`huashu binary not found at ${bin} (build it or set HUASHU_BIN)`);
  const dir = mkdtempSync(path.join(tmpdir(), "huashu-e2e-"));
  cpSync(path.join(repoRoot, "phrasebook"), path.join(dir, "pb"), { recursive: true });
  const child = spawn(bin, [
    "serve", "--listen", "127.0.0.1:0", "--phrasebook", path.join(dir, "pb"), "--index", path.join(dir, "idx"),
    "--web", path.join(repoRoot, "web"),
  ], {
    env: { ...process.env, HUASHU_DEMO_AGENT_TOKEN: AGENT, HUASHU_DEMO_OWNER_TOKEN: OWNER, RUST_LOG: process.env.RUST_LOG || "huashu=info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  const keep = (chunk) => {
    log.push(chunk.toString());
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  child.stderr.on("data", keep);
  let exited = null;
  const exit = new Promise((resolve) => child.on("exit", (code, signal) => { exited = { code, signal }; resolve(); }));
  // Never leave a server behind, even when a test file dies before its `after` hook.
  const reap = () => { if (!exited) child.kill("SIGKILL"); };
  process.once("exit", reap);

  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      reject(new Error(`huashu did not start within ${START_TIMEOUT_MS} ms:\n${log.join("")}`));
    }, START_TIMEOUT_MS);
    child.stdout.on("data", (chunk) => {
      keep(chunk);
      out += chunk.toString();
      const m = /huashu serving the demo shop on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`huashu exited (${code ?? signal}) before serving:\n${log.join("")}`));
    });
  });

  const stop = async () => {
    process.removeListener("exit", reap);
    if (!exited) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exit;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { url, host: new URL(url).host, stop, logs: () => log.join("") };
}

/** Headless Chromium without extensions. */
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: false, args: ARGS, timeout: 60_000 });
}

/**
 * Headless Chromium with the extension loaded unpacked, in a fresh profile.
 * @returns {Promise<{context: import('playwright-core').BrowserContext, extensionId: string, close: () => Promise<void>}>}
 */
export async function launchWithExtension() {
  const profile = mkdtempSync(path.join(tmpdir(), "huashu-e2e-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: false,
    args: [...ARGS, `--disable-extensions-except=${extensionDir}`, `--load-extension=${extensionDir}`],
    ignoreDefaultArgs: ["--disable-extensions"],
    timeout: 60_000,
    viewport: { width: 1280, height: 800 },
  });
  let [worker] = context.serviceWorkers();
  if (!worker) worker = await context.waitForEvent("serviceworker", { timeout: 30_000 });
  const extensionId = new URL(worker.url()).host;
  return {
    context,
    extensionId,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Records console errors and uncaught exceptions of a page (and its frames).
 * `allow` lists regexps of expected messages (e.g. the browser's own report of a refused WebSocket).
 */
export function watchErrors(page, allow = []) {
  const errors = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !allow.some((re) => re.test(m.text()))) errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/** Sets the agent token in the standalone sidebar's token form. */
export async function sidebarLogin(page, token = AGENT) {
  await page.locator("#token-input").fill(token);
  await page.locator("#token-form button[type=submit]").click();
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
}

/** Makes a buyer say something in the demo chat workbench. */
export async function buyerSays(chat, buyerId, text) {
  await chat.locator("#sim-buyer").selectOption(buyerId);
  await chat.locator("#sim-text").fill(text);
  await chat.locator("#sim-send").click();
}

/**
 * Configures the extension through its settings page, opens the demo chat and the side
 * panel page (as a tab) and waits until the embedded sidebar is connected with the chat attached.
 */
export async function extensionSession(ext, server, { viaSettingsUi = true } = {}) {
  const { context, extensionId } = ext;
  const base = `chrome-extension://${extensionId}`;
  if (viaSettingsUi) {
    const options = await context.newPage();
    await options.goto(`${base}/options.html`);
    await options.locator("#server-url").fill(server.url);
    await options.locator("#token").fill(AGENT);
    await options.locator("#test").click();
    await options.locator('#result[data-kind="ok"], #result[data-kind="error"]').waitFor({ timeout: 15_000 });
    const verdict = await options.locator("#result").textContent();
    if ((await options.locator("#result").getAttribute("data-kind")) !== "ok") throw new Error(`测试连接 failed: ${verdict}`);
    await options.locator("#save").click();
    await options.locator('#result[data-kind="ok"]', { hasText: "已保存" }).waitFor({ timeout: 10_000 });
    await options.close();
  } else {
    const worker = context.serviceWorkers()[0];
    await worker.evaluate(([serverUrl, token]) => chrome.storage.local.set({ serverUrl, token }), [server.url, AGENT]);
  }
  const chat = await context.newPage();
  await chat.goto(`${server.url}/demo/chat`);
  await chat.locator("#message-list .msg").first().waitFor({ timeout: 15_000 });
  const panel = await context.newPage();
  await panel.setViewportSize({ width: 360, height: 900 });
  await panel.goto(`${base}/sidepanel.html`);
  const sidebar = panel.frameLocator("#sidebar");
  await sidebar.locator("#status[data-state=open]").waitFor({ timeout: 20_000 });
  await sidebar.locator('#adapter-state[data-attached="true"]').waitFor({ timeout: 20_000 });
  return { chat, panel, sidebar };
}
