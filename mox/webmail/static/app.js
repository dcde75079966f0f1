// mox webmail: a plain ES module, no framework, no build step. All text from messages is put
// into the page with textContent (never innerHTML); HTML mail is shown in a sandboxed iframe
// whose document the server sanitised and serves with its own CSP.

const csrf = document.querySelector('meta[name="csrf"]').content;
const $ = (id) => document.getElementById(id);

const state = {
  account: null, // {login, full_name, addresses, mailboxes}
  mailbox: null, // current mailbox id
  offset: 0,
  limit: 50,
  total: 0,
  query: "",
  threads: false,
  rows: [],
  selected: -1, // index in rows
  message: null, // the open message (api/message result)
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

function status(text) {
  $("status").textContent = text;
}

async function api(path, { method = "GET", json = null, form = null } = {}) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["x-mox-csrf"] = csrf;
  if (json !== null) {
    opts.headers["content-type"] = "application/json";
    opts.body = JSON.stringify(json);
  } else if (form !== null) {
    opts.body = form;
  }
  const resp = await fetch("/webmail/api/" + path, opts);
  if (resp.status === 401) {
    window.location.assign("/webmail/");
    throw new Error("not logged in");
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = { error: "bad response from server (" + resp.status + ")" };
  }
  if (!resp.ok) throw new Error(body.error || "error " + resp.status);
  return body;
}

function addrText(list) {
  return (list || []).map((a) => (a.name ? `${a.name} <${a.address}>` : a.address)).join(", ");
}

function shortDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) {
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return d.toLocaleDateString();
}

function mailboxBySpecial(use, fallback) {
  const mbs = state.account.mailboxes;
  return mbs.find((m) => m.special_use === use) || mbs.find((m) => m.name === fallback);
}

// --- mailboxes ---

async function loadMailboxes() {
  state.account = await api("mailboxes");
  $("whoami").textContent = state.account.login;
  if (state.mailbox === null || !state.account.mailboxes.some((m) => m.id === state.mailbox)) {
    const inbox = state.account.mailboxes.find((m) => m.name === "Inbox");
    state.mailbox = inbox ? inbox.id : state.account.mailboxes[0].id;
  }
  renderMailboxes();
}

function renderMailboxes() {
  const nav = $("mailboxes");
  nav.replaceChildren();
  for (const mb of state.account.mailboxes) {
    const depth = mb.name.split("/").length - 1;
    const label = mb.name.split("/").pop();
    const a = el(
      "a",
      {
        href: "#",
        "data-mailbox": String(mb.id),
        "data-name": mb.name,
        class: mb.id === state.mailbox ? "current" : "",
        onclick: (ev) => {
          ev.preventDefault();
          selectMailbox(mb.id);
        },
        ondragover: (ev) => {
          ev.preventDefault();
          ev.currentTarget.classList.add("drop");
        },
        ondragleave: (ev) => ev.currentTarget.classList.remove("drop"),
        ondrop: (ev) => {
          ev.preventDefault();
          ev.currentTarget.classList.remove("drop");
          const uid = Number(ev.dataTransfer.getData("text/x-mox-uid"));
          if (uid) moveMessages([uid], mb.id);
        },
      },
      el("span", {}, "\u00a0".repeat(depth * 3) + label),
      el("span", { class: "count" }, mb.unseen ? String(mb.unseen) : ""),
    );
    nav.append(a);
  }
}

async function selectMailbox(id) {
  viewSeq++; // a message still loading belongs to the old mailbox
  state.mailbox = id;
  state.offset = 0;
  state.selected = -1;
  state.query = "";
  $("search").value = "";
  renderMailboxes();
  clearView();
  await loadMessages();
}

// --- message list ---

let listSeq = 0;
let viewSeq = 0;
let latestLoad = Promise.resolve();

// Loads the list; resolves once the list shown is current (a load superseded by a newer one
// waits for that one, so callers never act on a stale list).
function loadMessages(opts = {}) {
  const seq = ++listSeq;
  const p = (async () => {
    await loadMessagesOnce(seq, opts);
    if (seq !== listSeq) await latestLoad;
  })();
  latestLoad = p;
  return p;
}

async function loadMessagesOnce(seq, { keepSelection = false } = {}) {
  const params = new URLSearchParams({
    mailbox: String(state.mailbox),
    offset: String(state.offset),
    limit: String(state.limit),
  });
  if (state.query) params.set("q", state.query);
  if (state.threads) params.set("threads", "1");
  const res = await api("messages?" + params.toString());
  if (seq !== listSeq) return; // a newer listing is on its way
  // The selection as it is now (the user may have moved on while we waited).
  const prev = keepSelection && state.selected >= 0 ? state.rows[state.selected] : null;
  state.rows = res.messages;
  state.total = res.total;
  state.selected = prev ? state.rows.findIndex((r) => r.uid === prev.uid) : -1;
  renderMessages();
}

function renderMessages() {
  const tbody = $("messages").querySelector("tbody");
  tbody.replaceChildren();
  state.rows.forEach((r, i) => {
    const classes = [];
    if (!r.flags.includes("\\Seen")) classes.push("unread");
    if (i === state.selected) classes.push("selected");
    if (r.depth) classes.push("depth1");
    const mark = (r.flags.includes("\\Flagged") ? "\u2691" : "") + (r.attachments ? "\u{1F4CE}" : "");
    const tr = el(
      "tr",
      {
        class: classes.join(" "),
        "data-uid": String(r.uid),
        draggable: "true",
        onclick: () => openMessage(i),
        ondragstart: (ev) => ev.dataTransfer.setData("text/x-mox-uid", String(r.uid)),
      },
      el("td", { class: "mark" }, mark),
      el("td", { class: "from" }, addrText(r.from) || "(no sender)"),
      el("td", { class: "subject" }, r.subject || "(no subject)"),
      el("td", { class: "date" }, shortDate(r.date || r.received)),
    );
    tbody.append(tr);
  });
  const unit = state.threads ? "threads" : "messages";
  const end = Math.min(state.offset + state.limit, state.total);
  $("page-info").textContent = state.total
    ? `${state.offset + 1}-${end} of ${state.total} ${unit}${state.query ? ` matching "${state.query}"` : ""}`
    : state.query
      ? `no messages match "${state.query}"`
      : "no messages";
  $("prev-page").disabled = state.offset === 0;
  $("next-page").disabled = end >= state.total;
}

// --- reading ---

function clearView() {
  state.message = null;
  $("view").replaceChildren(el("p", { class: "empty" }, "No message selected."));
}

function linkify(text) {
  // Plain text shown as text; only http(s) URLs become links, opened without referrer.
  const frag = document.createDocumentFragment();
  const re = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    frag.append(document.createTextNode(text.slice(last, m.index)));
    frag.append(el("a", { href: m[0], target: "_blank", rel: "noopener noreferrer" }, m[0]));
    last = m.index + m[0].length;
  }
  frag.append(document.createTextNode(text.slice(last)));
  return frag;
}

async function openMessage(i) {
  if (i < 0 || i >= state.rows.length) return;
  state.selected = i;
  renderMessages();
  const row = state.rows[i];
  const seq = ++viewSeq;
  let msg;
  try {
    msg = await api(`message?mailbox=${row.mailbox}&uid=${row.uid}`);
  } catch (e) {
    // Moved or deleted meanwhile (by another client or a click just before): show the list
    // as it is now.
    if (seq === viewSeq) {
      status(e.message);
      clearView();
      await loadMessages();
    }
    return;
  }
  if (seq !== viewSeq) return; // the user opened another message meanwhile
  state.message = msg;
  renderMessage(msg, false, false);
  if (!msg.flags.includes("\\Seen")) {
    await setFlags([row.uid], ["\\Seen"], []);
  }
}

function renderMessage(msg, remote, preferText) {
  const h = msg.headers;
  const base = `/webmail/msg/${msg.mailbox}/${msg.uid}`;
  const flagged = msg.flags.includes("\\Flagged");
  const inJunk = mailboxBySpecial("\\Junk", "Junk")?.id === msg.mailbox;
  const inDrafts = mailboxBySpecial("\\Drafts", "Drafts")?.id === msg.mailbox;
  const toolbar = el(
    "div",
    { class: "toolbar" },
    inDrafts ? el("button", { type: "button", id: "edit-draft", onclick: editDraft }, "Edit draft") : null,
    el("button", { type: "button", id: "reply", onclick: () => reply(false) }, "Reply"),
    el("button", { type: "button", id: "reply-all", onclick: () => reply(true) }, "Reply all"),
    el("button", { type: "button", id: "forward", onclick: forward }, "Forward"),
    el("button", { type: "button", id: "delete", onclick: deleteCurrent }, "Delete"),
    inJunk
      ? el("button", { type: "button", id: "notjunk", onclick: () => markJunk(false) }, "Not junk")
      : el("button", { type: "button", id: "junk", onclick: () => markJunk(true) }, "Junk"),
    el("button", { type: "button", id: "unread", onclick: markUnread }, "Mark unread"),
    el("button", { type: "button", id: "flag", onclick: toggleFlag }, flagged ? "Unflag" : "Flag"),
    moveSelect(msg),
    el("a", { href: base + "/raw", target: "_blank", rel: "noopener" }, "Raw"),
  );
  const headers = el(
    "div",
    { class: "headers" },
    el("h2", { id: "view-subject" }, h.subject || "(no subject)"),
    el("div", {}, "From: " + addrText(h.from)),
    el("div", {}, "To: " + addrText(h.to)),
    h.cc.length ? el("div", {}, "Cc: " + addrText(h.cc)) : null,
    el("div", {}, "Date: " + new Date(h.date || msg.received).toLocaleString()),
  );
  const parts = [toolbar, headers];
  if (msg.html && !preferText) {
    const bar = el("div", { class: "notice" });
    if (!remote) {
      bar.append(
        "Remote images are blocked. ",
        el(
          "button",
          { type: "button", id: "show-remote", onclick: () => renderMessage(msg, true, false) },
          "Show remote images",
        ),
        " ",
      );
    }
    bar.append(
      el("button", { type: "button", id: "show-text", onclick: () => renderMessage(msg, remote, true) }, "Show text"),
    );
    parts.push(bar);
    // No allow-scripts, no allow-same-origin: the document runs nothing and has an opaque origin.
    parts.push(
      el("iframe", {
        class: "html",
        id: "html-frame",
        sandbox: "allow-popups allow-popups-to-escape-sandbox",
        referrerpolicy: "no-referrer",
        src: base + "/html" + (remote ? "?remote=1" : ""),
        title: "message",
      }),
    );
  } else {
    if (msg.html) {
      parts.push(
        el("div", { class: "notice" }, el("button", { type: "button", id: "show-html", onclick: () => renderMessage(msg, false, false) }, "Show HTML")),
      );
    }
    parts.push(el("pre", { class: "text", id: "view-text" }, linkify(msg.text)));
  }
  if (msg.attachments.length) {
    const ul = el("ul", { class: "attachments", id: "attachments" });
    for (const a of msg.attachments) {
      ul.append(
        el(
          "li",
          {},
          el(
            "a",
            { href: `${base}/part/${encodeURIComponent(a.part)}`, download: a.filename || "attachment" },
            a.filename || `part ${a.part}`,
          ),
          ` (${a.content_type}, ${a.size} bytes)`,
        ),
      );
    }
    parts.push(el("div", {}, "Attachments:", ul));
  }
  $("view").replaceChildren(...parts);
}

function moveSelect(msg) {
  const sel = el("select", { id: "move-to", "aria-label": "Move to" }, el("option", { value: "" }, "Move to..."));
  for (const mb of state.account.mailboxes) {
    if (mb.id !== msg.mailbox) sel.append(el("option", { value: String(mb.id) }, mb.name));
  }
  sel.addEventListener("change", () => {
    if (sel.value) moveMessages([msg.uid], Number(sel.value));
  });
  return sel;
}

// --- changing ---

async function setFlags(uids, add, remove) {
  await api("flags", { method: "POST", json: { mailbox: state.mailbox, uids, add, remove } });
  for (const r of state.rows) {
    if (uids.includes(r.uid)) r.flags = r.flags.filter((f) => !remove.includes(f)).concat(add.filter((f) => !r.flags.includes(f)));
  }
  if (state.message && uids.includes(state.message.uid)) {
    const m = state.message;
    m.flags = m.flags.filter((f) => !remove.includes(f)).concat(add.filter((f) => !m.flags.includes(f)));
  }
  renderMessages();
  await loadMailboxes();
}

async function afterRemoval() {
  const next = state.selected;
  const mailbox = state.mailbox;
  clearView();
  await loadMessages();
  await loadMailboxes();
  if (state.mailbox === mailbox && state.rows.length) {
    await openMessage(Math.min(next, state.rows.length - 1));
  }
}

async function moveMessages(uids, to) {
  await api("move", { method: "POST", json: { mailbox: state.mailbox, uids, to } });
  status("moved");
  await afterRemoval();
}

async function deleteCurrent() {
  if (!state.message) return;
  const res = await api("delete", { method: "POST", json: { mailbox: state.mailbox, uids: [state.message.uid] } });
  status(res.expunged ? "deleted" : "moved to Trash");
  await afterRemoval();
}

async function markJunk(junk) {
  if (!state.message) return;
  const res = await api("junk", { method: "POST", json: { mailbox: state.mailbox, uids: [state.message.uid], junk } });
  status(`moved to ${res.mailbox}`);
  await afterRemoval();
}

async function markUnread() {
  if (state.message) await setFlags([state.message.uid], [], ["\\Seen"]);
}

async function toggleFlag() {
  const m = state.message;
  if (!m) return;
  if (m.flags.includes("\\Flagged")) await setFlags([m.uid], [], ["\\Flagged"]);
  else await setFlags([m.uid], ["\\Flagged"], []);
  renderMessage(m, false, false);
}

// --- compose ---

function fromOptions(preferred) {
  const sel = $("compose-from");
  sel.replaceChildren();
  const name = state.account.full_name;
  for (const addr of state.account.addresses) {
    const text = name ? `${name} <${addr}>` : addr;
    const opt = el("option", { value: text }, text);
    if (preferred && addr.toLowerCase() === preferred.toLowerCase()) opt.selected = true;
    sel.append(opt);
  }
}

function openCompose({ title = "New message", to = "", cc = "", bcc = "", subject = "", text = "", inReplyTo = "", references = "", replyTo = "", fwd = "", from = "", draftUid = "" } = {}) {
  fromOptions(from || state.account.login);
  $("compose-title").textContent = title;
  $("compose-to").value = to;
  $("compose-cc").value = cc;
  $("compose-bcc").value = bcc;
  $("compose-subject").value = subject;
  $("compose-text").value = text;
  $("compose-files").value = "";
  $("compose-in-reply-to").value = inReplyTo;
  $("compose-references").value = references;
  $("compose-reply-to-message").value = replyTo;
  $("compose-forward-attachments").value = fwd;
  $("compose-fwd").textContent = fwd ? "The original attachments are included." : "";
  $("compose-draft-uid").value = draftUid;
  $("compose-error").textContent = "";
  $("compose").showModal();
  (to ? $("compose-text") : $("compose-to")).focus();
  if (to) $("compose-text").setSelectionRange(0, 0);
}

function quote(msg) {
  const who = addrText(msg.headers.from);
  const when = msg.headers.date ? new Date(msg.headers.date).toLocaleString() : "";
  const lines = (msg.text || "").replace(/\n$/, "").split("\n").map((l) => "> " + l);
  return `\n\nOn ${when}, ${who} wrote:\n${lines.join("\n")}\n`;
}

function ownAddress(a) {
  return state.account.addresses.some((x) => x.toLowerCase() === a.address.toLowerCase());
}

function reply(all) {
  const m = state.message;
  if (!m) return;
  const h = m.headers;
  const target = h.reply_to.length ? h.reply_to : h.from;
  let cc = [];
  if (all) {
    cc = h.to.concat(h.cc).filter((a) => !ownAddress(a) && !target.some((t) => t.address === a.address));
  }
  const mine = h.to.concat(h.cc).find(ownAddress);
  const subject = /^re:/i.test(h.subject) ? h.subject : "Re: " + h.subject;
  openCompose({
    title: all ? "Reply all" : "Reply",
    to: addrText(target),
    cc: addrText(cc),
    subject,
    text: quote(m),
    inReplyTo: h.message_id,
    references: h.references.concat(h.message_id ? [h.message_id] : []).join(" "),
    replyTo: `${m.mailbox}:${m.uid}`,
    from: mine ? mine.address : "",
  });
}

function forward() {
  const m = state.message;
  if (!m) return;
  const h = m.headers;
  const subject = /^fwd?:/i.test(h.subject) ? h.subject : "Fwd: " + h.subject;
  const text =
    "\n\n---------- Forwarded message ----------\n" +
    `From: ${addrText(h.from)}\nDate: ${h.date}\nSubject: ${h.subject}\nTo: ${addrText(h.to)}\n\n` +
    (m.text || "");
  openCompose({ title: "Forward", subject, text, fwd: m.attachments.length ? `${m.mailbox}:${m.uid}` : "" });
}

function editDraft() {
  const m = state.message;
  if (!m) return;
  const h = m.headers;
  openCompose({
    title: "Draft",
    to: addrText(h.to),
    cc: addrText(h.cc),
    bcc: addrText(h.bcc),
    subject: h.subject,
    text: m.text.replace(/\n$/, ""), // the stored text/plain part ends with a line break
    inReplyTo: h.in_reply_to,
    references: h.references.join(" "),
    fwd: m.attachments.length ? `${m.mailbox}:${m.uid}` : "",
    from: h.from.length ? h.from[0].address : "",
    draftUid: String(m.uid),
  });
}

async function submitCompose(path) {
  const form = new FormData($("compose-form"));
  form.append("csrf", csrf);
  $("compose-error").textContent = "";
  try {
    const res = await api(path, { method: "POST", form });
    if (path === "draft") {
      $("compose-draft-uid").value = String(res.uid);
      // The saved draft holds the attachments taken along so far; the old one is gone.
      if ($("compose-forward-attachments").value || $("compose-files").files.length) {
        $("compose-forward-attachments").value = `${res.mailbox}:${res.uid}`;
        $("compose-fwd").textContent = "The attachments saved with the draft are included.";
      }
      $("compose-files").value = "";
      status("draft saved");
    } else {
      $("compose").close();
      status("message sent");
    }
    await loadMailboxes();
    await loadMessages({ keepSelection: true });
  } catch (e) {
    $("compose-error").textContent = e.message;
  }
}

// --- search, paging, keys, live updates ---

function setup() {
  $("search-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    state.query = $("search").value.trim();
    state.offset = 0;
    state.selected = -1;
    clearView();
    await loadMessages();
  });
  $("threads").addEventListener("change", async () => {
    state.threads = $("threads").checked;
    state.offset = 0;
    state.selected = -1;
    await loadMessages();
  });
  $("prev-page").addEventListener("click", async () => {
    state.offset = Math.max(0, state.offset - state.limit);
    state.selected = -1;
    await loadMessages();
  });
  $("next-page").addEventListener("click", async () => {
    state.offset += state.limit;
    state.selected = -1;
    await loadMessages();
  });
  $("compose-button").addEventListener("click", () => openCompose());
  $("compose-send").addEventListener("click", () => submitCompose("send"));
  $("compose-save").addEventListener("click", () => submitCompose("draft"));
  $("compose-cancel").addEventListener("click", () => $("compose").close());

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if ($("compose").open || (t && ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) {
      if (ev.key === "Escape" && t && t.id === "search") t.blur();
      return;
    }
    const keys = {
      j: () => openMessage(state.selected + 1),
      ArrowDown: () => openMessage(state.selected + 1),
      k: () => openMessage(state.selected - 1),
      ArrowUp: () => openMessage(state.selected - 1),
      r: () => reply(false),
      a: () => reply(true),
      f: () => forward(),
      c: () => openCompose(),
      Delete: () => deleteCurrent(),
      "/": () => $("search").focus(),
      u: () => markUnread(),
    };
    const fn = keys[ev.key];
    if (fn) {
      ev.preventDefault();
      Promise.resolve(fn()).catch((e) => status("error: " + e.message));
    }
  });

  const events = new EventSource("/webmail/api/events");
  events.addEventListener("hello", () => status("live"));
  events.addEventListener("change", async (ev) => {
    const change = JSON.parse(ev.data);
    await loadMailboxes();
    if (change.mailboxes.includes(state.mailbox)) await loadMessages({ keepSelection: true });
  });
  events.addEventListener("error", () => status("reconnecting..."));
}

async function main() {
  setup();
  await loadMailboxes();
  await loadMessages();
  document.body.dataset.ready = "1";
}

main().catch((e) => status("error: " + e.message));
