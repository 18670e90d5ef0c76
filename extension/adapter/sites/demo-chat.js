// adapter/sites/demo-chat.js — how to read and fill huashu's demo workbench (/demo/chat).
// A site module for another chat page provides the same fields (docs/frontends.md).

HuashuAdapter.register({
  name: "demo-chat",
  label: "演示工作台",

  /** Whether this page is one this module understands. */
  matches(location, document) {
    return /\/demo\/chat\/?$/.test(location.pathname) && !!document.getElementById("message-list");
  },

  /** The element to watch for changes (the whole workbench). */
  root(document) {
    return document.querySelector(".workbench") || document.body;
  },

  /** The open chat: {id, buyer}. */
  currentConversation() {
    const title = document.getElementById("chat-title");
    if (!title || !title.dataset.buyerId) return null;
    return { id: title.dataset.buyerId, buyer: title.textContent.trim() };
  },

  /** Messages of the open chat, oldest first: {id, conversation, buyer, role, text}. */
  readMessages() {
    const current = this.currentConversation();
    if (!current) return [];
    return [...document.querySelectorAll("#message-list .msg[data-msg-id]")].map((el) => ({
      id: el.dataset.msgId,
      conversation: current.id,
      buyer: current.buyer,
      role: el.dataset.role === "buyer" ? "buyer" : "seller",
      text: el.querySelector(".msg-text")?.textContent || "",
    }));
  },

  /** The last message of every chat in the list (others than the open one included). */
  readPreviews() {
    return [...document.querySelectorAll("#buyer-list .buyer-item[data-buyer-id]")]
      .filter((li) => li.dataset.lastMsgId)
      .map((li) => ({
        id: li.dataset.lastMsgId,
        conversation: li.dataset.buyerId,
        buyer: li.dataset.buyerNick || li.querySelector(".buyer-nick")?.textContent || "",
        role: li.dataset.lastRole === "buyer" ? "buyer" : "seller",
        text: li.querySelector(".buyer-preview")?.textContent || "",
      }));
  },

  /** Opens the chat of a conversation; true if it exists. */
  selectConversation(id) {
    const li = [...document.querySelectorAll("#buyer-list .buyer-item[data-buyer-id]")].find((x) => x.dataset.buyerId === id);
    if (!li) return false;
    li.click();
    return true;
  },

  /** The seller's input box. */
  input() {
    return document.getElementById("chat-input");
  },
});
