// ui.js — small helpers shared by the sidebar and the admin page: DOM building that never
// parses markup (all text goes through textContent), REST calls with timeouts, Chinese
// error messages, code-point spans.

/**
 * Creates an element. `attrs`: `class`, `dataset` (object), `on` (event → handler), `text`,
 * properties (`value`, `disabled`, `type`, …) or attributes (anything with a dash, `for`, `role`, `aria-*`).
 * Children: nodes or strings (as text), null/false skipped, arrays flattened.
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k.includes("-") || k === "for" || k === "role" || k === "title" || k === "placeholder") el.setAttribute(k, v === true ? "" : String(v));
    else el[k] = v;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An error with a Chinese message for people, plus the HTTP status and the server's body. */
export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.code = body?.error?.code || (status ? `http_${status}` : "network");
  }
}

const STATUS_TEXT = {
  400: "请求有误",
  401: "令牌无效或已失效,请重新输入",
  403: "没有权限(需要店主令牌,或令牌属于其他店铺)",
  404: "找不到",
  409: "已被他人修改",
  413: "内容太大",
  422: "内容不合规则",
  429: "请求太频繁,请稍后再试",
  500: "服务器内部错误",
  503: "服务器繁忙,请稍后再试",
};

/**
 * Calls the REST API. Resolves with the parsed JSON (or text for non-JSON answers);
 * rejects with an {@link ApiError} for any non-2xx answer, a network failure or a timeout.
 * @param {string} path
 * @param {{token?: string, method?: string, json?: any, body?: BodyInit, contentType?: string, headers?: object, timeout?: number}} [opts]
 */
export async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.token) headers.Authorization = "Bearer " + opts.token;
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers["Content-Type"] = "application/json";
  } else if (opts.contentType) {
    headers["Content-Type"] = opts.contentType;
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeout ?? 15000);
  let res;
  try {
    res = await fetch(path, { method: opts.method || "GET", headers, body, signal: ctl.signal });
  } catch (e) {
    clearTimeout(timer);
    const msg = e?.name === "AbortError" ? "请求超时,请检查网络或稍后再试" : "无法连接服务器,请检查网络";
    throw new ApiError(msg, 0, null);
  }
  let data = null;
  try {
    const text = await res.text();
    data = text ? (/json/.test(res.headers.get("content-type") || "") ? JSON.parse(text) : text) : null;
  } catch (e) {
    data = null;
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) {
    const base = STATUS_TEXT[res.status] || `服务器返回错误 ${res.status}`;
    const detail = data?.error?.message;
    throw new ApiError(detail ? `${base}:${detail}` : base, res.status, data);
  }
  return data;
}

/** A Chinese message for anything thrown by {@link api} or the client. */
export function errorText(err) {
  if (!err) return "未知错误";
  if (err instanceof ApiError) return err.message;
  const byCode = {
    timeout: "请求超时,请稍后再试",
    queue_full: "尚未连接,待发送的请求太多",
    disconnected: "连接已断开,请稍后再试",
    closed: "连接已关闭",
    unauthorized: "令牌无效或已失效",
    overloaded: "服务器繁忙,请稍后再试",
  };
  if (err.code && byCode[err.code]) return byCode[err.code];
  if (err.code) return `出错了(${err.code}):${err.message}`;
  return String(err.message || err);
}

/** The text as an array of Unicode code points (the unit of the server's `start`/`end`). */
export function codePoints(text) {
  return Array.from(text);
}

/**
 * Splits `text` into runs for display: `[{text, mark}]` where `mark` is the violation
 * covering the run (offsets in code points), or null.
 */
export function spans(text, violations) {
  const cps = codePoints(text);
  const marks = new Array(cps.length).fill(null);
  for (const v of violations || []) {
    for (let i = Math.max(0, v.start); i < Math.min(cps.length, v.end); i++) if (!marks[i]) marks[i] = v;
  }
  const out = [];
  for (let i = 0; i < cps.length; i++) {
    const last = out[out.length - 1];
    if (last && last.mark === marks[i]) last.text += cps[i];
    else out.push({ text: cps[i], mark: marks[i] });
  }
  return out;
}

/** Replaces code points [start, end) of `text` with `replacement`. */
export function replaceSpan(text, start, end, replacement) {
  const cps = codePoints(text);
  return cps.slice(0, start).join("") + replacement + cps.slice(end).join("");
}

/** `{name}` and `{name|fallback}` placeholders of a text, as `[{text, placeholder}]` runs. */
export function placeholderRuns(text) {
  const out = [];
  const re = /\{[a-z_][a-z0-9_]*(?:\|[^{}]*)?\}/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push({ text: text.slice(last, m.index), placeholder: false });
    out.push({ text: m[0], placeholder: true });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), placeholder: false });
  return out;
}

/** Chinese labels of conversation variables, for "请填写…" hints. */
export const VARIABLE_LABELS = {
  buyer: "买家昵称",
  order_id: "订单号",
  tracking_no: "快递单号",
  carrier: "快递公司",
  item: "商品",
  eta: "预计送达",
  amount: "金额",
};

/** Chinese labels of severities and categories of compliance violations. */
export const SEVERITY_LABELS = { block: "禁止", warn: "提醒" };
export const CATEGORY_LABELS = {
  absolute_promise: "绝对化承诺",
  superlative: "极限用语",
  off_platform: "站外引流",
  contact_info: "联系方式/证件号",
  abusive: "辱骂买家",
  blunt_refusal: "生硬拒绝",
};

/** Debounces `fn` by `ms`; the returned function has `.cancel()` and `.flush()`. */
export function debounce(fn, ms) {
  let t = null;
  let args = null;
  const d = (...a) => {
    args = a;
    clearTimeout(t);
    t = setTimeout(() => {
      t = null;
      fn(...args);
    }, ms);
  };
  d.cancel = () => {
    clearTimeout(t);
    t = null;
  };
  d.flush = () => {
    if (t) {
      d.cancel();
      fn(...args);
    }
  };
  return d;
}

/** localStorage that never throws (private mode, storage disabled, sandboxed frames). */
export const store = {
  get(key) {
    try {
      return localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(key, value);
    } catch (e) {
      /* not available */
    }
  },
  remove(key) {
    try {
      localStorage.removeItem(key);
    } catch (e) {
      /* not available */
    }
  },
};

/** "HH:MM" of a Date or ms timestamp. */
export function clock(t) {
  const d = t instanceof Date ? t : new Date(t);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** WebSocket URL of the API on this page's host. */
export function wsUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/v1/ws`;
}

/** Copies text to the clipboard; resolves true on success, false when the browser refused. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (e) {
    /* fall through to the old way */
  }
  try {
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  } catch (e) {
    return false;
  }
}

/**
 * A message shown in `el` for a few seconds (errors stay longer); a new one replaces it.
 * @param {HTMLElement} el
 * @returns {(text: string, kind?: "info" | "ok" | "error") => void}
 */
export function flasher(el) {
  let timer = null;
  return (text, kind = "info") => {
    el.textContent = text;
    el.dataset.kind = kind;
    el.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 8000 : 4000);
  };
}
