// The JS client (web/huashu-client.js) in a real browser page against the real server:
// request/response promises, errors that leave the connection usable, events, reconnect
// with resubscribe, heartbeat, close codes, refused tokens and the bounded queue.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { startServer, launchBrowser, watchErrors, AGENT, OWNER } from "./harness.mjs";

/** A local port nothing listens on (bound, then released). */
function closedPort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let server;
let browser;
let page;
let errors;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  // A refused token is reported by Chromium itself as a failed WebSocket / a 401 resource.
  errors = watchErrors(page, [/HTTP Authentication failed/, /status of 401/, /ERR_CONNECTION_REFUSED/]);
  await page.goto(`${server.url}/demo/chat`);
  await page.evaluate(async () => {
    const mod = await import("/web/huashu-client.js");
    window.HC = mod;
    // A WebSocket the tests can break: `window.sockets` holds every one opened.
    window.sockets = [];
    window.TestSocket = class extends WebSocket {
      constructor(...args) {
        super(...args);
        window.sockets.push(this);
        this.dropPings = false;
      }
      send(data) {
        if (this.dropPings && JSON.parse(data).type === "ping") return;
        super.send(data);
      }
      /** Closes the socket and reports the given close code to the client at once. */
      fakeClose(code) {
        const handler = this.onclose;
        this.close();
        if (handler) handler({ code, reason: "" });
      }
    };
    window.events = (client, type) => {
      const list = [];
      client.on(type, (d) => list.push(d));
      return list;
    };
    window.waitFor = (client, type, pred = () => true, ms = 10000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => { off(); reject(new Error(`no ${type} event within ${ms} ms`)); }, ms);
        const off = client.on(type, (d) => {
          if (pred(d)) { clearTimeout(t); off(); resolve(d); }
        });
      });
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("requests resolve with their answers; welcome and status events", async () => {
  const r = await page.evaluate(async ([token]) => {
    const statuses = [];
    const c = new HC.HuashuClient({ url: `ws://${location.host}/v1/ws`, token, autoConnect: false });
    c.on("status", (s) => statuses.push(s.status));
    const welcome = waitFor(c, "welcome");
    c.connect();
    const w = await welcome;
    const sub = await c.subscribe("client-t1");
    const pong = await c.ping();
    const check = await c.check("亲,加我微信,我们保证明天发货");
    const ctx = await c.setContext("client-t1", { buyer: "小王", order_state: "paid" });
    const sugg = await c.sendCustomerMessage("client-t1", "能便宜点吗", { messageId: "cm-1", buyer: "小王" });
    const ack = await c.sendAgentMessage("client-t1", sugg.suggestions[0].text, { phraseId: sugg.suggestions[0].phrase_id });
    const unsub = await c.unsubscribe("client-t1");
    c.close();
    return { w, sub, pong, check, ctx, sugg, ack, unsub, statuses, final: c.status };
  }, [AGENT]);
  assert.equal(r.w.shop, "demo");
  assert.equal(r.w.role, "agent");
  assert.deepEqual(r.sub, { type: "subscribed", id: r.sub.id, conversation: "client-t1" });
  assert.equal(r.pong.type, "pong");
  assert.equal(r.check.type, "check_result");
  assert.equal(r.check.blocked, true);
  const wechat = r.check.violations.find((v) => v.category === "off_platform");
  assert.ok(wechat, "the off-platform violation is reported");
  assert.equal([..."亲,加我微信,我们保证明天发货"].slice(wechat.start, wechat.end).join(""), wechat.matched);
  assert.equal(r.ctx.type, "ack");
  assert.equal(r.ctx.request, "context");
  assert.equal(r.sugg.type, "suggestions");
  assert.equal(r.sugg.message_id, "cm-1");
  assert.equal(r.sugg.intents[0].intent, "bargaining");
  assert.equal(r.sugg.suggestions.length, 3);
  assert.equal(r.ack.request, "agent_message");
  assert.equal(r.ack.phrase_id, r.sugg.suggestions[0].phrase_id);
  assert.equal(r.unsub.type, "unsubscribed");
  assert.deepEqual(r.statuses, ["connecting", "open", "closed"]);
  assert.equal(r.final, "closed");
});

test("an error answer rejects only its request and the connection stays usable", async () => {
  const r = await page.evaluate(async ([token]) => {
    const c = new HC.HuashuClient({ url: `ws://${location.host}/v1/ws`, token });
    await waitFor(c, "welcome");
    const out = {};
    try {
      await c.setContext("client-t2", { colour: "red" });
      out.unexpected = true;
    } catch (e) {
      out.name = e.name;
      out.code = e.code;
      out.request = e.frame?.request;
    }
    try {
      await c.subscribe("");
    } catch (e) {
      out.code2 = e.code;
    }
    out.pong = (await c.ping()).type;
    out.status = c.status;
    c.close();
    return out;
  }, [AGENT]);
  assert.equal(r.unexpected, undefined);
  assert.equal(r.name, "HuashuError");
  assert.equal(r.code, "invalid");
  assert.equal(r.request, "context");
  assert.equal(r.code2, "invalid");
  assert.equal(r.pong, "pong");
  assert.equal(r.status, "open");
});

test("suggestions and phrasebook_updated arrive as events", async () => {
  const handle = await page.evaluateHandle(async ([token]) => {
    const c = new HC.HuashuClient({ url: `ws://${location.host}/v1/ws`, token });
    await waitFor(c, "welcome");
    await c.subscribe("client-t3");
    window.c3 = c;
    window.c3suggestions = waitFor(c, "suggestions", (m) => m.conversation === "client-t3");
    window.c3updated = waitFor(c, "phrasebook_updated");
    return true;
  }, [AGENT]);
  await handle.dispose();
  // A platform bridge posts a buyer message; the subscriber gets the push.
  const pushed = await page.request.post(`${server.url}/v1/shops/demo/messages`, {
    headers: { Authorization: `Bearer ${AGENT}` },
    data: { conversation: "client-t3", text: "我的快递到哪了", message_id: "bridge-1" },
  });
  assert.equal(pushed.status(), 200);
  const s = await page.evaluate(() => window.c3suggestions);
  assert.equal(s.message_id, "bridge-1");
  assert.equal(s.intents[0].intent, "logistics");
  // An owner edit is pushed to every sidebar of the shop.
  const write = await page.request.post(`${server.url}/v1/shops/demo/phrases`, {
    headers: { Authorization: `Bearer ${OWNER}` },
    data: { intent: "shipping", text: "客户端测试:今天下单明天发出哦~", keywords: ["客户端测试"] },
  });
  assert.equal(write.status(), 201);
  const version = (await write.json()).version;
  const u = await page.evaluate(() => window.c3updated);
  assert.equal(u.shop, "demo");
  assert.equal(u.version, version);
  await page.evaluate(() => window.c3.close());
});

test("after the connection drops it reconnects, resubscribes and sends what was queued", async () => {
  const r = await page.evaluate(async ([token]) => {
    const c = new HC.HuashuClient({ url: `ws://${location.host}/v1/ws`, token, WebSocket: TestSocket, backoffInitial: 50, backoffMax: 200 });
    await waitFor(c, "welcome");
    await c.subscribe("client-t4");
    const first = sockets[sockets.length - 1];
    const closed = waitFor(c, "status", (s) => s.status === "closed");
    const reopened = waitFor(c, "welcome");
    const resubscribed = waitFor(c, "message", (m) => m.type === "subscribed" && m.conversation === "client-t4" && sockets.length > 1);
    first.close();
    const st = await closed;
    // Queued while disconnected, sent once the connection is back.
    const queued = c.check("最好的质量");
    await reopened;
    const q = await queued;
    await resubscribed;
    window.c4 = c;
    window.c4push = waitFor(c, "suggestions", (m) => m.conversation === "client-t4");
    return { reason: st.reason, retry: st.retryInMs, sockets: sockets.length, subs: c.subscriptions, checked: q.type };
  }, [AGENT]);
  assert.equal(r.reason, "network");
  assert.ok(r.retry >= 0 && r.retry <= 200);
  assert.deepEqual(r.subs, ["client-t4"]);
  assert.equal(r.checked, "check_result");
  // The new connection is subscribed again (without the test asking): a bridge push reaches it.
  const pushed = await page.request.post(`${server.url}/v1/shops/demo/messages`, {
    headers: { Authorization: `Bearer ${AGENT}` },
    data: { conversation: "client-t4", text: "什么时候发货", message_id: "after-reconnect" },
  });
  assert.equal((await pushed.json()).delivered, 1);
  const got = await page.evaluate(() => window.c4push);
  assert.equal(got.message_id, "after-reconnect");
  await page.evaluate(() => window.c4.close());
});

test("a missing pong counts as a dead connection; close code 4008 reconnects", async () => {
  const r = await page.evaluate(async ([token]) => {
    const c = new HC.HuashuClient({ url: `ws://${location.host}/v1/ws`, token, WebSocket: TestSocket, pingInterval: 100, pongTimeout: 200, backoffInitial: 20, backoffMax: 50 });
    await waitFor(c, "welcome");
    const s1 = sockets[sockets.length - 1];
    s1.dropPings = true;
    const dead = await waitFor(c, "status", (s) => s.status === "closed");
    await waitFor(c, "welcome");
    const s2 = sockets[sockets.length - 1];
    const slow = waitFor(c, "status", (s) => s.status === "closed");
    const back = waitFor(c, "welcome");
    s2.fakeClose(4008);
    const tooSlow = await slow;
    await back;
    const pong = await c.ping();
    c.close();
    return { dead: dead.reason, tooSlow: tooSlow.reason, code: tooSlow.closeCode, pong: pong.type, distinct: s1 !== s2 };
  }, [AGENT]);
  assert.equal(r.dead, "heartbeat");
  assert.equal(r.tooSlow, "too_slow");
  assert.equal(r.code, 4008);
  assert.equal(r.pong, "pong");
  assert.ok(r.distinct);
});

test("a refused token ends in a clear status without retrying", async () => {
  const r = await page.evaluate(async () => {
    const statuses = [];
    const c = new HC.HuashuClient({ url: `ws://${location.host}/v1/ws`, token: "not-a-token", autoConnect: false, backoffInitial: 10 });
    c.on("status", (s) => statuses.push(`${s.status}:${s.reason || ""}`));
    const done = waitFor(c, "status", (s) => s.reason === "unauthorized");
    const pending = c.ping().catch((e) => e.code);
    c.connect();
    await done;
    const code = await pending;
    return { statuses, code, retrying: c._reconnectTimer !== null, status: c.status };
  });
  assert.deepEqual(r.statuses, ["connecting:", "closed:unauthorized"]);
  assert.equal(r.code, "unauthorized");
  assert.equal(r.retrying, false);
  assert.equal(r.status, "closed");
});

test("while disconnected the queue is bounded and requests time out", async () => {
  const port = await closedPort();
  const r = await page.evaluate(async ([port]) => {
    // Nothing listens on that port: the client keeps retrying with backoff.
    const c = new HC.HuashuClient({ url: `ws://127.0.0.1:${port}/v1/ws`, token: "x", authCheckUrl: null, maxQueue: 2, requestTimeout: 300, backoffInitial: 1000 });
    const a = c.ping().catch((e) => e.code);
    const b = c.check("你好").catch((e) => e.code);
    const third = await c.ping().catch((e) => e.code);
    const out = { third, a: await a, b: await b };
    c.close();
    out.afterClose = await c.ping().catch((e) => e.code);
    return out;
  }, [port]);
  assert.equal(r.third, "queue_full");
  assert.equal(r.a, "timeout");
  assert.equal(r.b, "timeout");
  assert.equal(r.afterClose, "closed");
});

test("no console errors on the page", () => {
  assert.deepEqual(errors, []);
});
