// The playground page: draws the two chats from /api/state and acts through /api/*.
"use strict";

const ROLE_LABELS = { resident: "người dân", officer: "cán bộ", supervisor: "chỉ huy" };
const KIND_LABELS = {
  photo: "🖼 Ảnh", video: "🎬 Video", voice: "🎤 Ghi âm", audio: "🎵 Âm thanh",
  document: "📄 Tệp", sticker: "Nhãn dán", location: "📍 Vị trí", contact: "👤 Danh bạ",
};
const URL_PATTERN = /https?:\/\/[^\s<>"]+/g;

let state = null;
let version = "";
const panes = {};
const waitingAnswers = new Map(); // callback query id -> the button pressed
const seenAnswers = new Set();

class Pane {
  constructor(name) {
    this.name = name;
    this.el = document.getElementById(name);
    this.list = this.el.querySelector(".chat");
    this.select = this.el.querySelector(".as-select");
    this.input = this.el.querySelector(".composer input");
    this.replyTo = null;
    this.drawn = "";
    this.lastCount = -1;
    this.forceSeen = null;
    this.chosen = null;
    this.el.querySelector(".composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendText(this.input.value);
    });
    this.el.querySelector(".attach").addEventListener("click", () =>
      this.act("/api/photo", this.input.value.trim() ? { caption: this.takeInput() } : {}));
    this.el.querySelector(".locate").addEventListener("click", () => this.act("/api/location", {}));
    this.el.querySelector(".start").addEventListener("click", () => this.sendText("/start"));
    this.el.querySelector(".replying .cancel").addEventListener("click", () => this.setReply(null));
    this.el.querySelector(".pinned").addEventListener("click", (event) =>
      this.flash(Number(event.currentTarget.dataset.id)));
    this.select.addEventListener("change", () => {
      this.chosen = Number(this.select.value);
      this.setReply(null);
      this.forceSeen = null;
      this.drawn = "";
      render();
    });
  }

  takeInput() {
    const text = this.input.value.trim();
    this.input.value = "";
    return text;
  }

  async sendText(raw) {
    const text = raw.trim();
    if (!text) return;
    if (raw === this.input.value) this.input.value = "";
    const body = { text };
    if (this.replyTo !== null) body.reply_to = this.replyTo;
    this.setReply(null);
    await this.act("/api/send", body);
  }

  async act(path, extra) {
    const user = this.user();
    const chat = this.chat();
    if (!user || !chat) {
      toast("Chưa có ai để đóng vai trong khung này: thêm cán bộ vào config.toml.");
      return null;
    }
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: user.id, chat: chat.id, ...extra }),
      });
      const answer = await response.json();
      if (!response.ok) toast(answer.error || "Không gửi được");
      return response.ok ? answer : null;
    } catch (error) {
      toast("Không gửi được: sân thử đã dừng?");
      return null;
    }
  }

  setReply(message) {
    this.replyTo = message ? message.id : null;
    const bar = this.el.querySelector(".replying");
    bar.hidden = !message;
    if (message) {
      bar.querySelector(".what").textContent =
        `↩ Trả lời ${message.sender_name}: ${snippet(message)}`;
      this.input.focus();
    }
  }

  flash(id) {
    const row = this.list.querySelector(`.row[data-id="${id}"]`);
    if (!row) return;
    row.scrollIntoView({ block: "center", behavior: "smooth" });
    row.classList.add("flash");
    setTimeout(() => row.classList.remove("flash"), 1200);
  }
}

class ResidentPane extends Pane {
  people() { return state ? state.residents : []; }
  user() { return this.people().find((p) => p.id === this.chosen) || this.people()[0]; }
  chat() { const user = this.user(); return user ? user.chat : null; }
  isMine(message) { return !message.from_bot; }
  header() { return { title: state.bot.name, sub: "bot" }; }
}

class OfficersPane extends Pane {
  constructor(name) {
    super(name);
    this.groupSelect = document.getElementById("officers-group");
    this.groupId = null;
    this.groupSelect.addEventListener("change", () => {
      this.groupId = Number(this.groupSelect.value);
      this.chosen = null;
      this.setReply(null);
      this.drawn = "";
      render();
    });
  }
  group() {
    const groups = state ? state.groups : [];
    return groups.find((g) => g.id === this.groupId) || groups[0];
  }
  people() { const group = this.group(); return group ? group.members : []; }
  user() { return this.people().find((p) => p.id === this.chosen) || this.people()[0]; }
  chat() { const group = this.group(); return group ? group.chat : null; }
  isMine(message) { const user = this.user(); return !!user && message.sender === user.id; }
  header() {
    const group = this.group();
    return { title: group.title, sub: `${group.members.length + 1} thành viên · có bot Hòm thư` };
  }
}

function snippet(message) {
  const text = message.text || KIND_LABELS[message.kind] || "";
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function clock(seconds) {
  const date = new Date(seconds * 1000);
  return date.toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit" });
}

function appendLinkified(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    parent.append(text.slice(last, match.index));
    parent.append(link(match[0], match[0]));
    last = match.index + match[0].length;
  }
  parent.append(text.slice(last));
}

function link(href, label) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = label;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

function wrap(entity, piece) {
  const tags = {
    bold: "strong", italic: "em", underline: "u", strikethrough: "s", code: "code", pre: "pre",
  };
  if (tags[entity.type]) return document.createElement(tags[entity.type]);
  if (entity.type === "text_link") return link(entity.url, "");
  if (entity.type === "url") return link(piece, "");
  const span = document.createElement("span");
  if (entity.type === "spoiler") {
    span.className = "spoiler";
    span.addEventListener("click", () => span.classList.add("shown"));
  } else if (entity.type.endsWith("blockquote")) {
    span.className = "blockquote";
  }
  return span;
}

// Entity offsets count UTF-16 code units, which is what JavaScript strings index by.
function formatted(text, entities) {
  const out = document.createElement("div");
  out.className = "text";
  if (!entities || !entities.length) {
    appendLinkified(out, text);
    return out;
  }
  const cuts = new Set([0, text.length]);
  for (const e of entities) { cuts.add(e.offset); cuts.add(e.offset + e.length); }
  const points = [...cuts].filter((p) => p >= 0 && p <= text.length).sort((a, b) => a - b);
  for (let i = 0; i < points.length - 1; i += 1) {
    const [start, end] = [points[i], points[i + 1]];
    const piece = text.slice(start, end);
    const active = entities.filter((e) => e.offset <= start && e.offset + e.length >= end);
    if (!active.length) { appendLinkified(out, piece); continue; }
    let node = document.createTextNode(piece);
    for (const entity of active.reverse()) {
      const wrapper = wrap(entity, piece);
      wrapper.append(node);
      node = wrapper;
    }
    out.append(node);
  }
  return out;
}

function messageRow(pane, message, inGroup) {
  const mine = pane.isMine(message);
  const row = document.createElement("div");
  row.className = `row ${mine ? "me" : message.from_bot ? "bot" : "other"}`;
  row.dataset.id = message.id;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  if (inGroup && !mine) {
    const name = document.createElement("div");
    name.className = message.from_bot ? "name bot" : "name";
    name.textContent = message.sender_name;
    bubble.append(name);
  }
  if (message.reply_to) {
    const quote = document.createElement("div");
    quote.className = "quote";
    const who = document.createElement("b");
    who.textContent = message.reply_to.name;
    quote.append(who, message.reply_to.text.slice(0, 120));
    quote.addEventListener("click", () => pane.flash(message.reply_to.id));
    bubble.append(quote);
  }
  if (message.file && (message.kind === "photo" || message.kind === "sticker")) {
    const img = document.createElement("img");
    img.src = message.file.url;
    img.alt = KIND_LABELS.photo;
    if (message.file.width) { img.width = message.file.width; img.height = message.file.height; }
    bubble.append(img);
  } else if (message.file) {
    const file = document.createElement("a");
    file.className = "file";
    file.href = message.file.url;
    file.target = "_blank";
    file.textContent = `${KIND_LABELS[message.kind] || "📄 Tệp"} ${message.file.name || ""}`;
    bubble.append(file);
  }
  if (message.location) {
    const place = document.createElement("div");
    place.className = "loc";
    const { latitude, longitude } = message.location;
    place.textContent = `📍 Vị trí đã chia sẻ\n${latitude.toFixed(4)}, ${longitude.toFixed(4)}`;
    place.style.whiteSpace = "pre-line";
    bubble.append(place);
  }
  if (message.text) bubble.append(formatted(message.text, message.entities));
  const reply = document.createElement("button");
  reply.type = "button";
  reply.className = "reply-btn";
  reply.title = "Trả lời tin này";
  reply.textContent = "↩";
  reply.addEventListener("click", () => pane.setReply(message));
  const meta = document.createElement("span");
  meta.className = "meta";
  const marks = [message.pinned ? "📌" : "", message.silent ? "🔕" : "",
    message.edited ? "đã sửa" : "", clock(message.date), mine ? "✓✓" : ""];
  meta.textContent = marks.filter(Boolean).join(" ");
  bubble.append(reply, meta);
  row.append(bubble);
  if (message.buttons.length) row.append(inlineKeyboard(pane, message));
  return row;
}

function inlineKeyboard(pane, message) {
  const keyboard = document.createElement("div");
  keyboard.className = "ikb";
  for (const buttons of message.buttons) {
    const line = document.createElement("div");
    line.className = "ikb-row";
    for (const button of buttons) {
      if (button.url) {
        line.append(link(button.url, `${button.label} ↗`));
        continue;
      }
      const press = document.createElement("button");
      press.type = "button";
      press.textContent = button.label;
      press.addEventListener("click", async () => {
        press.classList.add("loading");
        const answer = await pane.act("/api/click", { message_id: message.id, data: button.data });
        if (answer) waitingAnswers.set(answer.query_id, press);
        showAnswers();
      });
      line.append(press);
    }
    keyboard.append(line);
  }
  return keyboard;
}

function replyKeyboard(pane, rows) {
  const box = pane.el.querySelector(".keyboard");
  box.replaceChildren();
  box.hidden = !rows || !rows.length;
  for (const labels of rows || []) {
    const line = document.createElement("div");
    line.className = "kb-row";
    for (const label of labels) {
      const key = document.createElement("button");
      key.type = "button";
      key.textContent = label;
      key.addEventListener("click", () => pane.sendText(label));
      line.append(key);
    }
    box.append(line);
  }
}

function fillSelect(select, people, chosen) {
  const wanted = people.map((p) => `${p.id}:${p.name}`).join("|");
  if (select.dataset.people !== wanted) {
    select.replaceChildren(...people.map((p) => {
      const option = document.createElement("option");
      option.value = p.id;
      option.textContent = p.role === "resident" ? p.name : `${p.name} (${ROLE_LABELS[p.role]})`;
      return option;
    }));
    select.dataset.people = wanted;
  }
  if (chosen) select.value = chosen.id;
}

function renderPane(pane) {
  const chat = pane.chat();
  const user = pane.user();
  fillSelect(pane.select, pane.people(), user);
  const head = pane.header();
  pane.el.querySelector(".pane-head .title").textContent = head.title;
  pane.el.querySelector(".pane-head .sub").textContent = head.sub;
  if (!chat) return;
  const key = JSON.stringify([chat, user && user.id]);
  if (key === pane.drawn) return;
  pane.drawn = key;
  const nearBottom = pane.list.scrollHeight - pane.list.scrollTop - pane.list.clientHeight < 80;
  const inGroup = pane instanceof OfficersPane;
  pane.list.replaceChildren(...chat.messages.map((m) => messageRow(pane, m, inGroup)));
  replyKeyboard(pane, chat.keyboard);
  pane.el.querySelector(".start").hidden = inGroup || chat.messages.length > 0;
  const pinned = chat.messages.find((m) => m.id === chat.pinned);
  const bar = pane.el.querySelector(".pinned");
  bar.hidden = !pinned;
  if (pinned) {
    bar.dataset.id = pinned.id;
    bar.replaceChildren(Object.assign(document.createElement("b"), { textContent: "📌 Tin ghim " }),
      snippet(pinned));
  }
  // Telegram opens a reply to a message that asks for one (force_reply), as the bot's prompts do.
  const prompts = chat.messages.filter((m) => m.force_reply);
  const newest = prompts.length ? prompts[prompts.length - 1] : null;
  if (pane.forceSeen !== null && newest && newest.id > pane.forceSeen) pane.setReply(newest);
  pane.forceSeen = newest ? newest.id : 0;
  if (pane.replyTo !== null && !chat.messages.some((m) => m.id === pane.replyTo)) {
    pane.setReply(null);
  }
  const grew = chat.messages.length > pane.lastCount;
  if (grew && pane.lastCount >= 0 && !pane.el.classList.contains("active")) {
    document.querySelector(`.tabs [data-tab="${pane.name}"]`).classList.add("unread");
  }
  if (grew || nearBottom) pane.list.scrollTop = pane.list.scrollHeight;
  pane.lastCount = chat.messages.length;
}

function render() {
  if (!state) return;
  const officers = panes.officers;
  const groupChoice = officers.el.querySelector(".group-choice");
  groupChoice.hidden = state.groups.length < 2;
  const groups = state.groups.map((g) => ({ id: g.id, name: g.title, role: "resident" }));
  fillSelect(officers.groupSelect, groups, officers.group());
  for (const pane of Object.values(panes)) renderPane(pane);
  showAnswers();
}

function showAnswers() {
  if (!state) return;
  for (const answer of state.answers) {
    const button = waitingAnswers.get(answer.query_id);
    if (!button || seenAnswers.has(answer.query_id)) continue;
    seenAnswers.add(answer.query_id);
    waitingAnswers.delete(answer.query_id);
    button.classList.remove("loading");
    if (!answer.text) continue;
    if (answer.alert) showAlert(answer.text);
    else toast(answer.text);
  }
}

let toastTimer = null;
function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 3500);
}

function showAlert(text) {
  const box = document.getElementById("alert");
  box.querySelector(".text").textContent = text;
  box.hidden = false;
}

async function poll() {
  const status = document.getElementById("status");
  for (;;) {
    try {
      const response = await fetch(`/api/state?v=${encodeURIComponent(version)}`);
      if (!response.ok) throw new Error(String(response.status));
      state = await response.json();
      version = state.version;
      status.hidden = true;
      render();
    } catch (error) {
      status.hidden = false;
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }
}

function showTab(name) {
  for (const button of document.querySelectorAll(".tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
    if (button.dataset.tab === name) button.classList.remove("unread");
  }
  for (const pane of Object.values(panes)) {
    pane.el.classList.toggle("active", pane.name === name);
  }
  panes[name].list.scrollTop = panes[name].list.scrollHeight;
}

document.addEventListener("DOMContentLoaded", () => {
  panes.resident = new ResidentPane("resident");
  panes.officers = new OfficersPane("officers");
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  document.querySelector("#alert button").addEventListener("click", () => {
    document.getElementById("alert").hidden = true;
  });
  document.getElementById("broadcast").addEventListener("click", sendMonth);
  poll();
});

// The month's awareness message, sent now to the demo residents who subscribed (📬).
async function sendMonth() {
  const button = document.getElementById("broadcast");
  button.disabled = true;
  try {
    const response = await fetch("/api/broadcast", { method: "POST" });
    const { sent } = await response.json();
    toast(sent ? `Đã gửi tin tháng này cho ${sent} người đăng ký.`
               : "Chưa có ai mới đăng ký nhận tin (bấm 📬 trong điện thoại trước).");
  } finally {
    button.disabled = false;
  }
}
