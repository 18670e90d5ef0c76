// sidepanel.js — the extension's side panel. It embeds the server's sidebar
// (<server>/?embed=1) and relays between it and the chat-page adapters (content scripts):
//   adapter → panel: buyer_message, focus, adapter_hello   (chrome.runtime messages)
//   panel → sidebar: config, buyer_message, focus, adapter, inserted   (postMessage)
//   sidebar → panel: ready, insert, status   (postMessage, origin-checked)
//   panel → adapter: insert, announce   (chrome.tabs.sendMessage)
// Protocol: docs/frontends.md#postmessage-bridge.

const MAX_BUFFER = 50;
const MAX_TABS = 200;

const frame = document.getElementById("sidebar");
let config = null; // {serverUrl, origin, token}
let frameReady = false;
const buffer = []; // messages for the sidebar before it is ready
const convTabs = new Map(); // conversation → tab id
const adapterTabs = new Map(); // tab id → site label
let lastAdapterTab = null;

function normalizeServer(url) {
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.origin;
  } catch (e) {
    return null;
  }
}

function showSetup(text) {
  document.getElementById("setup").hidden = false;
  document.getElementById("setup-text").textContent = text;
  frame.hidden = true;
  frame.removeAttribute("src");
  frameReady = false;
}

async function load() {
  const { serverUrl, token } = await chrome.storage.local.get(["serverUrl", "token"]);
  const origin = serverUrl ? normalizeServer(serverUrl) : null;
  document.getElementById("server-label").textContent = origin ? `服务器:${origin}` : "未设置服务器";
  if (!origin || !token) {
    config = null;
    showSetup(!origin ? "还没有设置服务器地址和客服令牌。" : "还没有设置客服令牌。");
    return;
  }
  const sameFrame = config && config.origin === origin && frame.getAttribute("src");
  config = { origin, token };
  document.getElementById("setup").hidden = true;
  frame.hidden = false;
  if (sameFrame) {
    postToFrame({ huashu: "config", token });
    return;
  }
  frameReady = false;
  frame.src = `${origin}/?embed=1&parent=${encodeURIComponent(location.origin)}`;
}

function postToFrame(msg) {
  if (!config || !frame.contentWindow) return;
  if (!frameReady && msg.huashu !== "config") {
    buffer.push(msg);
    if (buffer.length > MAX_BUFFER) buffer.shift();
    return;
  }
  frame.contentWindow.postMessage(msg, config.origin);
}

function adapterState() {
  const labels = [...new Set(adapterTabs.values())];
  postToFrame({ huashu: "adapter", attached: adapterTabs.size > 0, page: labels.join("、") });
}

function noteAdapter(tabId, label) {
  if (tabId == null) return;
  const known = adapterTabs.has(tabId);
  adapterTabs.set(tabId, label || "聊天页面");
  lastAdapterTab = tabId;
  if (!known) adapterState();
}

function noteConversation(conversation, tabId) {
  convTabs.delete(conversation);
  convTabs.set(conversation, tabId);
  if (convTabs.size > MAX_TABS) convTabs.delete(convTabs.keys().next().value);
}

// Chat pages (content scripts) → sidebar.
chrome.runtime.onMessage.addListener((msg, sender) => {
  if (!msg || typeof msg !== "object" || sender.id !== chrome.runtime.id || !sender.tab) return false;
  const tabId = sender.tab.id;
  switch (msg.huashu) {
    case "adapter_hello":
      noteAdapter(tabId, msg.site);
      break;
    case "buyer_message":
      noteAdapter(tabId);
      noteConversation(msg.conversation, tabId);
      postToFrame({ huashu: "buyer_message", conversation: msg.conversation, buyer: msg.buyer, text: msg.text, messageId: msg.messageId });
      break;
    case "focus":
      noteAdapter(tabId);
      noteConversation(msg.conversation, tabId);
      postToFrame({ huashu: "focus", conversation: msg.conversation, buyer: msg.buyer });
      break;
    default:
      break;
  }
  return false;
});

chrome.tabs.onRemoved.addListener((tabId) => {
  if (adapterTabs.delete(tabId)) adapterState();
  for (const [c, t] of convTabs) if (t === tabId) convTabs.delete(c);
});

/** Asks every tab's adapter (if any) to say hello and hand over its recent buyer messages. */
async function announce() {
  let tabs = [];
  try {
    tabs = await chrome.tabs.query({});
  } catch (e) {
    return;
  }
  await Promise.all(tabs.map(async (tab) => {
    try {
      const r = await chrome.tabs.sendMessage(tab.id, { huashu: "announce" });
      if (!r || r.attached !== true) return;
      noteAdapter(tab.id, r.site);
      if (r.conversation?.id) {
        noteConversation(r.conversation.id, tab.id);
        postToFrame({ huashu: "focus", conversation: r.conversation.id, buyer: r.conversation.buyer || "" });
      }
      for (const m of (r.recent || []).slice(-MAX_BUFFER)) {
        noteConversation(m.conversation, tab.id);
        postToFrame({ huashu: "buyer_message", conversation: m.conversation, buyer: m.buyer, text: m.text, messageId: m.messageId });
      }
    } catch (e) {
      // No adapter in that tab.
    }
  }));
  adapterState();
}

async function insert(msg) {
  const tabId = convTabs.get(msg.conversation) ?? lastAdapterTab;
  if (tabId == null) return { ok: false, error: "没有打开的聊天页面" };
  try {
    const r = await chrome.tabs.sendMessage(tabId, { huashu: "insert", conversation: msg.conversation, text: msg.text });
    return r && typeof r.ok === "boolean" ? r : { ok: false, error: "聊天页面没有回应" };
  } catch (e) {
    adapterTabs.delete(tabId);
    adapterState();
    return { ok: false, error: "聊天页面已关闭或需要刷新" };
  }
}

// Sidebar (iframe) → panel.
window.addEventListener("message", async (e) => {
  if (!config || e.source !== frame.contentWindow || e.origin !== config.origin) return;
  const m = e.data;
  if (!m || typeof m !== "object" || typeof m.huashu !== "string") return;
  if (m.huashu === "ready") {
    frameReady = true;
    document.getElementById("frame-error").hidden = true;
    postToFrame({ huashu: "config", token: config.token });
    for (const b of buffer.splice(0)) postToFrame(b);
    adapterState();
    announce();
  } else if (m.huashu === "insert" && typeof m.text === "string" && typeof m.conversation === "string") {
    const r = await insert(m);
    postToFrame({ huashu: "inserted", requestId: m.requestId, conversation: m.conversation, ok: r.ok, error: r.error || null });
  }
});

frame.addEventListener("load", () => {
  // The sidebar says `ready` once its script runs; a page that never does is not huashu.
  const src = frame.getAttribute("src");
  setTimeout(() => {
    if (!frameReady && frame.getAttribute("src") === src && config) {
      const el = document.getElementById("frame-error");
      el.hidden = false;
      el.textContent = `无法加载 ${config.origin} 的侧栏:请确认服务器地址正确、服务已启动。`;
    }
  }, 8000);
});

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && (changes.serverUrl || changes.token)) load();
});

for (const id of ["open-options", "settings"]) {
  document.getElementById(id).addEventListener("click", () => chrome.runtime.openOptionsPage());
}

load();
