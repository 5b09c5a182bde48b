// A small client for the chatbot HTTP API (docs/contract.md section 3) and its streaming WebSocket API:
// no dependencies, no build step. Works in browsers and in Node 18+ (global fetch; streaming needs a global
// WebSocket: Node 22+, or Node 20 with --experimental-websocket). Copy it into your front end as it is.
//
//   const client = new ChatbotClient("https://api.example.com");
//   const { session, sessionToken } = await client.createAnonymousSession();
//   client.token = sessionToken;            // or an OIDC access token for signed-in users
//   const turn = await client.sendMessage(session.session_id, "Hello!");
//   turn.assistant_message.content          // plain text: render it with textContent, never as HTML
//
//   const stream = client.streamMessage(session.session_id, "Hello!");
//   for await (const text of stream) bubble.textContent += text;   // the answer as the model writes it
//   const streamed = await stream.turn;     // the stored turn, as sendMessage returns it

/** An answer other than 2xx, or no answer at all (status 0: network error or CORS refusal). */
export class ApiError extends Error {
  constructor(status, { code = "", message = "", requestId = "", retryAfterSeconds = null } = {}) {
    super(message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** The session is gone: expired, deleted, or its token is no longer valid. Start a new one. */
  get sessionEnded() {
    return this.status === 403 || this.status === 404;
  }
}

/**
 * Streaming cannot be used here (no WebSocket, no stream-ticket route, the connection failed or closed
 * before the answer was complete): send the same message with sendMessage and the same client_message_id,
 * which returns the answer if it was stored meanwhile. `permanent`: don't try streaming again.
 */
export class StreamUnavailableError extends Error {
  constructor(message, { permanent = false, cause = undefined } = {}) {
    super(message, { cause });
    this.name = "StreamUnavailableError";
    this.permanent = permanent;
  }
}

// The HTTP status of each error code, so that an `error` frame is handled like the same HTTP answer.
const STATUS_OF_CODE = {
  bad_request: 400,
  forbidden: 403,
  not_found: 404,
  session_full: 409,
  too_many_sessions: 409,
  idempotency_conflict: 409,
  busy: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_error: 422,
  content_blocked: 422,
  rate_limited: 429,
  quota_exceeded: 429,
  model_error: 502,
  service_unavailable: 503,
  model_timeout: 504,
};

/** One streamed turn: iterate it for the answer's text as it comes; `turn` resolves with the stored turn. */
export class MessageStream {
  #texts = [];
  #finished = false;
  #failure = null;
  #wake = null;

  constructor() {
    this.turn = new Promise((resolve, reject) => {
      this.resolveTurn = resolve;
      this.rejectTurn = reject;
    });
    this.turn.catch(() => {}); // a caller that only iterates still sees the error there
  }

  push(text) {
    this.#texts.push(text);
    this.#notify();
  }

  finish(turn) {
    this.#finished = true;
    this.resolveTurn(turn);
    this.#notify();
  }

  fail(error) {
    if (this.#finished || this.#failure) return;
    this.#failure = error;
    this.rejectTurn(error);
    this.#notify();
  }

  #notify() {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.#texts.length) yield this.#texts.shift();
      else if (this.#failure) throw this.#failure;
      else if (this.#finished) return;
      else await new Promise((resolve) => (this.#wake = resolve));
    }
  }
}

/** A UUIDv4 from the platform's CSPRNG (crypto.randomUUID needs a secure context; this does not). */
export function newClientMessageId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class ChatbotClient {
  /**
   * @param {string} apiUrl  the API's base URL, without a trailing slash
   * @param {{token?: string|null, timeoutMs?: number}} options
   *   token: a session token (anonymous) or an OIDC access token, sent as `Authorization: Bearer`
   */
  constructor(apiUrl, { token = null, timeoutMs = 35000 } = {}) {
    this.apiUrl = apiUrl.replace(/\/+$/, "");
    this.token = token;
    this.timeoutMs = timeoutMs;
  }

  /** POST /v1/anonymous-sessions: no credentials; keep both the session and its token. */
  async createAnonymousSession() {
    const { session_token: sessionToken, ...session } = await this.#request("POST", "/v1/anonymous-sessions", {
      anonymous: true,
    });
    return { session, sessionToken };
  }

  /** POST /v1/sessions: a new session of the signed-in (OIDC) user. */
  createSession() {
    return this.#request("POST", "/v1/sessions");
  }

  /** GET /v1/sessions: the caller's live sessions, oldest first (follows next_cursor page by page). */
  async listSessions() {
    const sessions = [];
    let cursor = null;
    do {
      const query = new URLSearchParams({ limit: "100" });
      if (cursor) query.set("cursor", cursor);
      const page = await this.#request("GET", `/v1/sessions?${query}`);
      sessions.push(...page.sessions);
      cursor = page.next_cursor;
    } while (cursor);
    return sessions;
  }

  /**
   * POST /v1/sessions/{id}/messages. Retrying with the same clientMessageId returns the first answer
   * again instead of asking the model twice, so a retry after a network error is safe.
   */
  sendMessage(sessionId, content, clientMessageId = newClientMessageId()) {
    return this.#request("POST", `/v1/sessions/${encodeURIComponent(sessionId)}/messages`, {
      body: { content, client_message_id: clientMessageId },
    });
  }

  /** Every message of a session, oldest first (follows next_cursor page by page). */
  async listMessages(sessionId) {
    const messages = [];
    let cursor = null;
    do {
      const query = new URLSearchParams({ limit: "100" });
      if (cursor) query.set("cursor", cursor);
      const page = await this.#request("GET", `/v1/sessions/${encodeURIComponent(sessionId)}/messages?${query}`);
      messages.push(...page.messages);
      cursor = page.next_cursor;
    } while (cursor);
    return messages;
  }

  /** DELETE /v1/sessions/{id}: the session and all its messages are erased. */
  async deleteSession(sessionId) {
    this.closeStream();
    await this.#request("DELETE", `/v1/sessions/${encodeURIComponent(sessionId)}`);
  }

  /** POST /v1/sessions/{id}/stream-tickets: `{ticket, expires_at, url}`, single use, valid for seconds. */
  createStreamTicket(sessionId) {
    return this.#request("POST", `/v1/sessions/${encodeURIComponent(sessionId)}/stream-tickets`);
  }

  /**
   * Send a message over the WebSocket API and stream the answer: iterate the result for the answer's
   * text as the model writes it; `await result.turn` for the stored turn (as sendMessage returns it).
   * An `error` frame rejects with an ApiError (status from its code, as the same HTTP answer would have);
   * StreamUnavailableError means: send it with sendMessage instead, with the same clientMessageId.
   * The connection stays open for the next message; once it has closed (ticket bound to an expiring
   * credential, API Gateway's 2-hour limit, idle timeout) the next message gets a new ticket.
   */
  streamMessage(sessionId, content, clientMessageId = newClientMessageId()) {
    const stream = new MessageStream();
    const frame = { action: "sendMessage", content, client_message_id: clientMessageId };
    this.#streamTurn(sessionId, frame, stream).catch((error) => stream.fail(error));
    return stream;
  }

  /** Close the open stream connection, if any (a new one opens with the next streamed message). */
  closeStream() {
    const current = this.#stream;
    this.#stream = null;
    current?.socket.close(1000);
  }

  #stream = null; // {sessionId, socket, busy}

  async #streamTurn(sessionId, frame, stream) {
    if (typeof globalThis.WebSocket !== "function") {
      throw new StreamUnavailableError("this platform has no WebSocket", { permanent: true });
    }
    const connection = await this.#openStream(sessionId);
    if (connection.busy) throw new ApiError(409, { code: "busy", message: "a message is being answered" });
    connection.busy = true;
    try {
      await this.#runTurn(connection.socket, frame, stream);
    } finally {
      connection.busy = false;
    }
  }

  async #openStream(sessionId) {
    const current = this.#stream;
    if (current?.sessionId === sessionId && current.socket.readyState === WebSocket.OPEN) return current;
    this.closeStream();
    let ticket;
    try {
      ticket = await this.createStreamTicket(sessionId);
    } catch (error) {
      // No such route here (API Gateway's own 404, without a code), or the API is unreachable or failing.
      const noRoute = error instanceof ApiError && error.status === 404 && !error.code;
      if (error instanceof ApiError && (noRoute || error.status === 0 || error.status >= 500)) {
        throw new StreamUnavailableError("no stream ticket", { permanent: noRoute, cause: error });
      }
      throw error;
    }
    const socket = await openSocket(ticket.url, this.timeoutMs);
    const connection = { sessionId, socket, busy: false };
    socket.addEventListener("close", () => {
      if (this.#stream === connection) this.#stream = null;
    });
    this.#stream = connection;
    return connection;
  }

  #runTurn(socket, frame, stream) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const finish = (error, turn) => {
        clearTimeout(timer);
        socket.removeEventListener("message", onMessage);
        socket.removeEventListener("close", onClose);
        if (error) {
          stream.fail(error);
          reject(error);
        } else {
          stream.finish(turn);
          resolve();
        }
      };
      // No frame for timeoutMs: give up on this connection (the HTTP retry returns the answer if stored).
      const restartTimer = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          socket.close(1000);
          finish(new StreamUnavailableError("the answer stopped arriving"));
        }, this.timeoutMs);
      };
      const onClose = () => finish(new StreamUnavailableError("the stream closed before the answer was complete"));
      const onMessage = (event) => {
        restartTimer();
        let data = null;
        try {
          data = JSON.parse(typeof event.data === "string" ? event.data : "");
        } catch {
          data = null;
        }
        if (data?.type === "delta" && typeof data.text === "string") stream.push(data.text);
        else if (data?.type === "done" && data.turn) finish(null, data.turn);
        else if (data?.type === "error") finish(errorOfFrame(data.error ?? {}));
        else if (typeof data?.message === "string") finish(new ApiError(500, { message: data.message })); // the gateway's own
      };
      socket.addEventListener("message", onMessage);
      socket.addEventListener("close", onClose);
      restartTimer();
      socket.send(JSON.stringify(frame));
    });
  }

  async #request(method, path, { body, anonymous = false } = {}) {
    const headers = {};
    if (!anonymous && this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.apiUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit", // credentials travel in Authorization only, never in cookies
        cache: "no-store",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ApiError(0, { code: "network_error", message: `cannot reach ${this.apiUrl}: ${error.message}` });
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (response.ok) return data;
    // The API's errors are {"error": {...}}; API Gateway's own are {"message": "..."}.
    const error = data?.error ?? {};
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    throw new ApiError(response.status, {
      code: error.code ?? "",
      message: error.message ?? data?.message ?? "",
      requestId: error.request_id ?? "",
      retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : null,
    });
  }
}

function errorOfFrame({ code = "", message = "", request_id: requestId = "" }) {
  return new ApiError(STATUS_OF_CODE[code] ?? 500, { code, message, requestId });
}

/** A connected WebSocket, or StreamUnavailableError (refused at the handshake, unreachable, too slow). */
function openSocket(url, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.close();
      reject(new StreamUnavailableError("the stream did not open in time"));
    }, timeoutMs);
    socket.addEventListener("open", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.addEventListener("close", () => {
      clearTimeout(timer);
      reject(new StreamUnavailableError("the stream could not be opened"));
    });
  });
}
