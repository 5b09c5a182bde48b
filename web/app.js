// The demo page: an anonymous chat against the API named in config.js (served by chatbot-local).
// Answers stream in over the WebSocket API when it can be used, else come whole from the HTTP post.
// Every message is rendered with textContent: nothing from the API or the user is ever parsed as HTML.
import config from "./config.js";
import { ApiError, ChatbotClient, StreamUnavailableError, newClientMessageId } from "./chatbot-client.js";

// sessionStorage only (never persistent storage, never cookies): the session token dies with the tab.
const STORAGE_KEY = "chatbot-demo.session";
const ROLES = new Set(["user", "assistant"]);

const ui = {
  main: document.querySelector("main"),
  list: document.getElementById("messages"),
  scroller: document.querySelector(".messages"),
  empty: document.getElementById("empty"),
  notice: document.getElementById("notice"),
  form: document.getElementById("composer"),
  input: document.getElementById("message"),
  send: document.getElementById("send"),
  remove: document.getElementById("delete"),
  info: document.getElementById("session-info"),
};
const defaultInfo = ui.info.textContent;

const client = new ChatbotClient(config.apiUrl);
let session = null; // {id, token}
let busy = false;
// Answers stream when the API has a WebSocket API (config.js says so); off for good once it cannot be used.
let streaming = config.streaming === true;
let waitUntil = 0; // while rate limited: when sending is allowed again (ms since the epoch)
let waitTimer = null;

// -- session storage ------------------------------------------------------------------------------
function readStoredSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
    if (typeof stored?.id === "string" && typeof stored?.token === "string") return stored;
  } catch {
    // unreadable: start afresh
  }
  sessionStorage.removeItem(STORAGE_KEY);
  return null;
}

function useSession(value) {
  if (session?.id !== value?.id) client.closeStream();
  session = value;
  client.token = value?.token ?? null;
  if (value) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(STORAGE_KEY);
  ui.info.textContent = value ? `Anonymous session ${value.id.slice(0, 8)} · kept in this tab only` : defaultInfo;
  updateControls();
}

async function startSession() {
  let answer;
  try {
    answer = await client.createAnonymousSession();
  } catch (error) {
    // The route answers 404, like an unknown route, when the API does not allow anonymous sessions.
    if (error instanceof ApiError && error.status === 404) throw new ApiError(404, { code: "anonymous_disabled" });
    throw error;
  }
  const { session: created, sessionToken } = answer;
  useSession({ id: created.session_id, token: sessionToken });
}

// -- rendering (text only) ------------------------------------------------------------------------
function clockTime(timestamp) {
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageItem(message, { pending = false } = {}) {
  const role = ROLES.has(message.role) ? message.role : "assistant";
  const item = document.createElement("li");
  item.className = `message message-${role}`;
  if (pending) item.classList.add("message-pending");
  const meta = document.createElement("span");
  meta.className = "meta";
  const time = clockTime(message.created_at);
  meta.textContent = (role === "user" ? "You" : "Assistant") + (time ? ` · ${time}` : "");
  const bubble = document.createElement("p");
  bubble.className = "bubble";
  bubble.textContent = message.content;
  item.append(meta, bubble);
  return item;
}

function show(item) {
  ui.list.append(item);
  ui.empty.hidden = true;
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
  return item;
}

function clearConversation() {
  ui.list.replaceChildren();
  ui.empty.hidden = false;
}

function notify(text, kind = "info") {
  ui.notice.textContent = text;
  ui.notice.dataset.kind = kind;
  ui.notice.setAttribute("role", kind === "error" ? "alert" : "status");
  ui.notice.hidden = false;
}

function clearNotice() {
  ui.notice.hidden = true;
  ui.notice.textContent = "";
  delete ui.notice.dataset.kind;
  delete ui.notice.dataset.retryAfter;
}

function updateControls() {
  const waiting = waitUntil > Date.now();
  ui.send.disabled = busy || waiting || !ui.input.value.trim();
  ui.remove.disabled = busy || !session;
  ui.main.setAttribute("aria-busy", String(busy));
}

// -- errors ---------------------------------------------------------------------------------------
function rateLimited(seconds) {
  clearInterval(waitTimer);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    notify("Too many requests. Wait a moment, then try again.", "warning");
    return;
  }
  waitUntil = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((waitUntil - Date.now()) / 1000);
    if (left > 0) {
      notify(`Too many messages. Try again in ${left} s.`, "warning");
      ui.notice.dataset.retryAfter = String(seconds);
    } else {
      clearInterval(waitTimer);
      waitUntil = 0;
      notify("You can send messages again.", "info");
    }
    updateControls();
  };
  tick();
  waitTimer = setInterval(tick, 1000);
}

function report(error) {
  if (!(error instanceof ApiError)) {
    console.error(error);
    notify("Something went wrong in this page. Reload it and try again.", "error");
    return;
  }
  if (error.code === "anonymous_disabled") {
    notify("This API does not allow anonymous chat (ALLOW_ANONYMOUS is off).", "error");
    return;
  }
  switch (error.status) {
    case 0:
      notify(`Cannot reach the chat API at ${config.apiUrl}. Is chatbot-local running?`, "error");
      break;
    case 403:
    case 404:
      notify("Your session has ended. Send a message to start a new one.", "info");
      break;
    case 409:
      notify("This conversation is full. Delete it to start a new one.", "warning");
      break;
    case 413:
    case 422:
      notify("The message was not accepted: it is too long or contains characters that are not allowed.", "warning");
      break;
    case 429:
      rateLimited(error.retryAfterSeconds);
      break;
    case 502:
    case 504:
      notify("The assistant did not answer. Try again in a moment.", "error");
      break;
    default:
      notify(`Something went wrong (HTTP ${error.status})${error.requestId ? `, request ${error.requestId}` : ""}.`, "error");
  }
}

// -- actions --------------------------------------------------------------------------------------
/** The stored turn: streamed (each piece of text to `onText` as it comes), else by the HTTP post. */
async function answer(text, onText) {
  const clientMessageId = newClientMessageId();
  if (streaming) {
    try {
      const stream = client.streamMessage(session.id, text, clientMessageId);
      for await (const piece of stream) onText(piece);
      return await stream.turn;
    } catch (error) {
      if (!(error instanceof StreamUnavailableError)) throw error;
      if (error.permanent) streaming = false;
      // The same client_message_id: if the streamed turn was stored after all, this returns it.
    }
  }
  return client.sendMessage(session.id, text, clientMessageId);
}

async function sendMessage(text) {
  busy = true;
  ui.input.value = "";
  clearNotice();
  updateControls();
  let pending = [];
  let streamed = "";
  const showPending = () => {
    streamed = "";
    pending = [
      show(messageItem({ role: "user", content: text, created_at: new Date() }, { pending: true })),
      show(messageItem({ role: "assistant", content: "Thinking…" }, { pending: true })),
    ];
  };
  // The answer so far, as text, in the pending bubble.
  const showStreamed = (piece) => {
    streamed += piece;
    pending[1].classList.add("message-streaming");
    pending[1].querySelector(".bubble").textContent = streamed;
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
  };
  try {
    if (!session) await startSession();
    showPending();
    let turn;
    try {
      turn = await answer(text, showStreamed);
    } catch (error) {
      if (!(error instanceof ApiError && error.sessionEnded)) throw error;
      // The session expired (or was erased elsewhere): continue in a new one.
      for (const item of pending) item.remove();
      useSession(null);
      clearConversation();
      await startSession();
      showPending();
      turn = await answer(text, showStreamed);
      notify("Your previous session had ended, so a new one was started.", "info");
    }
    // The stored versions replace the pending ones (personal data may have been masked).
    pending[0].replaceWith(messageItem(turn.user_message));
    pending[1].replaceWith(messageItem(turn.assistant_message));
    pending = [];
  } catch (error) {
    for (const item of pending) item.remove();
    if (!ui.input.value) ui.input.value = text; // nothing typed is lost
    if (!ui.list.childElementCount) ui.empty.hidden = false;
    if (error instanceof ApiError && error.sessionEnded) useSession(null);
    report(error);
  } finally {
    busy = false;
    updateControls();
    ui.input.focus();
  }
}

async function deleteConversation() {
  if (!session) return;
  busy = true;
  clearNotice();
  updateControls();
  try {
    await client.deleteSession(session.id);
  } catch (error) {
    if (!(error instanceof ApiError && error.sessionEnded)) {
      report(error);
      return;
    }
  } finally {
    busy = false;
    updateControls();
  }
  useSession(null);
  clearConversation();
  notify("Conversation deleted. Its messages were erased from the server.", "info");
}

async function restoreConversation() {
  const stored = readStoredSession();
  if (!stored) return;
  useSession(stored);
  try {
    for (const message of await client.listMessages(stored.id)) show(messageItem(message));
  } catch (error) {
    if (error instanceof ApiError && error.sessionEnded) {
      useSession(null);
      notify("Your previous session has ended. Send a message to start a new one.", "info");
    } else {
      report(error);
    }
  }
}

// -- wiring ---------------------------------------------------------------------------------------
ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (text && !busy && waitUntil <= Date.now()) sendMessage(text);
});
ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.input.addEventListener("input", updateControls);
ui.remove.addEventListener("click", deleteConversation);

busy = true;
updateControls();
try {
  await restoreConversation();
} finally {
  busy = false;
  updateControls();
  ui.main.dataset.ready = "true";
}
