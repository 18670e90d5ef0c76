// admin.js — the owner's phrasebook admin at /admin: phrases by intent, search, create /
// edit / delete with validation before saving (`?dry_run=true` against the whole shop, and
// live compliance spans from /v1/check), intent examples, a try-it box, 千牛 sheet import
// with a dry run first, and history with revert. REST paths: docs/protocol.md#curation-api.

import { HuashuClient, STATUS } from "./huashu-client.js";
import {
  flasher,
  h, fill, api, ApiError, errorText, spans, placeholderRuns, debounce, store, wsUrl,
  SEVERITY_LABELS, CATEGORY_LABELS, VARIABLE_LABELS,
} from "./ui.js";

const TOKEN_KEY = "huashu.ownerToken";
const ORDER_STATES = [
  ["none", "无订单"], ["unpaid", "待付款"], ["paid", "已付款"], ["shipped", "已发货"],
  ["delivered", "已签收"], ["refunding", "退款中"], ["closed", "已关闭"],
];
const STAGES = ["售前", "售中", "售后"];
const ID_RE = /^[a-z0-9_-]{1,64}$/;

const $ = (id) => document.getElementById(id);

let token = null;
/** @type {HuashuClient|null} */
let client = null;
let shop = null;
let role = null;
let version = null;
let intents = []; // from GET intents
let phrases = []; // current listing
let filterIntent = ""; // "" = all
let query = "";
let dryRunWorks = true; // false once a server turned out to ignore ?dry_run

// ---------------------------------------------------------------- basics

let toastFlash = null;
function toast(text, kind = "info") {
  toastFlash ??= flasher($("toast"));
  toastFlash(text, kind);
}

function banner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
}

const shopPath = (p = "") => `/v1/shops/${encodeURIComponent(shop)}${p}`;
const call = (p, opts = {}) => api(shopPath(p), { token, ...opts });
const label = (id) => intents.find((i) => i.id === id)?.label || id;
const canWrite = () => role === "owner";

function newKey() {
  return globalThis.crypto?.randomUUID ? crypto.randomUUID() : `k-${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

function setVersion(v) {
  if (v == null) return;
  version = v;
  $("version").textContent = `版本 ${v}`;
}

function confirmBox(text, okText = "确定") {
  const d = $("confirm-dialog");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okText;
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
  });
}

// ---------------------------------------------------------------- token & connection

function connect(t) {
  token = t;
  if (client) client.close();
  client = new HuashuClient({ url: wsUrl(), token: t });
  client.on("status", (s) => {
    const el = $("status");
    el.dataset.state = s.reason === "unauthorized" ? "auth" : s.status;
    el.textContent = s.status === STATUS.OPEN ? "已连接" : s.status === STATUS.CONNECTING ? "连接中…"
      : s.reason === "unauthorized" ? "令牌无效" : s.reason === "client" ? "未连接" : "已断开,正在重连";
    if (s.reason === "unauthorized") {
      banner("令牌无效或已失效,请重新输入店主令牌");
      showToken(true);
    }
  });
  client.on("welcome", (w) => {
    const first = shop !== w.shop;
    shop = w.shop;
    role = w.role;
    document.body.classList.toggle("read-only", !canWrite());
    banner(canWrite() ? "" : "当前是客服令牌:只能查看,不能修改。要编辑请使用店主令牌。");
    if (first) loadAll();
  });
  client.on("phrasebook_updated", (m) => {
    if (m.version === version) return;
    setVersion(m.version);
    if ($("phrase-dialog").open || $("intent-dialog").open) {
      toast(`话术库已被更新到版本 ${m.version};保存时若有冲突会提示`);
    }
    reloadSoon();
  });
  client.on("error", (m) => toast(`服务器报错:${m.message || m.code}`, "error"));
}

function showToken(open) {
  $("token-panel").hidden = !open;
  $("token-btn").setAttribute("aria-expanded", String(open));
  if (open) $("token-input").focus();
}

// ---------------------------------------------------------------- loading

const reloadSoon = debounce(() => loadAll(), 300);

async function loadAll() {
  if (!shop) return;
  try {
    const [pol, ints] = await Promise.all([call("/policy"), call("/intents")]);
    $("shop-name").textContent = pol?.name || shop;
    intents = ints?.intents || [];
    setVersion(ints?.version);
    renderIntentNav();
    fillIntentSelect();
    await loadPhrases();
    if (!$("tab-history").hidden) loadHistory();
  } catch (e) {
    toast(`读取话术库失败:${errorText(e)}`, "error");
  }
}

let phraseSeq = 0;
async function loadPhrases() {
  const seq = ++phraseSeq;
  const qs = new URLSearchParams();
  if (query) qs.set("q", query);
  if (filterIntent) qs.set("intent", filterIntent);
  try {
    const d = await call("/phrases" + (qs.toString() ? "?" + qs : ""));
    if (seq !== phraseSeq) return;
    phrases = d?.phrases || [];
    setVersion(d?.version);
    renderPhrases();
  } catch (e) {
    if (seq === phraseSeq) toast(`读取话术失败:${errorText(e)}`, "error");
  }
}

// ---------------------------------------------------------------- phrases view

function renderIntentNav() {
  const total = intents.reduce((n, i) => n + (i.phrases || 0), 0);
  const item = (id, text, count) =>
    h("li", {},
      h("button", { type: "button", class: "intent-link" + (filterIntent === id ? " active" : ""), dataset: { intent: id }, on: { click: () => { filterIntent = id; renderIntentNav(); loadPhrases(); } } },
        h("span", { class: "name", text }), h("span", { class: "count", text: String(count) })));
  fill($("intent-nav"), item("", "全部意图", total), intents.map((i) => item(i.id, i.label || i.id, i.phrases || 0)));
}

function renderPhrases() {
  const groups = new Map();
  for (const p of phrases) {
    if (!groups.has(p.intent)) groups.set(p.intent, []);
    groups.get(p.intent).push(p);
  }
  const order = intents.map((i) => i.id).filter((id) => groups.has(id));
  for (const id of groups.keys()) if (!order.includes(id)) order.push(id);
  // An intent chosen in the list shows even when it has no phrases yet.
  if (filterIntent && !groups.has(filterIntent) && !query) {
    order.push(filterIntent);
    groups.set(filterIntent, []);
  }
  $("phrase-summary").textContent = query ? `搜索“${query}”:${phrases.length} 条` : `共 ${phrases.length} 条话术`;
  fill($("phrase-groups"), order.length ? order.map((id) => groupSection(id, groups.get(id))) : h("p", { class: "empty", text: query ? "没有找到匹配的话术" : "还没有话术" }));
}

function groupSection(id, list) {
  const intent = intents.find((i) => i.id === id);
  return h("section", { class: "group", dataset: { intent: id } },
    h("header", { class: "group-head" },
      h("h3", {}, h("span", { text: intent?.label || id }), h("code", { class: "intent-id", text: id })),
      h("span", { class: "count", text: `${intent?.phrases ?? list.length} 条话术 · ${intent?.examples?.length ?? 0} 句例句` }),
      h("span", { class: "spacer" }),
      intent ? h("button", { type: "button", class: "small writes", on: { click: () => openIntent(intent) } }, "编辑意图与例句") : null,
      h("button", { type: "button", class: "small writes", on: { click: () => openPhrase(null, id) } }, "+ 话术")),
    intent?.description ? h("p", { class: "group-desc", text: intent.description }) : null,
    h("ul", { class: "phrase-list" }, list.map(phraseCard)));
}

function phraseCard(p) {
  const meta = [];
  if (p.code) meta.push(h("span", { class: "tag code", text: "/" + p.code }));
  if (p.stage) meta.push(h("span", { class: "tag", text: p.stage }));
  for (const s of p.order_state || []) meta.push(h("span", { class: "tag state", text: ORDER_STATES.find((o) => o[0] === s)?.[1] || s }));
  meta.push(h("span", { class: "tag", text: `优先级 ${p.priority ?? 5}` }));
  if (p.valid_from || p.valid_until) meta.push(h("span", { class: "tag", text: `${p.valid_from || "…"} 至 ${p.valid_until || "…"}` }));
  for (const t of p.tags || []) meta.push(h("span", { class: "tag user", text: "#" + t }));
  return h("li", { class: "phrase" + (p.enabled === false ? " disabled" : ""), dataset: { phraseId: p.id } },
    h("div", { class: "phrase-text" }, placeholderRuns(p.text).map((r) => r.placeholder ? h("mark", { class: "placeholder", text: r.text }) : r.text)),
    p.keywords?.length ? h("div", { class: "keywords" }, "关键词:", p.keywords.join("、")) : null,
    h("div", { class: "phrase-meta" }, h("code", { class: "pid", text: p.id }), meta, p.enabled === false ? h("span", { class: "tag off", text: "已停用" }) : null),
    h("div", { class: "phrase-actions" },
      h("button", { type: "button", class: "small writes", on: { click: () => openPhrase(p) } }, "编辑"),
      h("button", { type: "button", class: "small danger writes", on: { click: () => deletePhrase(p) } }, "删除")));
}

async function deletePhrase(p) {
  const ok = await confirmBox(`删除话术 ${p.id}?\n“${p.text.slice(0, 60)}”\n删除后可在“历史”里恢复。`, "删除");
  if (!ok) return;
  try {
    const r = await call(`/phrases/${encodeURIComponent(p.id)}?revision=${p.revision}`, { method: "DELETE", headers: { "Idempotency-Key": newKey() } });
    setVersion(r?.version);
    toast(`已删除 ${p.id}`);
    loadAll();
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) {
      toast(`这条话术已被他人修改(当前修订 ${e.body?.error?.current_revision ?? "?"}),已重新加载;请确认后再删除`, "error");
      loadAll();
    } else toast(`删除失败:${errorText(e)}`, "error");
  }
}

// ---------------------------------------------------------------- phrase editor

let editing = null; // {phrase|null, baseRevision, key}

function fillIntentSelect() {
  const sel = $("f-intent");
  const cur = sel.value;
  fill(sel, intents.map((i) => h("option", { value: i.id, text: `${i.label || i.id}(${i.id})` })));
  if (cur) sel.value = cur;
}

function splitList(s) {
  return s.split(/[,，、;；\s]+/).map((x) => x.trim()).filter(Boolean);
}

function openPhrase(p, intentId) {
  if (!canWrite()) return;
  editing = { phrase: p, baseRevision: p?.revision ?? null, key: newKey() };
  $("phrase-title").textContent = p ? `编辑话术 ${p.id}` : "新建话术";
  fillIntentSelect();
  $("f-intent").value = p?.intent || intentId || filterIntent || intents[0]?.id || "";
  $("f-id").value = p?.id || "";
  $("f-id").disabled = !!p;
  $("f-text").value = p?.text || "";
  $("f-keywords").value = (p?.keywords || []).join(", ");
  $("f-code").value = p?.code || "";
  $("f-stage").value = p?.stage || "";
  for (const cb of $("f-order-state").querySelectorAll("input")) cb.checked = (p?.order_state || []).includes(cb.value);
  $("f-priority").value = p?.priority ?? 5;
  $("f-tags").value = (p?.tags || []).join(", ");
  $("f-valid-from").value = dateOnly(p?.valid_from);
  $("f-valid-until").value = dateOnly(p?.valid_until);
  $("f-enabled").checked = p ? p.enabled !== false : true;
  $("phrase-conflict").hidden = true;
  clearFieldMessages("phrase-form");
  setValidation("phrase-validation", "", "");
  renderCompliance(null);
  if (!$("phrase-dialog").open) $("phrase-dialog").showModal();
  $("f-text").focus();
  if (p) liveCheck($("f-text").value);
}

function dateOnly(v) {
  const m = /^(\d{4}-\d{2}-\d{2})/.exec(v || "");
  return m ? m[1] : "";
}

function phraseBody() {
  const body = {
    intent: $("f-intent").value,
    text: $("f-text").value.trim(),
    keywords: splitList($("f-keywords").value),
    order_state: [...$("f-order-state").querySelectorAll("input:checked")].map((c) => c.value),
    tags: splitList($("f-tags").value),
    enabled: $("f-enabled").checked,
  };
  const code = $("f-code").value.trim();
  if (code) body.code = code;
  const stage = $("f-stage").value;
  if (stage) body.stage = stage;
  const pr = $("f-priority").value.trim();
  if (pr) body.priority = Number(pr);
  if ($("f-valid-from").value) body.valid_from = $("f-valid-from").value;
  if ($("f-valid-until").value) body.valid_until = $("f-valid-until").value;
  if (!editing.phrase) {
    const id = $("f-id").value.trim();
    if (id) body.id = id;
  } else {
    body.base_revision = editing.baseRevision;
  }
  return body;
}

function clearFieldMessages(formId) {
  for (const el of $(formId).querySelectorAll(".field-msg")) el.textContent = "";
  for (const el of $(formId).querySelectorAll(".invalid")) el.classList.remove("invalid");
}

function fieldMessage(formId, field, text) {
  const el = $(formId).querySelector(`.field-msg[data-for="${field}"]`);
  if (el) el.textContent = text;
  const input = { intent: "f-intent", id: "f-id", text: "f-text", keywords: "f-keywords", code: "f-code", priority: "f-priority", valid: "f-valid-from", "i-id": "i-id" }[field];
  if (input) $(input).classList.toggle("invalid", !!text);
}

function setValidation(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.dataset.kind = kind;
}

/** Checks the browser can do alone; returns true when the form may go to the server. */
function localChecks(body) {
  clearFieldMessages("phrase-form");
  let ok = true;
  const bad = (field, text) => { fieldMessage("phrase-form", field, text); ok = false; };
  if (!body.intent) bad("intent", "请选择意图");
  if (!body.text) bad("text", "话术不能为空");
  if (body.id && !ID_RE.test(body.id)) bad("id", "编号只能用小写字母、数字、- 和 _(最多 64 个)");
  if (body.code && !/^[A-Za-z0-9]{1,16}$/.test(body.code)) bad("code", "快捷编码只能是 1–16 个字母或数字");
  if (body.priority != null && !(Number.isInteger(body.priority) && body.priority >= 1 && body.priority <= 9)) bad("priority", "优先级是 1 到 9 的整数");
  if (body.valid_from && body.valid_until && body.valid_from > body.valid_until) bad("valid", "结束日期早于开始日期");
  return ok;
}

/** Puts a server validation error next to the field it is about. */
function showServerError(err) {
  const msg = err?.body?.error?.message || errorText(err);
  let field = "text";
  if (/code|快捷编码/i.test(msg)) field = "code";
  else if (/priority/i.test(msg)) field = "priority";
  else if (/stage|order_state|valid_/i.test(msg)) field = "valid";
  else if (/unknown intent|intent `/i.test(msg) && !/phrase `/.test(msg)) field = "intent";
  else if (/\bid\b/i.test(msg) && /already|duplicate/i.test(msg)) field = "id";
  const zh = explain(msg, false);
  fieldMessage("phrase-form", field, zh);
  setValidation("phrase-validation", "不能保存:" + zh, "error");
  $("phrase-validation").title = msg;
}

/**
 * The server's message in Chinese for the common cases; the original follows in
 * parentheses when `withOriginal` (and is the whole answer when no case matches).
 */
function explain(msg, withOriginal = true) {
  const rules = [
    [/unknown variable `\{([^}]+)\}`/, (m) => `未知变量 {${m[1]}}:只能用对话变量(${Object.keys(VARIABLE_LABELS).join("、")})或店铺政策变量`],
    [/code `([^`]+)` is already used by (?:phrase )?`([^`]+)`/, (m) => `快捷编码 ${m[1]} 已被话术 ${m[2]} 使用`],
    [/code `([^`]+)` must be/, (m) => `快捷编码 ${m[1]} 只能是 1–16 个字母或数字`],
    [/block (\w+) `([^`]+)`.*?(?:rewrite: (.*))?$/, (m) => `含禁止用语「${m[2]}」(${CATEGORY_LABELS[m[1]] || m[1]})${m[3] && m[3] !== "reword without it" ? ",可改为:" + m[3] : ",请删除或换个说法"}`],
    [/stale revision/, () => "已被他人修改"],
    [/empty/, () => "话术不能为空"],
  ];
  for (const [re, f] of rules) {
    const m = re.exec(msg);
    if (m) return withOriginal ? `${f(m)}(${msg})` : f(m);
  }
  return msg;
}

let validateSeq = 0;
const validateSoon = debounce(() => validatePhrase(), 700);

async function validatePhrase() {
  if (!editing || !$("phrase-dialog").open) return null;
  const body = phraseBody();
  if (!localChecks(body)) {
    setValidation("phrase-validation", "请先改正标红的项", "error");
    return false;
  }
  if (!dryRunWorks) {
    setValidation("phrase-validation", "服务器不支持预检:保存时再校验", "");
    return null;
  }
  const seq = ++validateSeq;
  setValidation("phrase-validation", "正在按整店规则校验…", "pending");
  const p = editing.phrase;
  try {
    const r = await call(p ? `/phrases/${encodeURIComponent(p.id)}?dry_run=true` : "/phrases?dry_run=true", { method: p ? "PUT" : "POST", json: body });
    if (r?.valid !== true) {
      await dryRunIgnored(r);
      return null;
    }
    if (seq !== validateSeq) return null;
    setValidation("phrase-validation", "校验通过,可以保存", "ok");
    return true;
  } catch (e) {
    if (seq !== validateSeq) return null;
    if (e instanceof ApiError && e.status === 409) showConflict("phrase", e);
    else if (e instanceof ApiError && e.status === 422) showServerError(e);
    else setValidation("phrase-validation", `校验失败:${errorText(e)}`, "error");
    return false;
  }
}

/**
 * A server without `?dry_run` support applied the "validation" as a real write: undo it at
 * once with a revert to the version before, and validate only on save from now on.
 */
async function dryRunIgnored(answer) {
  dryRunWorks = false;
  const v = answer?.version;
  let undone = false;
  if (typeof v === "number" && v > 0) {
    try {
      await call("/revert", { method: "POST", json: { version: v - 1 }, headers: { "Idempotency-Key": newKey() } });
      undone = true;
    } catch (e) {
      undone = false;
    }
  }
  banner(undone
    ? "这台服务器不支持预检(dry_run):一次预检被当成了保存,已自动撤销。之后只在保存时校验。"
    : `这台服务器不支持预检(dry_run):一次预检被当成了保存(版本 ${v}),请在“历史”里撤销。`);
  setValidation("phrase-validation", "服务器不支持预检:保存时再校验", "");
  reloadSoon();
}

function showConflict(kind, err) {
  const cur = err.body?.error?.current_revision;
  $(`${kind}-conflict`).hidden = false;
  $(`${kind}-conflict-text`).textContent = `已被他人修改(现在是修订 ${cur ?? "?"},您基于的是 ${kind === "phrase" ? editing?.baseRevision : intentEditing?.baseRevision})。请重新加载最新内容后再改;您未保存的修改会被替换。`;
  setValidation(`${kind}-validation`, "冲突:已被他人修改", "error");
}

async function savePhrase() {
  validateSoon.cancel();
  const body = phraseBody();
  if (!localChecks(body)) {
    setValidation("phrase-validation", "请先改正标红的项", "error");
    return;
  }
  const p = editing.phrase;
  $("phrase-save").disabled = true;
  setValidation("phrase-validation", "正在保存…", "pending");
  try {
    const r = await call(p ? `/phrases/${encodeURIComponent(p.id)}` : "/phrases", { method: p ? "PUT" : "POST", json: body, headers: { "Idempotency-Key": editing.key } });
    setVersion(r?.version);
    $("phrase-dialog").close();
    toast(`已保存 ${r?.id || ""}(版本 ${r?.version})`);
    editing = null;
    loadAll();
  } catch (e) {
    editing.key = newKey();
    if (e instanceof ApiError && e.status === 409) showConflict("phrase", e);
    else if (e instanceof ApiError && e.status === 422) showServerError(e);
    else setValidation("phrase-validation", `保存失败:${errorText(e)}`, "error");
  } finally {
    $("phrase-save").disabled = false;
  }
}

async function reloadPhrase() {
  const p = editing?.phrase;
  if (!p) return;
  try {
    const fresh = await call(`/phrases/${encodeURIComponent(p.id)}`);
    openPhrase(fresh); // refills the open editor
    toast("已加载最新内容");
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      $("phrase-dialog").close();
      toast("这条话术已被他人删除", "error");
      loadAll();
    } else toast(`重新加载失败:${errorText(e)}`, "error");
  }
}

// live compliance while typing the phrase text
let checkSeq = 0;
const liveCheck = debounce(async (text) => {
  const seq = ++checkSeq;
  if (!text.trim()) {
    renderCompliance(null);
    return;
  }
  try {
    const r = await api("/v1/check", { token, method: "POST", json: { text }, timeout: 8000 });
    if (seq === checkSeq && $("f-text").value === text) renderCompliance(r);
  } catch (e) {
    if (seq === checkSeq) renderCompliance({ error: errorText(e) });
  }
}, 300);

function renderCompliance(r) {
  const preview = $("f-text-preview");
  const list = $("f-text-violations");
  const violations = r?.violations || [];
  preview.hidden = !violations.length;
  fill(preview, violations.length ? spans(r.text, violations).map((run) =>
    run.mark ? h("mark", { class: "violation " + run.mark.severity, title: run.mark.message, text: run.text }) : run.text) : []);
  fill(list, r?.error ? h("li", { class: "violation-item warn", text: `合规检查失败:${r.error}` }) : violations.map((v) =>
    h("li", { class: "violation-item " + v.severity },
      h("b", { text: `${SEVERITY_LABELS[v.severity] || v.severity}·${CATEGORY_LABELS[v.category] || v.category}` }), " ",
      h("q", { text: v.matched }), " ", v.message,
      v.rewrite != null ? [" 建议改为:", h("q", { text: v.rewrite === "" ? "(删除)" : v.rewrite })] : null)));
  $("f-text").classList.toggle("blocked", !!r?.blocked);
}

// ---------------------------------------------------------------- intent editor

let intentEditing = null;

function openIntent(intent) {
  if (!canWrite()) return;
  intentEditing = { intent, baseRevision: intent?.revision ?? null, key: newKey() };
  $("intent-title").textContent = intent ? `编辑意图:${intent.label}` : "新建意图";
  $("i-id").value = intent?.id || "";
  $("i-id").disabled = !!intent;
  $("i-label").value = intent?.label || "";
  $("i-description").value = intent?.description || "";
  for (const cb of $("i-stages").querySelectorAll("input")) cb.checked = (intent?.stages || []).includes(cb.value);
  $("i-examples").value = (intent?.examples || []).join("\n");
  countExamples();
  $("intent-conflict").hidden = true;
  clearFieldMessages("intent-form");
  setValidation("intent-validation", "", "");
  if (!$("intent-dialog").open) $("intent-dialog").showModal();
  (intent ? $("i-examples") : $("i-id")).focus();
}

function countExamples() {
  $("i-examples-count").textContent = `${splitLines($("i-examples").value).length} 句例句`;
}

const splitLines = (s) => s.split("\n").map((x) => x.trim()).filter(Boolean);

function intentBody() {
  const b = {
    label: $("i-label").value.trim(),
    description: $("i-description").value.trim(),
    stages: [...$("i-stages").querySelectorAll("input:checked")].map((c) => c.value),
    examples: splitLines($("i-examples").value),
  };
  if (intentEditing.baseRevision != null) b.base_revision = intentEditing.baseRevision;
  return b;
}

function intentId() {
  return intentEditing.intent ? intentEditing.intent.id : $("i-id").value.trim();
}

function intentLocalChecks(b) {
  clearFieldMessages("intent-form");
  const id = intentId();
  if (!ID_RE.test(id)) {
    fieldMessage("intent-form", "i-id", "编号只能用小写字母、数字、- 和 _(最多 64 个)");
    return false;
  }
  if (!b.label) {
    setValidation("intent-validation", "请填写名称", "error");
    return false;
  }
  return true;
}

const validateIntentSoon = debounce(() => writeIntent(true), 700);

async function writeIntent(dry) {
  if (!intentEditing || !$("intent-dialog").open) return;
  const b = intentBody();
  if (!intentLocalChecks(b)) return;
  if (dry && !dryRunWorks) return;
  setValidation("intent-validation", dry ? "正在校验…" : "正在保存(意图识别会重新训练)…", "pending");
  if (!dry) $("intent-save").disabled = true;
  try {
    const r = await call(`/intents/${encodeURIComponent(intentId())}${dry ? "?dry_run=true" : ""}`, { method: "PUT", json: b, headers: dry ? {} : { "Idempotency-Key": intentEditing.key } });
    if (dry) {
      if (r?.valid !== true) return dryRunIgnored(r);
      setValidation("intent-validation", "校验通过,可以保存", "ok");
      return;
    }
    setVersion(r?.version);
    $("intent-dialog").close();
    toast(`已保存意图 ${r?.intent || ""}(版本 ${r?.version})`);
    intentEditing = null;
    loadAll();
  } catch (e) {
    if (!dry) intentEditing.key = newKey();
    if (e instanceof ApiError && e.status === 409) showConflict("intent", e);
    else setValidation("intent-validation", `${dry ? "校验" : "保存"}失败:${explain(errorText(e))}`, "error");
  } finally {
    $("intent-save").disabled = false;
  }
}

async function reloadIntent() {
  try {
    const d = await call("/intents");
    intents = d?.intents || [];
    const fresh = intents.find((i) => i.id === intentEditing?.intent?.id);
    if (fresh) openIntent(fresh); // refills the open editor
    else $("intent-dialog").close();
    renderIntentNav();
  } catch (e) {
    toast(`重新加载失败:${errorText(e)}`, "error");
  }
}

// ---------------------------------------------------------------- try it

async function tryIt(e) {
  e.preventDefault();
  const text = $("try-text").value.trim();
  if (!text) return;
  const out = $("try-result");
  fill(out, h("p", { class: "muted", text: "正在计算…" }));
  const body = { conversation: `admin-try-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`, text };
  const buyer = $("try-buyer").value.trim();
  if (buyer) body.buyer = buyer;
  try {
    const r = await call("/messages", { method: "POST", json: body });
    const res = r?.result || {};
    fill(out,
      h("h3", { text: "识别的意图" }),
      h("ul", { class: "intent-chips" }, (res.intents || []).map((i) =>
        h("li", { class: "intent-chip", dataset: { intent: i.intent } }, `${label(i.intent)} ${Math.round((i.asked ?? i.confidence) * 100)}%`))),
      r.abstained ? h("p", { class: "hint", text: "意图不明确:推荐先向买家确认的话术" }) : null,
      h("h3", { text: "推荐话术" }),
      (res.suggestions || []).length
        ? h("ol", { class: "try-suggestions" }, res.suggestions.map((s) =>
          h("li", { class: "try-suggestion", dataset: { phraseId: s.phrase_id } },
            h("div", { class: "phrase-meta" }, h("span", { class: "tag", text: label(s.intent) }), h("code", { class: "pid", text: s.phrase_id }), s.code ? h("span", { class: "tag code", text: "/" + s.code }) : null, h("span", { class: "tag", text: `得分 ${s.score.toFixed(2)}` })),
            h("div", { class: "phrase-text" }, placeholderRuns(s.text).map((run) => run.placeholder ? h("mark", { class: "placeholder", text: run.text }) : run.text)),
            s.missing?.length ? h("div", { class: "hint", text: "待客服填写:" + s.missing.map((v) => VARIABLE_LABELS[v] || v).join("、") }) : null)))
        : h("p", { class: "muted", text: "没有推荐" }),
      h("p", { class: "hint", text: `引擎耗时 ${r.engine_us} 微秒` }));
  } catch (err) {
    fill(out, h("p", { class: "error", text: `出错了:${errorText(err)}` }));
  }
}

// ---------------------------------------------------------------- import

let importBytes = null;
let importName = "";

async function importChosen() {
  const file = $("import-file").files?.[0];
  $("import-confirm").hidden = true;
  importBytes = null;
  if (!file) return;
  if (file.size > 4 * 1024 * 1024) {
    fill($("import-report"), h("p", { class: "error", text: "文件超过 4 MB,请拆分后再导入" }));
    return;
  }
  importName = file.name;
  fill($("import-report"), h("p", { class: "muted", text: `正在预检 ${file.name}…` }));
  let bytes;
  try {
    bytes = await file.arrayBuffer();
  } catch (e) {
    fill($("import-report"), h("p", { class: "error", text: "读取文件失败" }));
    return;
  }
  try {
    const r = await call("/import?dry_run=true", { method: "POST", body: bytes, contentType: "text/csv", timeout: 60000 });
    renderImport(r, false);
    if ((r?.accepted || []).length) {
      importBytes = bytes;
      $("import-confirm").hidden = false;
      $("import-confirm").textContent = `确认导入 ${r.accepted.length} 条`;
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 422 && e.body && Array.isArray(e.body.rejected)) renderImport(e.body, false);
    else fill($("import-report"), h("p", { class: "error", text: `预检失败:${errorText(e)}` }));
  }
}

function renderImport(r, applied) {
  const accepted = r.accepted || [];
  const rejected = r.rejected || [];
  const summary = applied
    ? `已导入 ${accepted.length} 条(版本 ${r.version}),跳过重复 ${r.duplicates || 0} 条。`
    : rejected.length
      ? `预检未通过:${rejected.length} 行被拒绝,整个文件不会导入。请按下表修改后重新选择文件。`
      : `预检通过:可导入 ${accepted.length} 条,重复跳过 ${r.duplicates || 0} 条。`;
  fill($("import-report"),
    h("p", { class: rejected.length ? "error" : "ok", text: `${importName}:${summary}` }),
    (r.new_intents || []).length ? h("p", { class: "hint", text: "将新建意图:" + r.new_intents.map((i) => `${i.label}(${i.id})`).join("、") }) : null,
    rejected.length ? h("table", { class: "report rejected" },
      h("thead", {}, h("tr", {}, ["行", "分组", "内容", "原因", "建议改写"].map((t) => h("th", { text: t })))),
      h("tbody", {}, rejected.map((x) => h("tr", {},
        h("td", { text: String(x.line) }), h("td", { text: x.group || "" }), h("td", { text: x.text || "(空)" }),
        h("td", { text: explainImport(x.reason) }), h("td", { text: x.rewritten || "—" }))))) : null,
    accepted.length ? h("details", { open: !rejected.length },
      h("summary", { text: `可导入的行(${accepted.length})` }),
      h("table", { class: "report accepted" },
        h("thead", {}, h("tr", {}, ["行", "意图", "编号", "提醒"].map((t) => h("th", { text: t })))),
        h("tbody", {}, accepted.map((x) => h("tr", {},
          h("td", { text: String(x.line) }), h("td", { text: label(x.intent) }), h("td", { text: x.id }),
          h("td", { text: (x.warnings || []).join(";") || "—" })))))) : null);
}

function explainImport(reason) {
  return String(reason || "")
    .replace(/^compliance: /, "违规用语:")
    .replace(/absolute_promise/g, "绝对化承诺").replace(/off_platform/g, "站外引流").replace(/superlative/g, "极限用语")
    .replace(/contact_info/g, "联系方式").replace(/abusive/g, "辱骂").replace(/blunt_refusal/g, "生硬拒绝")
    .replace(/^the phrase is empty$/, "话术为空")
    .replace(/^unknown variable `(.*)`$/, "未知变量 $1")
    .replace(/^快捷编码 `(.*)` is already used by `(.*)`$/, "快捷编码 $1 已被 $2 使用")
    .replace(/^快捷编码 `(.*)` must be 1-16 ASCII letters or digits$/, "快捷编码 $1 只能是 1–16 个字母或数字");
}

async function importConfirm() {
  if (!importBytes) return;
  $("import-confirm").disabled = true;
  try {
    const r = await call("/import", { method: "POST", body: importBytes, contentType: "text/csv", headers: { "Idempotency-Key": newKey() }, timeout: 60000 });
    renderImport(r, true);
    setVersion(r?.version);
    $("import-confirm").hidden = true;
    importBytes = null;
    $("import-file").value = "";
    toast("导入完成");
    loadAll();
  } catch (e) {
    if (e instanceof ApiError && e.status === 422 && e.body && Array.isArray(e.body.rejected)) renderImport(e.body, false);
    else toast(`导入失败:${errorText(e)}`, "error");
  } finally {
    $("import-confirm").disabled = false;
  }
}

// ---------------------------------------------------------------- history

async function loadHistory() {
  if (!shop) return;
  try {
    const d = await call("/history");
    const list = d?.history || [];
    $("history-empty").hidden = list.length > 0;
    fill($("history-body"), list.map((x) => h("tr", { dataset: { version: String(x.version) } },
      h("td", { text: String(x.version) }),
      h("td", { text: new Date(x.time * 1000).toLocaleString("zh-CN", { hour12: false }) }),
      h("td", { text: describeAction(x.action) }),
      h("td", { class: "files", text: (x.files || []).join("、") }),
      h("td", {}, h("button", { type: "button", class: "small writes", on: { click: () => revert(x.version) } }, "恢复到此版本")))));
  } catch (e) {
    toast(`读取历史失败:${errorText(e)}`, "error");
  }
}

function describeAction(a) {
  return String(a || "")
    .replace(/^edit intent (.+)$/, (m, id) => `修改意图 ${label(id)}(${id})`)
    .replace(/^revert to (\d+)$/, "恢复到版本 $1")
    .replace(/^import\b.*$/, "导入千牛快捷短语表")
    .replace(/^edit policy$/, "修改店铺政策");
}

async function revert(v) {
  const ok = await confirmBox(`把话术库恢复成版本 ${v} 刚保存后的样子?这会作为一次新的修改记录,之后仍可撤销。`, "恢复");
  if (!ok) return;
  try {
    const r = await call("/revert", { method: "POST", json: { version: v }, headers: { "Idempotency-Key": newKey() } });
    setVersion(r?.version);
    toast(`已恢复到版本 ${r?.reverted_to}(新版本 ${r?.version})`);
    loadAll();
    loadHistory();
  } catch (e) {
    toast(`恢复失败:${errorText(e)}`, "error");
  }
}

// ---------------------------------------------------------------- wiring

function selectTab(name) {
  for (const b of document.querySelectorAll(".tabs [role=tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of document.querySelectorAll("main > .tab")) s.hidden = s.dataset.tab !== name;
  if (name === "history") loadHistory();
}

function wire() {
  fill($("f-order-state"), ORDER_STATES.map(([v, t]) => h("label", { class: "check" }, h("input", { type: "checkbox", value: v }), ` ${t}`)));
  fill($("i-stages"), STAGES.map((s) => h("label", { class: "check" }, h("input", { type: "checkbox", value: s }), ` ${s}`)));

  $("token-btn").addEventListener("click", () => showToken($("token-panel").hidden));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("token-input").value.trim();
    if (!t) return;
    $("token-input").value = "";
    store.set(TOKEN_KEY, t);
    showToken(false);
    banner("");
    shop = null;
    connect(t);
  });
  $("token-clear").addEventListener("click", () => {
    store.remove(TOKEN_KEY);
    if (client) client.close();
    client = null;
    token = null;
    shop = null;
    toast("令牌已清除");
  });

  for (const b of document.querySelectorAll(".tabs [role=tab]")) b.addEventListener("click", () => selectTab(b.dataset.tab));

  const search = debounce(() => {
    query = $("phrase-search").value.trim();
    loadPhrases();
  }, 250);
  $("phrase-search").addEventListener("input", search);
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search.flush(); });

  $("new-phrase").addEventListener("click", () => openPhrase(null));
  $("new-intent").addEventListener("click", () => openIntent(null));

  const form = $("phrase-form");
  form.addEventListener("input", (e) => {
    if (e.target.id === "f-text") liveCheck(e.target.value);
    $("phrase-conflict").hidden = true;
    validateSoon();
  });
  form.addEventListener("change", () => validateSoon());
  // Leaving a field validates at once, except towards 取消/保存: a message appearing on
  // mousedown would move the button away from under the pointer.
  const towardsActions = (e) => !!e.relatedTarget?.closest?.(".row.end");
  form.addEventListener("focusout", (e) => { if (!towardsActions(e)) validateSoon.flush(); });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    savePhrase();
  });
  $("phrase-cancel").addEventListener("click", () => $("phrase-dialog").close());
  $("phrase-reload").addEventListener("click", reloadPhrase);
  $("phrase-dialog").addEventListener("close", () => { validateSoon.cancel(); liveCheck.cancel(); editing = null; });

  const iform = $("intent-form");
  iform.addEventListener("input", (e) => {
    if (e.target.id === "i-examples") countExamples();
    validateIntentSoon();
  });
  iform.addEventListener("change", () => validateIntentSoon());
  iform.addEventListener("focusout", (e) => { if (!towardsActions(e)) validateIntentSoon.flush(); });
  iform.addEventListener("submit", (e) => {
    e.preventDefault();
    validateIntentSoon.cancel();
    writeIntent(false);
  });
  $("intent-cancel").addEventListener("click", () => $("intent-dialog").close());
  $("intent-reload").addEventListener("click", reloadIntent);
  $("intent-dialog").addEventListener("close", () => { validateIntentSoon.cancel(); intentEditing = null; });

  $("try-form").addEventListener("submit", tryIt);
  $("import-file").addEventListener("change", importChosen);
  $("import-confirm").addEventListener("click", importConfirm);
  $("history-reload").addEventListener("click", loadHistory);
}

function init() {
  wire();
  const t = store.get(TOKEN_KEY);
  if (t) connect(t);
  else showToken(true);
}

init();
