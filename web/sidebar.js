// sidebar.js — the agent sidebar at `/` (and `/?embed=1` inside the extension's side panel).
// Shows, per buyer conversation, the buyer's last message, its intents and three reply
// suggestions (keys 1/2/3), and checks the agent's draft for compliance as it is typed.
// Bridge protocol with an embedding page: docs/frontends.md#postmessage-bridge.

import { HuashuClient, STATUS } from "./huashu-client.js";
import {
  flasher,
  h, fill, api, errorText, spans, replaceSpan, placeholderRuns, debounce, store, clock, wsUrl,
  copyText, VARIABLE_LABELS, SEVERITY_LABELS, CATEGORY_LABELS,
} from "./ui.js";

const MAX_CONVERSATIONS = 50;
const MAX_MESSAGES = 20;
const MAX_SEEN_IDS = 2000;
const MAX_TEXT = 2000;
const TOKEN_KEY = "huashu.agentToken";
const CONVS_KEY = "huashu.sidebar.conversations";
const INSERT_TIMEOUT_MS = 5000;

const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);
const embed = params.get("embed") === "1" && window.parent !== window;

/** @type {HuashuClient|null} */
let client = null;
let shop = null;
/** intent id → Chinese label */
let labels = new Map();
/** conversation id → {id, buyer, messages, result, unread, error, draft, manual} */
const convs = new Map();
let currentId = null;
/** message ids already handled (bounded) */
const seen = new Set();
let adapterAttached = false;
let pendingInserts = new Map();
let insertSeq = 1;
let lastCheck = null;
let checkSeq = 0;
let draftPhrase = null; // {phraseId, text} when the draft is an untouched suggestion

// ---------------------------------------------------------------- token & connection

function startClient(token) {
  if (client) client.close();
  client = new HuashuClient({ url: wsUrl(), token });
  client.on("status", onStatus);
  client.on("welcome", onWelcome);
  client.on("suggestions", onSuggestions);
  client.on("phrasebook_updated", (m) => {
    notice(`话术库已更新(版本 ${m.version}),之后的推荐会用新话术`);
    loadLabels();
  });
  client.on("error", (m) => notice(`服务器报错:${m.message || m.code}`, "error"));
}

function onStatus(s) {
  const el = $("status");
  el.dataset.state = s.status === STATUS.CLOSED && s.reason === "unauthorized" ? "auth" : s.status;
  let text;
  if (s.status === STATUS.OPEN) text = "已连接";
  else if (s.status === STATUS.CONNECTING) text = s.attempt ? `重连中(第 ${s.attempt} 次)` : "连接中…";
  else if (s.reason === "unauthorized") text = "令牌无效";
  else if (s.reason === "client") text = "未连接";
  else if (s.retryInMs != null) text = `已断开,${Math.max(1, Math.round(s.retryInMs / 1000))} 秒后重连`;
  else text = "已断开";
  el.textContent = text;
  el.title = s.reason === "too_slow" ? "推送积压被服务器断开,正在重连" : "";
  if (s.reason === "unauthorized") {
    if (embed) {
      notice("令牌无效或已失效:请在扩展设置里更新令牌", "error");
    } else {
      notice("令牌无效或已失效,请重新输入客服令牌", "error");
      showTokenPanel(true);
    }
  }
  bridgePost({ huashu: "status", status: s.status, reason: s.reason || null });
}

function onWelcome(w) {
  shop = w.shop;
  loadLabels();
  // Buyer messages whose suggestions were lost with a dropped connection are asked again.
  for (const c of convs.values()) {
    const last = c.messages[c.messages.length - 1];
    if (last && c.result?.message_id !== last.messageId && c.error) {
      c.error = null;
      requestSuggestions(c);
    }
  }
  api("/v1/shops/" + encodeURIComponent(shop) + "/policy", { token: tokenNow() })
    .then((p) => { $("shop-name").textContent = p?.name || ""; })
    .catch(() => { $("shop-name").textContent = shop; });
}

let currentToken = null;
function tokenNow() {
  return currentToken;
}

function useToken(token, { remember }) {
  currentToken = token;
  if (remember) store.set(TOKEN_KEY, token);
  startClient(token);
  // Subscribe to what we already know (hand-added conversations, adapter conversations).
  for (const c of convs.values()) {
    subscribe(c);
    const last = c.messages[c.messages.length - 1];
    if (last && c.result?.message_id !== last.messageId) requestSuggestions(c);
  }
}

async function loadLabels() {
  if (!shop || !currentToken) return;
  try {
    const d = await api(`/v1/shops/${encodeURIComponent(shop)}/intents`, { token: currentToken });
    labels = new Map((d?.intents || []).map((i) => [i.id, i.label || i.id]));
    renderCurrent();
  } catch (e) {
    notice(`读取意图名称失败:${errorText(e)}`, "error");
  }
}

const intentLabel = (id) => labels.get(id) || (id === "unknown" ? "无法判断" : id);

function showTokenPanel(open) {
  $("token-panel").hidden = !open;
  $("settings-btn").setAttribute("aria-expanded", String(open));
  if (open && !embed) $("token-input").focus();
}

// ---------------------------------------------------------------- notices

let noticeFlash = null;
function notice(text, kind = "info") {
  noticeFlash ??= flasher($("notice"));
  noticeFlash(text, kind);
}

// ---------------------------------------------------------------- conversations

function conversation(id, { buyer, manual } = {}) {
  let c = convs.get(id);
  if (!c) {
    c = { id, buyer: buyer || "", messages: [], result: null, unread: false, error: null, draft: "", manual: !!manual, at: Date.now() };
    convs.set(id, c);
    evictConversations();
    subscribe(c);
    if (manual) saveManual();
  } else {
    if (buyer) c.buyer = buyer;
    if (manual && !c.manual) {
      c.manual = true;
      saveManual();
    }
  }
  if (!currentId) currentId = id;
  return c;
}

function evictConversations() {
  if (convs.size <= MAX_CONVERSATIONS) return;
  const victims = [...convs.values()].filter((c) => c.id !== currentId).sort((a, b) => a.at - b.at);
  while (convs.size > MAX_CONVERSATIONS && victims.length) removeConversation(victims.shift().id);
}

function removeConversation(id) {
  const c = convs.get(id);
  if (!c) return;
  convs.delete(id);
  if (client) client.unsubscribe(id).catch(() => {});
  if (c.manual) saveManual();
  if (currentId === id) currentId = [...convs.keys()][0] || null;
}

function subscribe(c) {
  if (!client) return;
  c.subscribed = false;
  client.subscribe(c.id).then(() => {
    c.subscribed = true;
    renderConvList();
  }, (e) => {
    c.error = `订阅会话失败:${errorText(e)}`;
    renderCurrent();
  });
}

function saveManual() {
  if (embed) return;
  const ids = [...convs.values()].filter((c) => c.manual).map((c) => c.id).slice(-MAX_CONVERSATIONS);
  store.set(CONVS_KEY, JSON.stringify(ids));
}

function loadManual() {
  if (embed) return;
  try {
    const ids = JSON.parse(store.get(CONVS_KEY) || "[]");
    if (Array.isArray(ids)) for (const id of ids.slice(0, MAX_CONVERSATIONS)) if (validConversation(id)) conversation(id, { manual: true });
  } catch (e) {
    store.remove(CONVS_KEY);
  }
}

function validConversation(id) {
  return typeof id === "string" && id.length >= 1 && id.length <= 128 && !/[\u0000-\u001f\u007f]/.test(id);
}

function select(id) {
  if (!convs.has(id)) return;
  saveDraft();
  currentId = id;
  const c = convs.get(id);
  c.unread = false;
  $("draft-input").value = c.draft || "";
  draftPhrase = null;
  renderAll();
  runCheck.cancel();
  lastCheck = null;
  renderCheck();
  if (c.draft) runCheck(c.draft);
}

function saveDraft() {
  const c = convs.get(currentId);
  if (c) c.draft = $("draft-input").value;
}

function remember(id) {
  if (!id) return false;
  if (seen.has(id)) return true;
  seen.add(id);
  if (seen.size > MAX_SEEN_IDS) seen.delete(seen.values().next().value);
  return false;
}

function pushMessage(c, text, messageId) {
  if (c.messages.some((m) => m.messageId === messageId)) return;
  c.messages.push({ text, messageId, at: Date.now() });
  if (c.messages.length > MAX_MESSAGES) c.messages.splice(0, c.messages.length - MAX_MESSAGES);
  c.at = Date.now();
}

/** A buyer message seen by the chat adapter (through the bridge). */
function buyerMessage({ conversation: id, buyer, text, messageId }) {
  const key = `${id}\u0000${messageId}`;
  if (remember(key)) return;
  const c = conversation(id, { buyer });
  pushMessage(c, text, messageId);
  c.error = null;
  if (id !== currentId) c.unread = true;
  renderAll();
  requestSuggestions(c);
}

/** Asks for the suggestions of the conversation's last buyer message (once a client exists). */
function requestSuggestions(c) {
  const last = c.messages[c.messages.length - 1];
  if (!last || !client) return;
  client.sendCustomerMessage(c.id, last.text, { messageId: last.messageId, buyer: c.buyer || undefined }).catch((e) => {
    c.error = `获取推荐失败:${errorText(e)}`;
    renderCurrent();
  });
}

function onSuggestions(m) {
  const c = convs.get(m.conversation);
  if (!c) return;
  if (typeof m.buyer === "string" && m.buyer && m.buyer.length <= 200) c.buyer = m.buyer;
  if (m.text) pushMessage(c, m.text, m.message_id);
  c.result = m;
  c.error = null;
  c.at = Date.now();
  if (m.conversation !== currentId) c.unread = true;
  renderAll();
}

// ---------------------------------------------------------------- rendering

function renderAll() {
  renderConvList();
  renderCurrent();
}

function renderConvList() {
  const list = $("conv-list");
  const items = [...convs.values()].sort((a, b) => b.at - a.at);
  fill(list, items.map((c) => {
    const last = c.messages[c.messages.length - 1];
    return h("li", { class: "conv" + (c.id === currentId ? " current" : "") + (c.unread ? " unread" : ""), dataset: { conversation: c.id, subscribed: String(!!c.subscribed) } },
      h("button", { type: "button", class: "conv-main", "aria-current": c.id === currentId ? "true" : null, on: { click: () => select(c.id) } },
        h("span", { class: "conv-name", text: c.buyer || c.id }),
        c.unread ? h("span", { class: "unread-dot", "aria-label": "未读", title: "有新消息" }) : null,
        h("span", { class: "conv-preview", text: last ? last.text : "(暂无消息)" })),
      c.manual ? h("button", { type: "button", class: "conv-remove icon-btn", title: "移除会话", "aria-label": "移除会话 " + (c.buyer || c.id), on: { click: () => { removeConversation(c.id); renderAll(); } } }, "×") : null);
  }));
  $("conv-empty").hidden = convs.size > 0;
}

function renderCurrent() {
  const c = convs.get(currentId);
  $("current").hidden = !c;
  if (!c) return;
  $("current-title").textContent = c.buyer ? `${c.buyer}(${c.id})` : c.id;
  const last = c.messages[c.messages.length - 1];
  $("buyer-text").textContent = last ? last.text : "还没有买家消息";
  $("buyer-text").classList.toggle("muted", !last);
  $("current-time").textContent = last ? clock(last.at) : "";
  const err = $("current-error");
  err.hidden = !c.error;
  err.textContent = c.error || "";

  const r = c.result;
  fill($("intent-list"), (r?.intents || []).map((i) =>
    h("li", { class: "intent" + (i.intent === "unknown" ? " unknown" : ""), dataset: { intent: i.intent } },
      h("span", { class: "intent-label", text: intentLabel(i.intent) }),
      // How surely the buyer asks it (the figure its replies show); older servers send
      // only the share of the reading.
      h("span", { class: "intent-conf", text: `${Math.round((i.asked ?? i.confidence) * 100)}%` }))));
  if (r?.abstained) $("intent-list").append(h("li", { class: "hint", text: "意图不明确,建议先向买家确认" }));

  const sl = $("suggestion-list");
  const suggestions = r?.suggestions || [];
  fill(sl, suggestions.slice(0, 3).map((s, i) => suggestionItem(s, i + 1)));
  $("suggestion-empty").hidden = suggestions.length > 0;
  $("suggestion-empty").textContent = r ? "没有合适的推荐话术" : "等待买家消息…";
  updateDraftButtons();
}

function suggestionItem(s, n) {
  // The calibrated confidence (0..1) when the server sends one; older servers only rank.
  const conf = typeof s.confidence === "number" ? s.confidence : Math.min(1, s.score / 1.5);
  const pct = Math.max(4, Math.min(100, Math.round(conf * 100)));
  const label = `把握 ${Math.round(conf * 100)}%`;
  const missing = s.missing || [];
  return h("li", { class: "suggestion" + (missing.length ? " incomplete" : ""), dataset: { index: String(n), phraseId: s.phrase_id } },
    h("button", { type: "button", class: "sugg-main", title: "放入草稿(可修改后再发)", on: { click: () => toDraft(s) } },
      h("span", { class: "sugg-head" },
        h("kbd", { class: "num", text: String(n) }),
        h("span", { class: "intent-tag", text: intentLabel(s.intent) }),
        s.code ? h("span", { class: "code", text: "/" + s.code }) : null,
        h("span", { class: "score", title: label, "aria-label": label },
          h("span", { class: "score-bar", style: `width:${pct}%` }))),
      h("span", { class: "sugg-text" }, placeholderRuns(s.text).map((run) =>
        run.placeholder ? h("mark", { class: "placeholder", text: run.text }) : run.text)),
      missing.length ? h("span", { class: "missing", text: "待填写:" + missing.map((v) => VARIABLE_LABELS[v] || v).join("、") }) : null),
    h("span", { class: "sugg-actions" },
      h("button", { type: "button", class: "small", on: { click: () => useSuggestion(n) } }, adapterAttached ? "填入聊天" : "复制")));
}

// ---------------------------------------------------------------- using suggestions

function currentSuggestion(n) {
  const c = convs.get(currentId);
  return c?.result?.suggestions?.[n - 1] || null;
}

async function useSuggestion(n) {
  const s = currentSuggestion(n);
  if (!s) {
    notice(`没有第 ${n} 条推荐`);
    return;
  }
  if (s.missing?.length) {
    toDraft(s);
    notice("这条话术有待填写的内容,请在草稿里补全后再发送");
    return;
  }
  const copied = await copyText(s.text);
  if (adapterAttached) {
    await insertIntoChat(currentId, s.text, s.phrase_id, n);
  } else {
    notice(copied ? `已复制第 ${n} 条推荐` : "浏览器不允许复制,请点击推荐放入草稿后手动复制", copied ? "info" : "error");
  }
}

function toDraft(s) {
  const ta = $("draft-input");
  ta.value = s.text;
  draftPhrase = { phraseId: s.phrase_id, text: s.text };
  saveDraft();
  ta.focus();
  if (!selectNextPlaceholder(ta, 0)) ta.setSelectionRange(ta.value.length, ta.value.length);
  runCheck(ta.value);
}

/** Selects the first `{name}` at or after `from` (UTF-16 index); true if there was one. */
function selectNextPlaceholder(ta, from) {
  const re = /\{[a-z_][a-z0-9_]*\}/g;
  re.lastIndex = from;
  const m = re.exec(ta.value) || (from > 0 ? /\{[a-z_][a-z0-9_]*\}/.exec(ta.value) : null);
  if (!m) return false;
  ta.setSelectionRange(m.index, m.index + m[0].length);
  return true;
}

/** Asks the embedding page to put `text` into the chat input; then records it as sent. */
async function insertIntoChat(convId, text, phraseId, n) {
  const requestId = `ins-${insertSeq++}`;
  const answer = await new Promise((resolve) => {
    const timer = setTimeout(() => {
      pendingInserts.delete(requestId);
      resolve({ ok: false, error: "聊天页面没有响应" });
    }, INSERT_TIMEOUT_MS);
    pendingInserts.set(requestId, (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    bridgePost({ huashu: "insert", requestId, conversation: convId, text, phraseId: phraseId || null });
  });
  if (!answer.ok) {
    notice(`填入聊天失败:${answer.error || "未知原因"}` + "(已复制到剪贴板时可手动粘贴)", "error");
    return false;
  }
  notice(n ? `已把第 ${n} 条填入聊天输入框` : "已填入聊天输入框");
  if (client) {
    client.sendAgentMessage(convId, text, { phraseId: phraseId || undefined }).then((ack) => {
      const v = ack?.check?.violations || [];
      if (v.length) notice(`发送内容有${ack.check.blocked ? "禁止" : "提醒"}项:${v[0].message}`, ack.check.blocked ? "error" : "info");
    }).catch((e) => notice(`记录已发送话术失败:${errorText(e)}`, "error"));
  }
  return true;
}

// ---------------------------------------------------------------- draft check

const runCheck = debounce(async (text) => {
  const seq = ++checkSeq;
  if (!text.trim()) {
    lastCheck = null;
    renderCheck();
    return;
  }
  try {
    let r;
    if (client && client.status === STATUS.OPEN) r = await client.check(text);
    else if (currentToken) r = await api("/v1/check", { token: currentToken, method: "POST", json: { text }, timeout: 8000 });
    else throw new Error("尚未设置令牌");
    if (seq !== checkSeq || $("draft-input").value !== text) return;
    lastCheck = r;
    renderCheck();
  } catch (e) {
    if (seq !== checkSeq) return;
    lastCheck = { error: errorText(e), text };
    renderCheck();
  }
}, 250);

function renderCheck() {
  const text = $("draft-input").value;
  const r = lastCheck && lastCheck.text === text ? lastCheck : null;
  const violations = r?.violations || [];
  const blocked = !!r?.blocked;
  const ta = $("draft-input");
  ta.classList.toggle("blocked", blocked);
  ta.classList.toggle("warned", !blocked && violations.length > 0);
  const state = $("draft-state");
  if (r?.error) {
    state.textContent = `检查失败:${r.error}`;
    state.dataset.kind = "error";
  } else if (blocked) {
    state.textContent = "含禁止用语,不能发送";
    state.dataset.kind = "blocked";
  } else if (violations.length) {
    state.textContent = "有提醒项,请留意";
    state.dataset.kind = "warn";
  } else if (r) {
    state.textContent = "未发现违规用语";
    state.dataset.kind = "ok";
  } else {
    state.textContent = "";
    state.dataset.kind = "";
  }
  const preview = $("draft-preview");
  preview.hidden = violations.length === 0;
  fill(preview, violations.length ? spans(text, violations).map((run) =>
    run.mark ? h("mark", { class: "violation " + run.mark.severity, title: run.mark.message, text: run.text }) : run.text) : []);
  fill($("violation-list"), violations.map((v) =>
    h("li", { class: "violation-item " + v.severity, dataset: { rule: v.rule, start: String(v.start), end: String(v.end) } },
      h("span", { class: "sev", text: SEVERITY_LABELS[v.severity] || v.severity }),
      h("span", { class: "cat", text: CATEGORY_LABELS[v.category] || v.category }),
      h("q", { class: "matched", text: v.matched }),
      h("span", { class: "msg", text: v.message }),
      v.rewrite != null
        ? h("span", { class: "rewrite" }, "改写为:", h("q", { text: v.rewrite === "" ? "(删除)" : v.rewrite }),
          h("button", { type: "button", class: "small apply-rewrite", on: { click: () => applyRewrite(v) } }, "采用改写"))
        : h("span", { class: "rewrite none", text: "没有安全的自动改写,请删掉或换个说法" }))));
  $("draft-rewrite-all").hidden = !(r && r.rewritten && r.rewritten !== r.text && violations.filter((v) => v.rewrite != null).length > 1);
  updateDraftButtons();
}

function applyRewrite(v) {
  const ta = $("draft-input");
  if (!lastCheck || lastCheck.text !== ta.value) return;
  ta.value = replaceSpan(ta.value, v.start, v.end, v.rewrite);
  afterDraftEdit();
  runCheck.flush();
}

function afterDraftEdit() {
  const ta = $("draft-input");
  if (draftPhrase && draftPhrase.text !== ta.value) draftPhrase = null;
  saveDraft();
  renderCheck();
  runCheck(ta.value);
}

function updateDraftButtons() {
  const text = $("draft-input").value;
  const checked = lastCheck && lastCheck.text === text && !lastCheck.error ? lastCheck : null;
  const hasPlaceholder = /\{[a-z_][a-z0-9_]*\}/.test(text);
  const blocked = !!checked?.blocked;
  const empty = !text.trim();
  $("draft-copy").disabled = empty || blocked;
  $("draft-insert").disabled = empty || blocked || hasPlaceholder || !adapterAttached || !currentId;
  $("draft-insert").hidden = !adapterAttached;
  $("draft-insert").title = !adapterAttached ? "需要浏览器扩展连接聊天页面" : hasPlaceholder ? "还有待填写的 {占位符}" : blocked ? "含禁止用语" : "";
}

// ---------------------------------------------------------------- bridge (embed)

let parentOrigin = null;
if (embed) {
  parentOrigin = params.get("parent") || location.ancestorOrigins?.[0] || null;
  if (!parentOrigin && document.referrer) {
    try { parentOrigin = new URL(document.referrer).origin; } catch (e) { parentOrigin = null; }
  }
}

function bridgePost(msg) {
  if (!embed || !parentOrigin) return;
  window.parent.postMessage(msg, parentOrigin);
}

const str = (v, max) => typeof v === "string" && v.length <= max;

let rejectedBridgeMessages = 0;
function onBridgeMessage(e) {
  if (!embed) return;
  if (e.source !== window.parent || e.origin !== parentOrigin) {
    // Counted where tests (and curious people) can see it; the message itself is dropped.
    document.body.dataset.bridgeRejected = String(++rejectedBridgeMessages);
    return;
  }
  const m = e.data;
  if (!m || typeof m !== "object" || typeof m.huashu !== "string") return;
  switch (m.huashu) {
    case "config":
      if (str(m.token, 512) && m.token && m.token !== currentToken) useToken(m.token, { remember: false });
      if (!m.token) {
        notice("扩展尚未设置令牌,请打开扩展设置", "error");
      }
      break;
    case "buyer_message":
      if (validConversation(m.conversation) && str(m.text, 20000) && m.text.trim() && str(m.messageId, 128) && m.messageId && (m.buyer == null || str(m.buyer, 200))) {
        buyerMessage({ conversation: m.conversation, buyer: m.buyer || "", text: m.text.slice(0, MAX_TEXT), messageId: m.messageId });
      }
      break;
    case "focus":
      if (validConversation(m.conversation)) {
        conversation(m.conversation, { buyer: str(m.buyer, 200) ? m.buyer : "" });
        select(m.conversation);
      }
      break;
    case "inserted": {
      const done = pendingInserts.get(m.requestId);
      if (done) {
        pendingInserts.delete(m.requestId);
        done({ ok: m.ok === true, error: str(m.error, 500) ? m.error : null });
      }
      break;
    }
    case "adapter":
      setAdapter(m.attached === true, str(m.page, 200) ? m.page : "");
      break;
    default:
      break;
  }
}

function setAdapter(attached, page) {
  adapterAttached = attached;
  const el = $("adapter-state");
  el.hidden = !embed;
  el.dataset.attached = String(attached);
  el.textContent = attached ? `已连接聊天页面${page ? ":" + page : ""}` : "未检测到聊天页面:请打开并刷新聊天工作台";
  renderAll();
}

// ---------------------------------------------------------------- keys & wiring

function isTyping(el) {
  return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || isTyping(document.activeElement)) return;
  if (e.key === "1" || e.key === "2" || e.key === "3") {
    e.preventDefault();
    useSuggestion(Number(e.key));
  } else if (e.key === "/") {
    e.preventDefault();
    $("draft-input").focus();
  }
});

function wire() {
  $("settings-btn").addEventListener("click", () => showTokenPanel($("token-panel").hidden));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("token-input").value.trim();
    if (!t) return;
    $("token-input").value = "";
    showTokenPanel(false);
    useToken(t, { remember: true });
  });
  $("token-clear").addEventListener("click", () => {
    store.remove(TOKEN_KEY);
    currentToken = null;
    if (client) client.close();
    client = null;
    $("status").textContent = "未连接";
    $("status").dataset.state = "closed";
    notice("令牌已清除");
    showTokenPanel(true);
  });
  $("add-conv-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("add-conv-input").value.trim();
    if (!validConversation(id)) {
      notice("会话ID需为 1–128 个字符,不含控制字符", "error");
      return;
    }
    $("add-conv-input").value = "";
    conversation(id, { manual: true });
    select(id);
  });
  const ta = $("draft-input");
  ta.addEventListener("input", afterDraftEdit);
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !e.shiftKey && /\{[a-z_][a-z0-9_]*\}/.test(ta.value)) {
      e.preventDefault();
      selectNextPlaceholder(ta, ta.selectionEnd);
    } else if (e.key === "Escape") {
      ta.blur();
    }
  });
  $("draft-clear").addEventListener("click", () => {
    ta.value = "";
    afterDraftEdit();
  });
  $("draft-copy").addEventListener("click", async () => {
    notice((await copyText(ta.value)) ? "草稿已复制" : "浏览器不允许复制,请手动选中复制", "info");
  });
  $("draft-insert").addEventListener("click", () => {
    if (!currentId) return;
    insertIntoChat(currentId, ta.value, draftPhrase?.phraseId || null, 0).then((ok) => {
      if (ok) {
        ta.value = "";
        afterDraftEdit();
      }
    });
  });
  $("draft-rewrite-all").addEventListener("click", () => {
    if (lastCheck && lastCheck.text === ta.value && lastCheck.rewritten) {
      ta.value = lastCheck.rewritten;
      afterDraftEdit();
      runCheck.flush();
    }
  });
}

function init() {
  wire();
  if (embed) {
    document.body.classList.add("embed");
    $("settings-btn").hidden = true;
    $("token-form").hidden = true;
    $("embed-config-hint").hidden = false;
    window.addEventListener("message", onBridgeMessage);
    setAdapter(false, "");
    if (!parentOrigin) notice("无法确认嵌入页面的来源,桥接已停用", "error");
    bridgePost({ huashu: "ready", protocol: 1 });
  } else {
    loadManual();
    const t = store.get(TOKEN_KEY);
    if (t) useToken(t, { remember: false });
    else showTokenPanel(true);
  }
  renderAll();
  renderCheck();
}

init();
