// options.js — the extension's settings: server address and agent token in chrome.storage.local.

const $ = (id) => document.getElementById(id);

function result(text, kind) {
  $("result").textContent = text;
  $("result").dataset.kind = kind || "";
}

function origin(url) {
  try {
    const u = new URL(url.trim());
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.origin;
  } catch (e) {
    return null;
  }
}

function read() {
  const server = origin($("server-url").value);
  const token = $("token").value.trim();
  if (!server) {
    result("服务器地址无效:需要以 http:// 或 https:// 开头,例如 http://127.0.0.1:7700", "error");
    $("server-url").focus();
    return null;
  }
  if (!token) {
    result("请填写客服令牌", "error");
    $("token").focus();
    return null;
  }
  return { server, token };
}

/** Opens a WebSocket with the token: resolves with the `welcome` frame or rejects with a reason. */
function probe(server, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.replace(/^http/, "ws") + "/v1/ws", ["huashu.v1", "bearer." + token]);
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error("连接超时"));
    }, 8000);
    ws.onmessage = (e) => {
      clearTimeout(timer);
      let w = null;
      try { w = JSON.parse(e.data); } catch (err) { w = null; }
      ws.close(1000);
      if (w && w.type === "welcome") resolve(w);
      else reject(new Error("服务器的回答不是 huashu 协议"));
    };
    ws.onclose = async () => {
      clearTimeout(timer);
      // Closed before any frame: the token was refused (HTTP 401) or the server is unreachable.
      try {
        await fetch(server + "/healthz", { mode: "no-cors", cache: "no-store" });
        reject(new Error("服务器可以访问,但令牌被拒绝:请检查令牌"));
      } catch (err) {
        reject(new Error("无法连接服务器:请检查地址和服务是否已启动"));
      }
    };
  });
}

async function init() {
  // The form stays disabled until the stored values are in, so nothing typed is overwritten.
  const { serverUrl, token } = await chrome.storage.local.get(["serverUrl", "token"]);
  $("server-url").value = serverUrl || "http://127.0.0.1:7700";
  $("token").value = token || "";
  $("fields").disabled = false;

  $("settings-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = read();
    if (!v) return;
    await chrome.storage.local.set({ serverUrl: v.server, token: v.token });
    $("server-url").value = v.server;
    result("已保存。侧边栏会自动使用新设置。", "ok");
  });

  $("test").addEventListener("click", async () => {
    const v = read();
    if (!v) return;
    result("正在连接…", "");
    try {
      const w = await probe(v.server, v.token);
      const role = w.role === "owner" ? "店主(侧栏只需客服令牌)" : "客服";
      result(`连接成功:店铺 ${w.shop},令牌角色 ${role}`, "ok");
    } catch (err) {
      result(err.message, "error");
    }
  });

  $("clear").addEventListener("click", async () => {
    await chrome.storage.local.remove(["serverUrl", "token"]);
    $("token").value = "";
    result("已清除令牌和服务器地址", "ok");
  });
}

init();
