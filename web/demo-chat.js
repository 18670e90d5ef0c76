// demo-chat.js — the demo seller chat workbench at /demo/chat. A plain imitation of a
// platform page with no knowledge of huashu; its team-written buyers and histories are
// made up for the demo (no real buyer data).

const MAX_MESSAGES = 200;
const MAX_INPUT = 500;

const buyers = [
  {
    id: "tb_xiaowang", nick: "小王爱买买", avatar: "王",
    history: [
      ["buyer", "在吗"],
      ["seller", "亲,在的,请问有什么可以帮您?"],
      ["buyer", "云感棉四件套1.8米的床有货吗"],
      ["seller", "有货的亲,1.8米床建议选2.0m的被套哦~"],
    ],
  },
  {
    id: "jd_orange_soda", nick: "橘子汽水", avatar: "橘",
    history: [
      ["buyer", "昨天拍的凉席发了吗"],
      ["seller", "亲,已经安排发货了,请耐心等待哦~"],
    ],
  },
  {
    id: "tb_amay", nick: "阿May", avatar: "M",
    history: [
      ["buyer", "收到的枕头有一股味道"],
    ],
  },
  {
    id: "tb_laozhang88", nick: "老张88", avatar: "张",
    history: [
      ["buyer", "你好,可以开发票吗"],
      ["seller", "可以的亲,下单时填写抬头和税号就好~"],
      ["buyer", "好的谢谢"],
    ],
  },
];

const quick = ["我的快递到哪了", "能便宜点吗", "拍下了帮我改下价", "什么时候发货", "质量太差了,我要投诉"];

const state = {
  current: buyers[0].id,
  seq: 0,
  byId: new Map(),
};

const baseTime = Date.now() - 30 * 60 * 1000;
for (const b of buyers) {
  b.messages = b.history.map(([role, text], i) => ({
    id: `${b.id}-h${i + 1}`, role, text, at: baseTime + i * 60 * 1000,
  }));
  b.unread = 0;
  state.byId.set(b.id, b);
}

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function hhmm(t) {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function renderBuyerList() {
  const list = $("buyer-list");
  list.replaceChildren(...buyers.map((b) => {
    const last = b.messages[b.messages.length - 1];
    const li = el("li", "buyer-item" + (b.id === state.current ? " active" : ""));
    li.dataset.buyerId = b.id;
    li.dataset.buyerNick = b.nick;
    if (last) {
      li.dataset.lastMsgId = last.id;
      li.dataset.lastRole = last.role;
    }
    li.tabIndex = 0;
    li.setAttribute("role", "button");
    const av = el("span", "avatar", b.avatar);
    const body = el("span", "buyer-body");
    body.append(el("span", "buyer-nick", b.nick), el("span", "buyer-preview", last ? last.text : ""));
    li.append(av, body);
    if (b.unread) li.append(el("span", "buyer-unread", String(b.unread)));
    li.addEventListener("click", () => selectBuyer(b.id));
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") selectBuyer(b.id); });
    return li;
  }));
}

function messageNode(b, m) {
  const li = el("li", `msg msg-${m.role}`);
  li.dataset.msgId = m.id;
  li.dataset.role = m.role;
  const meta = el("div", "msg-meta");
  meta.append(el("span", "msg-nick", m.role === "buyer" ? b.nick : "小满"), el("span", "msg-time", hhmm(m.at)));
  li.append(meta, el("div", "msg-text", m.text));
  return li;
}

function renderChat() {
  const b = state.byId.get(state.current);
  $("chat-title").textContent = b.nick;
  $("chat-title").dataset.buyerId = b.id;
  $("chat-sub").textContent = `买家账号:${b.id}`;
  $("message-list").replaceChildren(...b.messages.map((m) => messageNode(b, m)));
  scrollDown();
}

function scrollDown() {
  const list = $("message-list");
  list.scrollTop = list.scrollHeight;
}

function selectBuyer(id) {
  if (!state.byId.has(id)) return;
  state.current = id;
  state.byId.get(id).unread = 0;
  $("sim-buyer").value = id;
  renderBuyerList();
  renderChat();
}

function addMessage(buyerId, role, text) {
  const b = state.byId.get(buyerId);
  const m = { id: `${buyerId}-${Date.now().toString(36)}-${++state.seq}`, role, text, at: Date.now() };
  b.messages.push(m);
  if (b.messages.length > MAX_MESSAGES) b.messages.splice(0, b.messages.length - MAX_MESSAGES);
  if (buyerId === state.current) {
    const list = $("message-list");
    list.append(messageNode(b, m));
    while (list.children.length > MAX_MESSAGES) list.firstElementChild.remove();
    scrollDown();
  } else if (role === "buyer") {
    b.unread += 1;
  }
  // The buyer with the newest message goes to the top, as on real workbenches.
  buyers.splice(buyers.indexOf(b), 1);
  buyers.unshift(b);
  renderBuyerList();
}

function sendSeller() {
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text) return;
  addMessage(state.current, "seller", text.slice(0, MAX_INPUT));
  input.value = "";
  updateCount();
}

function updateCount() {
  $("char-count").textContent = `${$("chat-input").value.length}/${MAX_INPUT}`;
}

function sendBuyer() {
  const text = $("sim-text").value.trim();
  const id = $("sim-buyer").value;
  if (!text || !state.byId.has(id)) return;
  addMessage(id, "buyer", text.slice(0, MAX_INPUT));
  $("sim-text").value = "";
}

function init() {
  const sel = $("sim-buyer");
  for (const b of buyers) {
    const o = el("option", null, `${b.nick}(${b.id})`);
    o.value = b.id;
    sel.append(o);
  }
  const q = $("sim-quick");
  for (const text of quick) {
    const btn = el("button", "quick", text);
    btn.type = "button";
    btn.addEventListener("click", () => { $("sim-text").value = text; $("sim-text").focus(); });
    q.append(btn);
  }
  $("chat-input").maxLength = MAX_INPUT;
  $("send-btn").addEventListener("click", sendSeller);
  $("chat-input").addEventListener("input", updateCount);
  $("chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendSeller();
    }
  });
  $("sim-send").addEventListener("click", sendBuyer);
  $("sim-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendBuyer();
    }
  });
  selectBuyer(state.current);
}

init();
