// adapter/core.js — generic chat-page adapter (content script). It knows no page: a site
// module (adapter/sites/*.js) registers how to read and fill one chat page, and this core
// watches that page with a MutationObserver, reports each new buyer message once (by its
// stable id) to the extension's side panel, and fills the chat input on request.
//
// A site module calls HuashuAdapter.register({...}); see docs/frontends.md
// ("Adding an adapter for another chat page") for every field.

(() => {
  if (globalThis.HuashuAdapter) return;

  const MAX_SEEN = 5000;
  const MAX_RECENT = 20;
  const MAX_TEXT = 2000;
  const sites = [];
  let site = null;
  const seen = new Set();
  /** conversation → last buyer message reported, for a side panel that opens later */
  const recent = new Map();
  let lastFocus = null;
  let scanTimer = null;

  function remember(id) {
    if (seen.has(id)) return false;
    seen.add(id);
    if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value);
    return true;
  }

  /** FNV-1a of the parts: a stable id for pages whose messages carry none. */
  function stableId(...parts) {
    let h = 0x811c9dc5;
    for (const ch of parts.join("\u0001")) {
      h ^= ch.codePointAt(0);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return "h" + h.toString(36);
  }

  function send(msg) {
    try {
      chrome.runtime.sendMessage(msg).catch(() => {
        // No side panel open: nothing listens. The panel asks for recent messages when it opens.
      });
    } catch (e) {
      // The extension was reloaded: this content script is orphaned; stop watching.
      stop();
    }
  }

  function clean(text) {
    return String(text || "").replace(/\s+/g, " ").trim().slice(0, MAX_TEXT);
  }

  function report(m) {
    const text = clean(m.text);
    if (!m.conversation || !m.id || !text) return;
    if (!remember(m.conversation + "\u0000" + m.id)) return;
    const msg = { huashu: "buyer_message", conversation: String(m.conversation).slice(0, 128), buyer: clean(m.buyer).slice(0, 100), text, messageId: String(m.id).slice(0, 128) };
    recent.delete(msg.conversation);
    recent.set(msg.conversation, msg);
    if (recent.size > MAX_RECENT) recent.delete(recent.keys().next().value);
    send(msg);
  }

  function safe(fn, fallback) {
    try {
      return fn();
    } catch (e) {
      return fallback;
    }
  }

  function scan({ initial = false } = {}) {
    scanTimer = null;
    const current = safe(() => site.currentConversation(), null);
    const messages = safe(() => site.readMessages(), []) || [];
    const previews = (site.readPreviews && safe(() => site.readPreviews(), [])) || [];
    if (initial) {
      // What is on the page already is history: only a buyer's message still waiting for a
      // reply (the last one of the open chat) is reported.
      const last = messages[messages.length - 1];
      for (const m of messages) if (m !== last || m.role !== "buyer") remember(m.conversation + "\u0000" + m.id);
      for (const p of previews) if (!current || p.conversation !== current.id || p.role !== "buyer") remember(p.conversation + "\u0000" + p.id);
    }
    for (const m of messages) if (m.role === "buyer") report(m);
    for (const p of previews) if (p.role === "buyer") report(p);
    if (current && current.id !== lastFocus) {
      lastFocus = current.id;
      send({ huashu: "focus", conversation: current.id, buyer: clean(current.buyer).slice(0, 100) });
    }
  }

  function schedule() {
    if (!scanTimer) scanTimer = setTimeout(scan, 50);
  }

  function setValue(input, text) {
    if (input.isContentEditable) {
      input.focus();
      document.execCommand("selectAll", false);
      document.execCommand("insertText", false, text);
      return;
    }
    // The prototype's setter, so pages built on React/Vue see the change as user input.
    const proto = Object.getPrototypeOf(input);
    const desc = Object.getOwnPropertyDescriptor(proto, "value");
    if (desc && desc.set) desc.set.call(input, text);
    else input.value = text;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
    input.focus();
    if (typeof input.setSelectionRange === "function") input.setSelectionRange(text.length, text.length);
  }

  async function insert(conversation, text) {
    const current = safe(() => site.currentConversation(), null);
    if (!current || current.id !== conversation) {
      const switched = site.selectConversation ? safe(() => site.selectConversation(conversation), false) : false;
      if (!switched) return { ok: false, error: "聊天页面上找不到这个会话" };
      await new Promise((r) => setTimeout(r, 0));
      const now = safe(() => site.currentConversation(), null);
      if (!now || now.id !== conversation) return { ok: false, error: "无法切换到这个会话" };
    }
    if (site.insert) {
      const ok = safe(() => site.insert(text), false);
      return ok === false ? { ok: false, error: "无法填入聊天输入框" } : { ok: true };
    }
    const input = safe(() => site.input(), null);
    if (!input) return { ok: false, error: "找不到聊天输入框" };
    setValue(input, text);
    return { ok: true };
  }

  let observer = null;
  function stop() {
    if (observer) observer.disconnect();
    observer = null;
  }

  function onMessage(msg, sender, respond) {
    if (!msg || typeof msg !== "object" || sender.id !== chrome.runtime.id) return false;
    if (msg.huashu === "insert" && typeof msg.conversation === "string" && typeof msg.text === "string") {
      insert(msg.conversation, msg.text.slice(0, MAX_TEXT)).then(respond, (e) => respond({ ok: false, error: String(e && e.message) }));
      return true;
    }
    if (msg.huashu === "announce") {
      const current = safe(() => site.currentConversation(), null);
      respond({ attached: true, site: site.label || site.name, conversation: current, recent: [...recent.values()] });
      return false;
    }
    return false;
  }

  globalThis.HuashuAdapter = {
    /** Adds a site module. */
    register(s) {
      for (const key of ["name", "matches", "currentConversation", "readMessages"]) {
        if (!s || !s[key]) throw new Error(`huashu adapter: site module lacks ${key}`);
      }
      if (!s.input && !s.insert) throw new Error(`huashu adapter: site module ${s.name} lacks input or insert`);
      sites.push(s);
    },
    stableId,
    /** Picks the first registered site module that matches this page and starts watching. */
    start() {
      if (site) return;
      site = sites.find((s) => safe(() => s.matches(location, document), false)) || null;
      if (!site) return;
      chrome.runtime.onMessage.addListener(onMessage);
      const root = safe(() => (site.root ? site.root(document) : document.body), document.body) || document.body;
      observer = new MutationObserver(schedule);
      observer.observe(root, { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: site.watchAttributes || ["data-last-msg-id", "data-buyer-id", "class"] });
      scan({ initial: true });
      send({ huashu: "adapter_hello", site: site.label || site.name });
    },
  };
})();
