// A small client for the chatbot HTTP API (docs/contract.md section 3): no dependencies, no build step.
// Works in browsers and in Node 18+ (global fetch). Copy it into your front end as it is.
//
//   const client = new ChatbotClient("https://api.example.com");
//   const { session, sessionToken } = await client.createAnonymousSession();
//   client.token = sessionToken;            // or an OIDC access token for signed-in users
//   const turn = await client.sendMessage(session.session_id, "Hello!");
//   turn.assistant_message.content          // plain text: render it with textContent, never as HTML

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
    await this.#request("DELETE", `/v1/sessions/${encodeURIComponent(sessionId)}`);
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
