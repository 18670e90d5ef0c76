// huashu-client.js — a dependency-free browser client of huashu's WebSocket protocol
// `huashu.v1` (docs/protocol.md). Usage and events: docs/frontends.md.
//
// Every request carries an `id` and returns a Promise: it resolves with the server's answer
// (`subscribed`, `unsubscribed`, `ack`, `check_result`, `pong`, or for a buyer message the
// `suggestions` push with the same `message_id`) and rejects with a {@link HuashuError} on a
// matching `error` frame, a timeout, a full queue or a lost connection. While disconnected,
// requests wait in a bounded queue and are sent when the connection is back; every
// subscribed conversation is subscribed again after each reconnect.

/** Connection states reported by the `status` event. */
export const STATUS = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  CLOSED: "closed",
});

/**
 * The error a request promise rejects with.
 * `code` is the server's error code (`missing_field`, `invalid`, `overloaded`, …) or one of
 * the client's own: `timeout`, `queue_full`, `disconnected`, `closed`.
 */
export class HuashuError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {object} [frame] the server's `error` frame, if there was one
   */
  constructor(code, message, frame) {
    super(message);
    this.name = "HuashuError";
    /** @type {string} */
    this.code = code;
    /** @type {object|undefined} */
    this.frame = frame;
  }
}

const ANSWERS = new Set(["subscribed", "unsubscribed", "ack", "check_result", "pong"]);

/**
 * @typedef {object} HuashuClientOptions
 * @property {string} url WebSocket URL, e.g. `ws://127.0.0.1:7700/v1/ws` (`http(s)://` is accepted and converted)
 * @property {string} token agent or owner token of the shop
 * @property {number} [requestTimeout=10000] ms until an unanswered request rejects with `timeout` (queued time included)
 * @property {number} [pingInterval=20000] ms between app-level `ping`s while open
 * @property {number} [pongTimeout=10000] ms to wait for the `pong` before the connection counts as dead and is replaced
 * @property {number} [connectTimeout=10000] ms an opening connection may take
 * @property {number} [backoffInitial=500] first reconnect delay, ms
 * @property {number} [backoffMax=30000] cap of the reconnect delay, ms
 * @property {number} [maxQueue=100] requests kept while disconnected; more reject with `queue_full`
 * @property {string|null} [authCheckUrl] URL fetched (GET) with the token after a connection failed before opening, to tell a refused token (401/403) from an unreachable server; default: `/v1/whoami` on the same host; `null` disables the probe
 * @property {boolean} [autoConnect=true] connect in the constructor
 * @property {typeof WebSocket} [WebSocket] WebSocket implementation (default: the global one)
 */

/**
 * Client of one huashu server for one token.
 *
 * Events (an `EventTarget`; listen with `addEventListener(type, e => e.detail)` or the
 * {@link HuashuClient#on} shorthand, which passes `detail` directly):
 * - `welcome` — the server's `welcome` frame (`shop`, `role`, …), after every (re)connect
 * - `status` — `{status, reason, attempt, retryInMs, closeCode}`; `status` is one of {@link STATUS};
 *   `reason` on `closed`: `network`, `too_slow` (4008), `idle` (1001), `heartbeat`, `unauthorized`
 *   (the token was refused: no more retries until {@link HuashuClient#connect}), `client` ({@link HuashuClient#close})
 * - `suggestions` — a `suggestions` push (for any subscribed conversation)
 * - `check_result` — every `check_result` (also the ones answering {@link HuashuClient#check})
 * - `phrasebook_updated` — `{shop, version}`
 * - `error` — a server `error` frame that answers no pending request (those reject their promise instead)
 * - `message` — every frame received, after the specific event
 */
export class HuashuClient extends EventTarget {
  /** @param {HuashuClientOptions} options */
  constructor(options) {
    super();
    if (!options || typeof options.url !== "string" || !options.url) {
      throw new TypeError("HuashuClient: options.url is required");
    }
    if (typeof options.token !== "string" || !options.token) {
      throw new TypeError("HuashuClient: options.token is required");
    }
    this._url = options.url.replace(/^http(s?):/i, "ws$1:");
    this._token = options.token;
    this._requestTimeout = options.requestTimeout ?? 10000;
    this._pingInterval = options.pingInterval ?? 20000;
    this._pongTimeout = options.pongTimeout ?? 10000;
    this._connectTimeout = options.connectTimeout ?? 10000;
    this._backoffInitial = options.backoffInitial ?? 500;
    this._backoffMax = options.backoffMax ?? 30000;
    this._maxQueue = options.maxQueue ?? 100;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (options.authCheckUrl === undefined) {
      const u = new URL(this._url);
      u.protocol = u.protocol === "wss:" ? "https:" : "http:";
      u.pathname = "/v1/whoami";
      u.search = "";
      this._authCheckUrl = u.toString();
    } else {
      this._authCheckUrl = options.authCheckUrl;
    }

    /** @type {WebSocket|null} */
    this._ws = null;
    this._status = STATUS.CLOSED;
    this._closedByUser = false;
    this._attempt = 0;
    this._nextId = 1;
    this._clientTag = Math.random().toString(36).slice(2, 8);
    /** pending requests by id: {resolve, reject, timer, kind, conversation, messageId} */
    this._pending = new Map();
    /** frames waiting for a connection: {frame, id} */
    this._queue = [];
    /** conversations to (re)subscribe */
    this._subscriptions = new Set();
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._stableTimer = null;
    this._welcome = null;

    if (options.autoConnect !== false) this.connect();
  }

  /** Current connection state, one of {@link STATUS}. */
  get status() {
    return this._status;
  }

  /** The last `welcome` frame (`shop`, `role`, …), or null before the first. */
  get welcome() {
    return this._welcome;
  }

  /** Conversations this client keeps subscribed (a copy). */
  get subscriptions() {
    return [...this._subscriptions];
  }

  /**
   * Listen to an event; the handler gets the event's `detail`. Returns a function that removes it.
   * @param {string} type
   * @param {(detail: any) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    const wrapped = (e) => handler(e.detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  /** (Re)connects now: also after a refused token or {@link HuashuClient#close}. */
  connect() {
    this._closedByUser = false;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    if (this._ws) return;
    this._open();
  }

  /**
   * Replaces the token and reconnects with it.
   * @param {string} token
   */
  setToken(token) {
    this._token = token;
    this._drop(null);
    this.connect();
  }

  /**
   * Closes the connection for good: pending and queued requests reject with `closed`,
   * no reconnect happens until {@link HuashuClient#connect}.
   */
  close() {
    this._closedByUser = true;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._drop(null);
    for (const item of this._queue.splice(0)) {
      this._settle(item.id, null, new HuashuError("closed", "客户端已关闭"));
    }
    for (const id of [...this._pending.keys()]) {
      this._settle(id, null, new HuashuError("closed", "客户端已关闭"));
    }
    this._setStatus(STATUS.CLOSED, { reason: "client" });
  }

  /**
   * Receive the suggestions of a conversation, now and after every reconnect.
   * @param {string} conversation
   * @returns {Promise<object>} the `subscribed` frame
   */
  subscribe(conversation) {
    this._subscriptions.add(conversation);
    return this._request({ type: "subscribe", conversation }, "subscribe");
  }

  /**
   * @param {string} conversation
   * @returns {Promise<object>} the `unsubscribed` frame
   */
  unsubscribe(conversation) {
    this._subscriptions.delete(conversation);
    return this._request({ type: "unsubscribe", conversation }, "unsubscribe");
  }

  /**
   * A buyer message seen by the front end. Resolves with the `suggestions` for it.
   * @param {string} conversation
   * @param {string} text
   * @param {{messageId?: string, buyer?: string}} [opts]
   * @returns {Promise<object>} the `suggestions` frame with the same `message_id`
   */
  sendCustomerMessage(conversation, text, opts = {}) {
    const messageId = opts.messageId || `${this._clientTag}-${this._nextId}`;
    const frame = { type: "customer_message", conversation, text, message_id: messageId };
    if (opts.buyer) frame.buyer = opts.buyer;
    return this._request(frame, "customer_message", { conversation, messageId });
  }

  /**
   * What the agent sent (or put into the chat input). Resolves with the `ack`, which carries
   * the recognised `phrase_id` and the compliance verdict `check`.
   * @param {string} conversation
   * @param {string} text
   * @param {{phraseId?: string}} [opts]
   * @returns {Promise<object>}
   */
  sendAgentMessage(conversation, text, opts = {}) {
    const frame = { type: "agent_message", conversation, text };
    if (opts.phraseId) frame.phrase_id = opts.phraseId;
    return this._request(frame, "agent_message");
  }

  /**
   * Facts about the conversation (`buyer`, `order_id`, `tracking_no`, `carrier`, `item`, `eta`,
   * `amount`, `order_state`); an empty string clears a field.
   * @param {string} conversation
   * @param {Record<string, string>} fields
   * @returns {Promise<object>} the `ack`
   */
  setContext(conversation, fields) {
    return this._request({ ...fields, type: "context", conversation }, "context");
  }

  /**
   * Compliance check of a draft. Resolves with the `check_result` (`blocked`, `violations`
   * with code-point `start`/`end`, `rewritten`).
   * @param {string} text
   * @returns {Promise<object>}
   */
  check(text) {
    return this._request({ type: "check", text }, "check");
  }

  /** @returns {Promise<object>} the `pong` */
  ping() {
    return this._request({ type: "ping" }, "ping");
  }

  // ---- internals ----

  _request(frame, kind, extra = {}) {
    const id = `${this._clientTag}-${this._nextId++}`;
    const full = { ...frame, id };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._queue = this._queue.filter((q) => q.id !== id);
        this._settle(id, null, new HuashuError("timeout", `请求超时(${kind})`));
      }, this._requestTimeout);
      this._pending.set(id, { resolve, reject, timer, kind, ...extra });
      if (this._status === STATUS.OPEN && this._ws) {
        this._sendNow(full);
      } else if (this._closedByUser) {
        this._settle(id, null, new HuashuError("closed", "客户端已关闭"));
      } else if (this._queue.length >= this._maxQueue) {
        this._settle(id, null, new HuashuError("queue_full", "未连接,待发送的请求太多"));
      } else {
        this._queue.push({ id, frame: full });
      }
    });
  }

  _sendNow(frame) {
    try {
      this._ws.send(JSON.stringify(frame));
    } catch (e) {
      this._settle(frame.id, null, new HuashuError("disconnected", "连接已断开"));
    }
  }

  _settle(id, value, error) {
    const p = this._pending.get(id);
    if (!p) return false;
    this._pending.delete(id);
    clearTimeout(p.timer);
    if (error) p.reject(error);
    else p.resolve(value);
    return true;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setStatus(status, extra = {}) {
    this._status = status;
    this._emit("status", { status, attempt: this._attempt, ...extra });
  }

  _open() {
    let ws;
    this._setStatus(STATUS.CONNECTING);
    try {
      ws = new this._WebSocket(this._url, ["huashu.v1", "bearer." + this._token]);
    } catch (e) {
      this._scheduleReconnect({ reason: "network" });
      return;
    }
    this._ws = ws;
    let opened = false;
    this._connectTimer = setTimeout(() => {
      if (this._ws === ws && !opened) {
        this._drop(ws);
        this._scheduleReconnect({ reason: "network" });
      }
    }, this._connectTimeout);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      opened = true;
      clearTimeout(this._connectTimer);
    };
    ws.onmessage = (e) => {
      if (this._ws !== ws) return;
      this._onFrame(e.data);
    };
    ws.onerror = () => {
      // The close event follows; the browser logs the cause.
    };
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      this._drop(ws);
      if (this._closedByUser) return;
      if (!opened) {
        this._failedBeforeOpen();
        return;
      }
      const reason = e.code === 4008 ? "too_slow" : e.code === 1001 ? "idle" : "network";
      this._scheduleReconnect({ reason, closeCode: e.code });
    };
  }

  async _failedBeforeOpen() {
    // A refused token is an HTTP 401 before the upgrade, which a browser reports only as a
    // failed connection: ask over HTTP to tell it from an unreachable server.
    if (this._authCheckUrl && typeof fetch === "function") {
      const token = this._token;
      let status = 0;
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), 5000);
      try {
        const r = await fetch(this._authCheckUrl, {
          headers: { Authorization: "Bearer " + token },
          signal: ctl.signal,
        });
        status = r.status;
      } catch (e) {
        status = 0;
      } finally {
        clearTimeout(timer);
      }
      if (this._closedByUser || this._ws || token !== this._token) return;
      if (status === 401 || status === 403) {
        clearTimeout(this._reconnectTimer);
        this._reconnectTimer = null;
        for (const item of this._queue.splice(0)) {
          this._settle(item.id, null, new HuashuError("unauthorized", "令牌无效或已失效"));
        }
        this._setStatus(STATUS.CLOSED, { reason: "unauthorized" });
        return;
      }
    }
    if (this._closedByUser || this._ws) return;
    this._scheduleReconnect({ reason: "network" });
  }

  /** Forgets the socket `ws` (or the current one when null): timers off, in-flight requests rejected. */
  _drop(ws) {
    const cur = this._ws;
    if (!cur || (ws && ws !== cur)) return;
    this._ws = null;
    clearTimeout(this._connectTimer);
    clearTimeout(this._stableTimer);
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = this._pongTimer = this._stableTimer = this._connectTimer = null;
    cur.onopen = cur.onmessage = cur.onerror = cur.onclose = null;
    try {
      if (cur.readyState === 0 || cur.readyState === 1) cur.close(1000);
    } catch (e) {
      /* already closing */
    }
    // Requests already on the wire will get no answer on a new connection.
    const queued = new Set(this._queue.map((q) => q.id));
    for (const id of [...this._pending.keys()]) {
      if (!queued.has(id)) this._settle(id, null, new HuashuError("disconnected", "连接已断开"));
    }
  }

  _scheduleReconnect(extra) {
    if (this._closedByUser) return;
    clearTimeout(this._reconnectTimer);
    const base = Math.min(this._backoffMax, this._backoffInitial * 2 ** Math.min(this._attempt, 16));
    // Jitter: anywhere between half and the whole delay, so many clients do not return together.
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this._attempt += 1;
    this._setStatus(STATUS.CLOSED, { ...extra, retryInMs: delay });
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (!this._closedByUser && !this._ws) this._open();
    }, delay);
  }

  _onWelcome(frame) {
    this._welcome = frame;
    // Backoff restarts only once a connection has stayed up for a while, so a server that
    // accepts and drops at once is not hammered.
    this._stableTimer = setTimeout(() => {
      this._attempt = 0;
    }, 10000);
    this._setStatus(STATUS.OPEN);
    this._emit("welcome", frame);
    const queuedSubs = new Set(
      this._queue.filter((q) => q.frame.type === "subscribe").map((q) => q.frame.conversation),
    );
    for (const conversation of this._subscriptions) {
      if (queuedSubs.has(conversation)) continue;
      this._request({ type: "subscribe", conversation }, "subscribe").catch((err) => {
        this._emit("error", { code: err.code, message: err.message, request: "subscribe", conversation });
      });
    }
    for (const item of this._queue.splice(0)) {
      if (this._pending.has(item.id)) this._sendNow(item.frame);
    }
    this._pingTimer = setInterval(() => this._heartbeat(), this._pingInterval);
  }

  _heartbeat() {
    const ws = this._ws;
    if (!ws || this._pongTimer) return;
    this._pongTimer = setTimeout(() => {
      if (this._ws !== ws) return;
      this._drop(ws);
      this._scheduleReconnect({ reason: "heartbeat" });
    }, this._pongTimeout);
    this.ping().then(
      () => {
        if (this._ws === ws) {
          clearTimeout(this._pongTimer);
          this._pongTimer = null;
        }
      },
      () => {
        /* the pong timer decides */
      },
    );
  }

  _onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    const type = frame.type;
    if (type === "welcome") {
      this._onWelcome(frame);
    } else if (type === "error") {
      const id = frame.id == null ? null : String(frame.id);
      const err = new HuashuError(frame.code || "error", frame.message || "服务器错误", frame);
      if (!(id && this._settle(id, null, err))) this._emit("error", frame);
    } else if (type === "suggestions") {
      for (const [id, p] of this._pending) {
        if (p.kind === "customer_message" && p.messageId === frame.message_id && p.conversation === frame.conversation) {
          this._settle(id, frame, null);
          break;
        }
      }
      this._emit("suggestions", frame);
    } else if (ANSWERS.has(type)) {
      if (frame.id != null) this._settle(String(frame.id), frame, null);
      if (type === "check_result") this._emit("check_result", frame);
    } else if (type === "phrasebook_updated") {
      this._emit("phrasebook_updated", frame);
    }
    this._emit("message", frame);
  }
}
