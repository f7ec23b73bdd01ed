/*
 * The shop assistant as an embeddable chat widget.
 *
 *   <script src="https://shop.example/widget.js" data-api="https://shop.example"
 *           data-title="Sticker shop assistant" data-color="#3b5bdb"
 *           data-position="bottom-right" async></script>
 *
 * Every attribute is optional; data-api defaults to the origin this script was loaded from.
 * When the panel first opens, the widget reads GET /api/v1/chat-intro: the catalog's title (the
 * heading, unless data-title is given), its greeting, and whether the catalog has pictures; for a
 * catalog without pictures it offers no picture upload (no attach button, paste or drop).
 * The widget talks to the JSON API (/api/v1/sessions...) and keeps its session id in
 * sessionStorage, per API, so a reload continues the conversation.
 *
 * Isolation: all of its DOM lives in a shadow root under one <crs-chat-widget> element whose
 * inline style resets every property with !important, so host page CSS neither reaches in (nor
 * leaks through inheritance) and the widget's CSS never reaches out. Plain JS, no dependencies,
 * no network beyond the API; the only global is window.CRSWidget.
 */
(() => {
  "use strict";

  if (window.CRSWidget) return; // loaded twice: keep the first

  const VERSION = "1";
  const DEFAULT_COLOR = "#3b5bdb";
  const MAX_IMAGES = 4;
  const GREETING = "Hi! Tell me what you are looking for, or attach a picture of something like it.";
  const TEXT_GREETING = "Hi! Tell me what you are looking for.";

  // document.currentScript is only set while this script runs for the first time, so read it now.
  const script = document.currentScript ||
    Array.from(document.querySelectorAll("script[src]")).reverse().find((s) => /\/widget\.js(\?|#|$)/.test(s.src));
  const data = (script && script.dataset) || {};
  const scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;

  const config = {
    api: new URL(data.api || scriptOrigin, location.href).href.replace(/\/+$/, ""),
    title: (data.title || "Shop assistant").trim(),
    titleGiven: Boolean(data.title && data.title.trim()), // else the catalog's title, once known
    color: data.color && CSS.supports("color", data.color) ? data.color : DEFAULT_COLOR,
    position: data.position === "bottom-left" ? "bottom-left" : "bottom-right",
  };
  const storageKey = `crs-widget:session:${config.api}`;

  // ---- small helpers --------------------------------------------------------------------------

  const h = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  };

  // Icons are constant markup written here, never text from the API.
  const icon = (paths) => {
    const holder = document.createElement("span");
    holder.className = "icon";
    holder.setAttribute("aria-hidden", "true");
    holder.innerHTML = `<svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" ` +
      `stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${paths}</svg>`;
    return holder;
  };
  const ICONS = {
    chat: '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/>',
    close: '<path d="M6 6l12 12M18 6L6 18"/>',
    restart: '<path d="M3 12a9 9 0 1 0 3-6.7"/><path d="M3 4v5h5"/>',
    attach: '<path d="M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6' +
      'a1.7 1.7 0 0 1-2.4-2.4l8-8"/>',
    send: '<path d="M4 12l16-8-6 16-2.5-6.5z"/><path d="M11.5 13.5L20 4"/>',
    up: '<path d="M7 11v9H4v-9zM7 11l4-8a2.5 2.5 0 0 1 2.5 2.5V9h5.3a2 2 0 0 1 2 2.3l-1.3 7A2 2 0 0 1 17.5 20H7"/>',
    down: '<path d="M17 13V4h3v9zM17 13l-4 8a2.5 2.5 0 0 1-2.5-2.5V15H5.2a2 2 0 0 1-2-2.3l1.3-7' +
      'A2 2 0 0 1 6.5 4H17"/>',
    picture: '<rect x="3" y="4" width="18" height="16" rx="2"/><circle cx="9" cy="10" r="2"/>' +
      '<path d="M21 16l-5-5-9 9"/>',
  };

  const apiUrl = (path) => config.api + path;
  // The API returns item images relative to its own root ("/api/v1/items/{id}/image").
  const assetUrl = (url) => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return url; // already absolute
    return url.startsWith("/") ? config.api + url : `${config.api}/${url}`;
  };

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  const describeDetail = (detail) => {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) { // FastAPI validation errors: [{loc, msg}, ...]
      const where = (d) => (d.loc || []).slice(1).join(".") || "request";
      return detail.map((d) => (d && d.msg ? `${where(d)}: ${d.msg}` : String(d))).join("; ");
    }
    return detail ? JSON.stringify(detail) : "";
  };

  // A network failure and a CORS refusal look the same to a page: a TypeError, no status. A
  // no-cors request (its answer is opaque, so CORS does not apply) tells them apart.
  async function describeNetworkFailure() {
    let reachable = false;
    try {
      await fetch(apiUrl("/api/v1/health"), { mode: "no-cors", credentials: "omit", cache: "no-store" });
      reachable = true;
    } catch (err) {
      reachable = false;
    }
    if (reachable) {
      return `This site (${location.origin}) is not allowed to use the assistant at ${config.api}. ` +
        `The shop must add it to the server's CORS allow-list (app.py --cors-origin ${location.origin}).`;
    }
    return `Cannot reach the assistant at ${config.api}: the server is down or unreachable. Please try again later.`;
  }

  async function request(method, path, body) {
    const init = { method, credentials: "omit", headers: { Accept: "application/json" } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(apiUrl(path), init);
    } catch (err) {
      throw new ApiError(await describeNetworkFailure(), 0);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (err) {
      payload = null;
    }
    if (!response.ok) {
      const detail = payload && describeDetail(payload.detail);
      throw new ApiError(detail || `The assistant answered HTTP ${response.status} ${response.statusText}`.trim(),
        response.status);
    }
    if (payload === null) throw new ApiError("The assistant sent a reply that is not JSON.", response.status);
    return payload;
  }

  const storage = {
    get() {
      try { return sessionStorage.getItem(storageKey); } catch (err) { return null; }
    },
    set(id) {
      try { sessionStorage.setItem(storageKey, id); } catch (err) { /* storage disabled: no resume */ }
    },
    clear() {
      try { sessionStorage.removeItem(storageKey); } catch (err) { /* ignore */ }
    },
  };

  // ---- styles ---------------------------------------------------------------------------------

  const STYLE = `
    .root, .root * { box-sizing: border-box; }
    .root {
      --accent: ${DEFAULT_COLOR}; --on-accent: #fff; --ink: #1f2328; --muted: #5b636e;
      --line: #d8dde3; --soft: #f2f4f7; --bg: #fff; --danger: #b42318;
      font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
      color: var(--ink); text-align: left; letter-spacing: normal; word-spacing: normal;
      text-transform: none; font-style: normal; font-weight: 400; direction: ltr;
    }
    [hidden] { display: none !important; }
    button, input { font: inherit; color: inherit; margin: 0; }
    button {
      cursor: pointer; border: 0; background: none; padding: 0; text-transform: none;
      display: inline-flex; align-items: center; justify-content: center; gap: 6px;
    }
    button:focus-visible, input:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
    button:disabled { cursor: default; opacity: .55; }
    img { display: block; max-width: 100%; border: 0; }
    .icon { display: inline-flex; line-height: 0; }

    .launcher {
      position: fixed; bottom: 20px; width: 56px; height: 56px; border-radius: 50%;
      background: var(--accent); color: var(--on-accent); box-shadow: 0 6px 20px rgba(0,0,0,.25);
      transition: transform .15s ease;
    }
    .launcher:hover { transform: scale(1.06); }
    .launcher .icon svg { width: 26px; height: 26px; }
    .right .launcher { right: 20px; } .left .launcher { left: 20px; }

    .panel {
      position: fixed; bottom: 88px; width: 380px; height: 600px;
      max-height: calc(100vh - 108px); max-width: calc(100vw - 24px);
      display: flex; flex-direction: column; overflow: hidden;
      background: var(--bg); border: 1px solid var(--line); border-radius: 14px;
      box-shadow: 0 12px 40px rgba(0,0,0,.22);
    }
    .right .panel { right: 20px; } .left .panel { left: 20px; }
    @media (max-width: 480px) {
      .panel { bottom: 84px; right: 12px !important; left: 12px !important; width: auto; }
    }

    .header {
      display: flex; align-items: center; gap: 4px; padding: 10px 8px 10px 16px;
      background: var(--accent); color: var(--on-accent);
    }
    .title { flex: 1; margin: 0; font-size: 16px; font-weight: 600; line-height: 1.3;
             overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .header button { height: 32px; min-width: 32px; padding: 0 8px; border-radius: 8px; font-size: 13px; }
    .header button:hover { background: rgba(127,127,127,.22); }
    .header button:focus-visible { outline-color: var(--on-accent); }

    .log { position: relative; flex: 1; overflow-y: auto; padding: 14px 12px; background: var(--soft);
           display: flex; flex-direction: column; gap: 10px; }
    .msg { max-width: 88%; padding: 8px 12px; border-radius: 14px; white-space: pre-wrap;
           overflow-wrap: anywhere; }
    .bot { align-self: flex-start; background: var(--bg); border: 1px solid var(--line);
           border-bottom-left-radius: 4px; }
    .user { align-self: flex-end; background: var(--accent); color: var(--on-accent);
            border-bottom-right-radius: 4px; }
    .user .thumbs { display: flex; flex-wrap: wrap; gap: 4px; margin-bottom: 4px; }
    .user .thumbs img { width: 64px; height: 64px; object-fit: cover; border-radius: 8px; background: #fff; }
    .user .note { font-style: italic; opacity: .85; }
    .error { align-self: stretch; max-width: none; background: #fef3f2; color: var(--danger);
             border: 1px solid #fecdca; }
    .notice { align-self: center; color: var(--muted); font-size: 12px; padding: 2px 8px; }
    .typing { color: var(--muted); }
    .typing span { display: inline-block; width: 6px; height: 6px; margin: 0 2px; border-radius: 50%;
                   background: currentColor; animation: crs-blink 1.2s infinite both; }
    .typing span:nth-child(2) { animation-delay: .2s; } .typing span:nth-child(3) { animation-delay: .4s; }
    @keyframes crs-blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }

    .options { display: flex; flex-wrap: wrap; gap: 6px; align-self: flex-start; max-width: 100%; }
    .option { padding: 6px 12px; border-radius: 999px; border: 1px solid var(--accent); color: var(--accent);
              background: var(--bg); font-size: 13px; line-height: 1.3; }
    .option:hover:not(:disabled) { background: var(--accent); color: var(--on-accent); }
    .option.chosen { background: var(--accent); color: var(--on-accent); opacity: 1; }

    .cards { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 6px; align-self: stretch;
             margin: 0; padding: 0; list-style: none; }
    .card { display: flex; flex-direction: column; background: var(--bg); border: 1px solid var(--line);
            border-radius: 10px; overflow: hidden; }
    .card img { width: 100%; height: 84px; object-fit: contain; background: #fff; padding: 6px;
                border-bottom: 1px solid var(--line); }
    .card .no-image { height: 84px; display: flex; align-items: center; justify-content: center;
                      color: var(--line); border-bottom: 1px solid var(--line); }
    .card .no-image .icon svg { width: 36px; height: 36px; }
    .card .body { padding: 5px 6px 2px; flex: 1; }
    .card .name { font-weight: 600; font-size: 12px; line-height: 1.3; margin: 0; overflow-wrap: anywhere; }
    .card .reason { color: var(--muted); font-size: 11px; line-height: 1.3; margin: 2px 0 0; }
    .card .actions { display: flex; gap: 4px; padding: 4px 6px 6px; }
    .vote { width: 30px; height: 26px; border-radius: 7px; border: 1px solid var(--line); color: var(--muted);
            background: var(--bg); }
    .vote .icon svg { width: 15px; height: 15px; }
    @media (max-width: 360px) { .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
    .vote:hover { border-color: var(--accent); color: var(--accent); }
    .vote[aria-pressed="true"] { background: var(--accent); border-color: var(--accent); color: var(--on-accent); }

    .composer { border-top: 1px solid var(--line); background: var(--bg); padding: 8px; }
    .pending { display: flex; flex-wrap: wrap; gap: 6px; padding: 0 2px 8px; }
    .pending:empty { display: none; }
    .chip { position: relative; width: 52px; height: 52px; }
    .chip img { width: 52px; height: 52px; object-fit: cover; border-radius: 8px; border: 1px solid var(--line); }
    .chip button { position: absolute; top: -6px; right: -6px; width: 20px; height: 20px; border-radius: 50%;
                   background: var(--ink); color: #fff; }
    .chip button .icon svg { width: 12px; height: 12px; }
    .row { display: flex; align-items: center; gap: 6px; }
    .row > button { width: 38px; height: 38px; border-radius: 10px; color: var(--muted); flex: none; }
    .row > button:hover:not(:disabled) { background: var(--soft); color: var(--ink); }
    .row > .send { background: var(--accent); color: var(--on-accent); }
    .row > .send:hover:not(:disabled) { background: var(--accent); color: var(--on-accent); filter: brightness(1.1); }
    .input { flex: 1; min-width: 0; height: 38px; padding: 0 12px; border: 1px solid var(--line);
             border-radius: 10px; background: var(--bg); outline: none; }
    .input:focus { border-color: var(--accent); }
    .file { display: none; }
    .panel.dragging::after {
      content: "Drop images to attach"; position: absolute; inset: 0; display: flex; align-items: center;
      justify-content: center; background: rgba(255,255,255,.9); border: 3px dashed var(--accent);
      border-radius: 14px; color: var(--accent); font-weight: 600; font-size: 16px;
    }
  `;

  // ---- the widget -----------------------------------------------------------------------------

  class Widget {
    constructor() {
      this.sessionId = storage.get();
      this.pending = []; // [{file, url}]
      this.sentUrls = []; // object URLs of images shown in the user's bubbles
      this.lastOptions = null; // the latest question's option group
      this.busy = false;
      this.generation = 0; // bumped by "start over", so late replies of an old session are dropped
      this.restored = false;
      this.intro = null; // GET /api/v1/chat-intro, read when the panel first opens
      this.pictures = true; // until the intro says the catalog has none
      this.build();
    }

    build() {
      this.host = document.createElement("crs-chat-widget");
      // Inline !important wins over any host stylesheet rule, and `all: initial` stops inheritance.
      this.host.style.cssText = "all: initial !important; display: block !important; position: fixed !important; " +
        "top: 0 !important; left: 0 !important; width: 0 !important; height: 0 !important; " +
        "z-index: 2147483000 !important; overflow: visible !important;";
      const shadow = this.host.attachShadow({ mode: "open" });
      shadow.append(h("style", { text: STYLE }));

      this.root = h("div", {
        class: `root ${config.position === "bottom-left" ? "left" : "right"}`,
        onkeydown: (e) => { if (e.key === "Escape" && this.isOpen()) { e.stopPropagation(); this.close(); } },
      });
      this.root.style.setProperty("--accent", config.color);
      shadow.append(this.root);

      this.launcher = h("button", {
        class: "launcher", type: "button", "aria-label": `Open chat: ${config.title}`,
        "aria-expanded": "false", "aria-controls": "crs-panel", onclick: () => this.toggle(),
      }, icon(ICONS.chat));

      this.log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
      this.fileInput = h("input", {
        class: "file", type: "file", accept: "image/*", multiple: true, tabindex: "-1", "aria-hidden": "true",
        onchange: () => { this.addFiles(this.fileInput.files); this.fileInput.value = ""; },
      });
      this.pendingBox = h("div", { class: "pending", "aria-label": "Attached images" });
      this.input = h("input", {
        class: "input", type: "text", placeholder: "Type a message…", "aria-label": "Message",
        autocomplete: "off", enterkeyhint: "send", onpaste: (e) => this.onPaste(e),
      });
      this.sendButton = h("button", { class: "send", type: "submit", "aria-label": "Send" }, icon(ICONS.send));
      this.form = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
        this.pendingBox,
        h("div", { class: "row" },
          this.attachButton = h("button", { class: "attach", type: "button", "aria-label": "Attach images",
            title: "Attach images (or paste / drop them)", onclick: () => this.fileInput.click() },
          icon(ICONS.attach)),
          this.fileInput, this.input, this.sendButton));

      this.panel = h("section", {
        class: "panel", id: "crs-panel", role: "dialog", "aria-label": config.title, hidden: true,
        ondragenter: (e) => this.onDrag(e, true), ondragover: (e) => this.onDrag(e, true),
        ondragleave: (e) => { if (!this.panel.contains(e.relatedTarget)) this.onDrag(e, false); },
        ondrop: (e) => this.onDrop(e),
      },
      h("div", { class: "header" },
        this.heading = h("h2", { class: "title", text: config.title }),
        h("button", { class: "restart", type: "button", "aria-label": "Start over", title: "Start over",
          onclick: () => this.startOver() }, icon(ICONS.restart), h("span", { text: "Start over" })),
        h("button", { class: "close", type: "button", "aria-label": "Close chat", title: "Close (Esc)",
          onclick: () => this.close() }, icon(ICONS.close))),
      this.log, this.form);

      this.root.append(this.panel, this.launcher);
      document.body.append(this.host);
      this.root.style.setProperty("--on-accent", this.contrastColor()); // needs the host in the document
    }

    // Text on the accent colour: black or white, whichever reads better.
    contrastColor() {
      const probe = h("span", { style: `color: ${config.color}` });
      this.root.append(probe);
      const rgb = (getComputedStyle(probe).color.match(/[\d.]+/g) || [0, 0, 0]).slice(0, 3).map(Number);
      probe.remove();
      const lin = rgb.map((v) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4));
      const luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
      return luminance > 0.45 ? "#111" : "#fff";
    }

    // ---- open / close -----------------------------------------------------------------------

    isOpen() { return !this.panel.hidden; }

    open() {
      if (this.isOpen()) return;
      this.panel.hidden = false;
      this.launcher.setAttribute("aria-expanded", "true");
      this.launcher.setAttribute("aria-label", `Close chat: ${config.title}`);
      this.launcher.replaceChildren(icon(ICONS.close));
      if (!this.restored) {
        this.restored = true;
        this.restore();
      }
      this.input.focus();
    }

    close() {
      if (!this.isOpen()) return;
      this.panel.hidden = true;
      this.launcher.setAttribute("aria-expanded", "false");
      this.launcher.setAttribute("aria-label", `Open chat: ${config.title}`);
      this.launcher.replaceChildren(icon(ICONS.chat));
      this.launcher.focus();
    }

    toggle() { this.isOpen() ? this.close() : this.open(); }

    // ---- the conversation -------------------------------------------------------------------

    // What the catalog is: its title, greeting and whether it has pictures. Without an answer
    // (an older server, a network problem) the widget keeps its defaults; errors show on sending.
    async loadIntro() {
      try {
        const intro = await request("GET", "/api/v1/chat-intro");
        if (intro && typeof intro === "object") this.applyIntro(intro);
      } catch (err) {
        this.intro = null;
      }
    }

    applyIntro(intro) {
      this.intro = intro;
      this.pictures = intro.pictures !== false;
      this.attachButton.hidden = !this.pictures;
      if (!this.pictures) this.clearPending();
      if (!config.titleGiven && typeof intro.title === "string" && intro.title.trim()) {
        config.title = intro.title.trim();
        this.heading.textContent = config.title;
        this.panel.setAttribute("aria-label", config.title);
        this.launcher.setAttribute("aria-label", `${this.isOpen() ? "Close" : "Open"} chat: ${config.title}`);
      }
    }

    async restore() {
      const generation = this.generation;
      this.setBusy(true);
      await this.loadIntro();
      if (generation !== this.generation) return; // "start over" greeted already
      this.setBusy(false);
      this.greet();
      if (!this.sessionId) return;
      try {
        this.setBusy(true); // a message sent now would land above the restored turns
        const session = await request("GET", `/api/v1/sessions/${encodeURIComponent(this.sessionId)}`);
        if (generation !== this.generation) return;
        this.setBusy(false);
        const turns = Array.isArray(session.turns) ? session.turns : [];
        turns.forEach((turn, i) => {
          // The uploads themselves are not kept by the server, only how many there were.
          this.addUser(turn.text || "", [], Array.isArray(turn.images) ? turn.images.length : 0);
          if (turn.reply) this.addReply(turn.reply, i === turns.length - 1);
        });
        this.markRatings(session.liked, true);
        this.markRatings(session.disliked, false);
      } catch (err) {
        if (generation !== this.generation) return;
        if (err.status === 404) { // expired or from another catalog: start fresh on the next message
          this.sessionId = null;
          storage.clear();
        } else {
          this.addError(err.message);
        }
      } finally {
        if (generation === this.generation) this.setBusy(false);
      }
    }

    greet() {
      const greeting = this.intro && typeof this.intro.greeting === "string" ? this.intro.greeting.trim() : "";
      this.addBot(greeting || (this.pictures ? GREETING : TEXT_GREETING));
    }

    startOver() {
      this.generation += 1;
      this.sessionId = null;
      storage.clear();
      this.clearPending();
      this.sentUrls.forEach((url) => URL.revokeObjectURL(url));
      this.sentUrls = [];
      this.lastOptions = null;
      this.log.replaceChildren();
      this.setBusy(false);
      this.greet();
      this.input.value = "";
      this.input.focus();
    }

    async ensureSession() {
      if (this.sessionId) return this.sessionId;
      const created = await request("POST", "/api/v1/sessions");
      if (!created || typeof created.session_id !== "string") {
        throw new ApiError("The assistant did not start a session.", 0);
      }
      this.sessionId = created.session_id;
      storage.set(this.sessionId);
      return this.sessionId;
    }

    async submit(textOverride) {
      if (this.busy) return;
      const text = (textOverride !== undefined ? textOverride : this.input.value).trim();
      const files = this.pending.map((p) => p.file);
      if (!text && !files.length) { this.input.focus(); return; }
      this.disableOptions();
      this.addUser(text, this.pending.map((p) => p.url), 0);
      if (textOverride === undefined) this.input.value = "";
      this.sentUrls.push(...this.pending.map((p) => p.url)); // they now belong to the user's bubble
      this.pending = [];
      this.pendingBox.replaceChildren();
      const generation = this.generation;
      this.setBusy(true);
      try {
        const reply = await this.send(text, files);
        if (generation !== this.generation) return;
        this.addReply(reply, true);
      } catch (err) {
        if (generation !== this.generation) return;
        this.addError(err.message);
        this.enableOptions(); // the question still stands: its answer did not get through
      } finally {
        if (generation === this.generation) this.setBusy(false);
      }
    }

    async send(text, files) {
      const post = async () => {
        const form = new FormData();
        form.append("text", text);
        for (const file of files) form.append("images", file, file.name || "image.png");
        const id = await this.ensureSession();
        return request("POST", `/api/v1/sessions/${encodeURIComponent(id)}/messages`, form);
      };
      try {
        return await post();
      } catch (err) {
        if (err.status !== 404 || !this.sessionId) throw err;
        // The stored session is gone (server reset, other catalog): start a new one, once.
        this.sessionId = null;
        storage.clear();
        this.addNotice("The previous conversation has expired; starting a new one.");
        return post();
      }
    }

    async feedback(item, liked, buttons) {
      const [likeButton, dislikeButton] = buttons;
      const target = liked ? likeButton : dislikeButton;
      if (target.getAttribute("aria-pressed") === "true") return;
      const before = buttons.map((b) => b.getAttribute("aria-pressed"));
      likeButton.setAttribute("aria-pressed", String(liked));
      dislikeButton.setAttribute("aria-pressed", String(!liked));
      try {
        const id = await this.ensureSession();
        await request("POST", `/api/v1/sessions/${encodeURIComponent(id)}/feedback`, { item_id: item.id, liked });
      } catch (err) {
        buttons.forEach((b, i) => b.setAttribute("aria-pressed", before[i]));
        this.addError(err.message);
      }
    }

    // ---- rendering ----------------------------------------------------------------------------

    append(node) {
      this.log.append(node);
      this.log.scrollTop = this.log.scrollHeight;
      return node;
    }

    addBot(text) { return this.append(h("div", { class: "msg bot", text })); }

    addNotice(text) { return this.append(h("div", { class: "notice", role: "status", text })); }

    addError(text) { return this.append(h("div", { class: "msg error", role: "alert", text })); }

    addUser(text, imageUrls, storedImages) {
      const bubble = h("div", { class: "msg user" });
      if (imageUrls.length) {
        bubble.append(h("div", { class: "thumbs" },
          imageUrls.map((url, i) => h("img", { src: url, alt: `Your image ${i + 1}` }))));
      } else if (storedImages) {
        const note = storedImages === 1 ? "[1 image]" : `[${storedImages} images]`;
        bubble.append(h("div", { class: "note", text: note }));
      }
      if (text) bubble.append(document.createTextNode(text));
      return this.append(bubble);
    }

    addReply(reply, live) {
      const first = this.log.lastElementChild;
      this.renderReply(reply, live);
      // A long reply (five cards) would scroll its own text away: show it from its start instead.
      const start = first ? first.nextElementSibling : this.log.firstElementChild;
      if (start && this.log.scrollHeight - start.offsetTop > this.log.clientHeight) {
        this.log.scrollTop = start.offsetTop - 8;
      }
    }

    renderReply(reply, live) {
      if (reply.reply) this.addBot(reply.reply);
      const question = reply.question;
      if (question && Array.isArray(question.options) && question.options.length) {
        const group = h("div", { class: "options", role: "group",
          "aria-label": question.text || `Choose a ${question.label || question.attribute}` });
        // A button shows the option's display name (option_labels) and sends the option itself,
        // the value the assistant understands.
        const labels = Array.isArray(question.option_labels) ? question.option_labels : [];
        question.options.forEach((option, n) => {
          const value = String(option);
          const label = labels.length === question.options.length ? String(labels[n]) : value;
          group.append(h("button", {
            class: "option", type: "button", disabled: !live,
            onclick: (e) => { e.currentTarget.classList.add("chosen"); this.submit(value); },
          }, label));
        });
        this.append(group);
        if (live) this.lastOptions = group;
      }
      const items = Array.isArray(reply.items) ? reply.items : [];
      if (items.length) {
        const list = h("ul", { class: "cards", "aria-label": "Suggested items" });
        for (const item of items) list.append(this.card(item));
        this.append(list);
      }
    }

    card(item) {
      const title = String(item.title || item.id);
      const src = item.image_url; // null: the item has no picture
      const like = h("button", { class: "vote like", type: "button", "aria-pressed": "false",
        "aria-label": `Like ${title}`, title: "Like" }, icon(ICONS.up));
      const dislike = h("button", { class: "vote dislike", type: "button", "aria-pressed": "false",
        "aria-label": `Dislike ${title}`, title: "Dislike" }, icon(ICONS.down));
      like.addEventListener("click", () => this.feedback(item, true, [like, dislike]));
      dislike.addEventListener("click", () => this.feedback(item, false, [like, dislike]));
      return h("li", { class: "card", "data-item-id": String(item.id) },
        src ? h("img", { src: assetUrl(src), alt: title, loading: "lazy" })
          : h("div", { class: "no-image", role: "img", "aria-label": `${title}: no picture` }, icon(ICONS.picture)),
        h("div", { class: "body" },
          h("p", { class: "name", text: title }),
          item.reason ? h("p", { class: "reason", text: String(item.reason) }) : null),
        h("div", { class: "actions" }, like, dislike));
    }

    markRatings(ids, liked) {
      if (!Array.isArray(ids)) return;
      for (const card of this.log.querySelectorAll(".card")) {
        if (!ids.includes(card.dataset.itemId)) continue;
        card.querySelector(".like").setAttribute("aria-pressed", String(liked));
        card.querySelector(".dislike").setAttribute("aria-pressed", String(!liked));
      }
    }

    disableOptions() {
      this.log.querySelectorAll(".option").forEach((b) => { b.disabled = true; });
    }

    enableOptions() {
      if (!this.lastOptions || !this.lastOptions.isConnected) return;
      for (const button of this.lastOptions.querySelectorAll(".option")) {
        button.disabled = false;
        button.classList.remove("chosen");
      }
    }

    setBusy(busy) {
      this.busy = busy;
      this.sendButton.disabled = busy;
      this.panel.setAttribute("aria-busy", String(busy));
      if (busy && !this.typing) {
        this.typing = this.append(h("div", { class: "msg bot typing", "aria-label": "The assistant is typing" },
          h("span"), h("span"), h("span")));
      } else if (!busy && this.typing) {
        this.typing.remove();
        this.typing = null;
      }
    }

    // ---- images -------------------------------------------------------------------------------

    addFiles(fileList) {
      if (!this.pictures) return; // the catalog has no pictures to compare them with
      const files = Array.from(fileList || []);
      const images = files.filter((f) => f.type.startsWith("image/"));
      if (images.length < files.length) this.addError("Only images can be attached.");
      for (const file of images) {
        if (this.pending.length >= MAX_IMAGES) {
          this.addError(`At most ${MAX_IMAGES} images per message.`);
          break;
        }
        const entry = { file, url: URL.createObjectURL(file) };
        this.pending.push(entry);
        const remove = h("button", { type: "button", "aria-label": `Remove ${file.name || "image"}`,
          onclick: () => {
            this.pending = this.pending.filter((p) => p !== entry);
            URL.revokeObjectURL(entry.url);
            chip.remove();
            this.input.focus();
          } }, icon(ICONS.close));
        const preview = h("img", { src: entry.url, alt: file.name || "Attached image" });
        const chip = h("div", { class: "chip" }, preview, remove);
        this.pendingBox.append(chip);
      }
      this.input.focus();
    }

    clearPending() {
      for (const p of this.pending) URL.revokeObjectURL(p.url);
      this.pending = [];
      this.pendingBox.replaceChildren();
    }

    onPaste(event) {
      const pasted = Array.from((event.clipboardData && event.clipboardData.files) || []);
      const files = pasted.filter((f) => f.type.startsWith("image/"));
      if (files.length && this.pictures) {
        event.preventDefault();
        this.addFiles(files);
      }
    }

    onDrag(event, over) {
      if (!this.pictures) return;
      if (!event.dataTransfer || !Array.from(event.dataTransfer.types || []).includes("Files")) return;
      event.preventDefault();
      this.panel.classList.toggle("dragging", over);
    }

    onDrop(event) {
      this.panel.classList.remove("dragging");
      if (!this.pictures) return;
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      this.addFiles(event.dataTransfer.files);
    }
  }

  let widget = null;
  const ready = () => { if (!widget) widget = new Widget(); return widget; };
  const api = Object.freeze({
    version: VERSION,
    config: Object.freeze({ ...config }),
    open: () => ready().open(),
    close: () => ready().close(),
    toggle: () => ready().toggle(),
    startOver: () => ready().startOver(),
  });
  Object.defineProperty(window, "CRSWidget", { value: api, configurable: true });

  if (document.body) ready();
  else document.addEventListener("DOMContentLoaded", ready, { once: true });
})();
